"""The abstract's facts (advxai.book.abstract): the numbers and the words their intervals decide, on small tables
written by hand; and every fact a chapter pastes exists for any grid, as a number or as "not run in this build"."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from advxai.book import abstract

ROOT = Path(__file__).resolve().parents[1]


def row(**kw) -> dict:
    base = {"dataset": "pneumoniamnist_28", "model": "cnn", "stage": "attack", "attack": "pgd", "eps": 0.1,
            "explainer": "", "target": "", "subset": "correct", "metric": "fooling_rate", "value": 0.5,
            "ci_low": 0.4, "ci_high": 0.6, "n": 50}
    return {**base, **kw}


def test_fooling_reports_the_least_fooled_models_strongest_attack_at_its_largest_eps():
    df = pd.DataFrame([
        row(attack="pgd", value=0.99, ci_low=0.94, ci_high=1.0),
        row(attack="fgsm", value=0.70, ci_low=0.60, ci_high=0.78),
        row(attack="pgd", eps=0.05, value=0.10, ci_low=0.05, ci_high=0.2),  # not the largest ε: ignored
        row(model="resnet", attack="fgsm", value=0.93, ci_low=0.855, ci_high=0.97),
        row(model="resnet", attack="pgd", value=0.90, ci_low=0.8, ci_high=0.95),
        row(model="resnet", attack="deepfool", value=1.0, ci_low=0.96, ci_high=1.0),  # no ε budget: left out
        row(stage="train", metric="accuracy", subset="test"), row(stage="train", model="resnet", subset="test"),
    ])
    f = abstract.fooling(df)
    assert f["abs-models"] == "2" and f["abs-eps"] == "0.1 (≈26/255)"
    assert f["abs-fool"] == "93 % [86, 97] (fgsm, pneumoniamnist_28 · resnet)"  # resnet's best attack, the lower
    assert f["abs-fool-best"] == "99 % [94, 100]"


def test_shift_counts_the_comparisons_whose_intervals_are_apart():
    rows = []
    for attack, (f, nf) in {"pgd": ((0.30, 0.25, 0.35), (0.05, 0.03, 0.07)),  # apart, fooled higher
                            "fgsm": ((0.10, 0.05, 0.15), (0.08, 0.04, 0.12)),  # overlapping
                            "bim": ((0.40, 0.35, 0.45), (0.02, np.nan, np.nan))}.items():  # 6 resisted: no interval
        for subset, (v, lo, hi) in (("fooled", f), ("not_fooled", nf)):
            rows.append(row(stage="strength", metric="mod", explainer="gradcam", target="predicted", attack=attack,
                            subset=subset, value=v, ci_low=lo, ci_high=hi))
    s = abstract.shift(pd.DataFrame(rows))
    assert s == {"abs-shift-fooled": "0.30", "abs-shift-not": "0.05",
                 "abs-shift-apart": "1 of the 2 model × attack comparisons", "abs-shift-few": "1 more has"}


def _settings(pairs):
    out = []
    for i, ((e, e_lo, e_hi), (o, o_lo, o_hi)) in enumerate(pairs):
        out += [{"dataset": f"d{i}", "model": "cnn", "detector": "gradcam-summary", "group": "explanation maps",
                 "auroc": e, "ci_low": e_lo, "ci_high": e_hi},
                {"dataset": f"d{i}", "model": "cnn", "detector": "msp", "group": "outputs", "auroc": 0.55,
                 "ci_low": 0.5, "ci_high": 0.6},
                {"dataset": f"d{i}", "model": "cnn", "detector": "lid", "group": "deep features", "auroc": o,
                 "ci_low": o_lo, "ci_high": o_hi}]
    return pd.DataFrame(out)


def test_detection_one_setting_says_the_word_its_intervals_decide():
    d = abstract.detection(_settings([((0.70, 0.62, 0.78), (0.90, 0.85, 0.95))]))
    assert d["abs-det-map"] == "0.70 [0.62, 0.78] (gradcam-summary)"
    assert d["abs-det-other"] == "0.90 [0.85, 0.95] (lid, deep features)"  # the best other group's, not msp
    assert d["abs-det-word"] == "lower than"
    tied = abstract.detection(_settings([((0.88, 0.80, 0.93), (0.90, 0.85, 0.95))]))
    assert tied["abs-det-word"] == "indistinguishable from"


def test_detection_across_settings_gives_medians_and_counts_each_word():
    d = abstract.detection(_settings([((0.70, 0.62, 0.78), (0.90, 0.85, 0.95)),
                                      ((0.80, 0.70, 0.84), (0.90, 0.85, 0.95)),
                                      ((0.88, 0.80, 0.93), (0.90, 0.85, 0.95))]))
    assert d["abs-det-map"] == "median 0.80" and d["abs-det-other"] == "median 0.90"
    assert d["abs-det-word"] == "over 3 settings: lower than it in 2, indistinguishable from it in 1"


def test_every_fact_a_chapter_pastes_exists_for_any_grid():
    """An empty table (a grid that ran nothing of it) still gives every fact: "not run in this build"."""
    empty = pd.DataFrame(columns=list(row()))
    facts = abstract.facts(empty, pd.DataFrame(columns=["dataset", "model", "group", "auroc"]))
    pasted = {k for md in (ROOT / "book").glob("*.md")
              for k in re.findall(r"results\.ipynb::(abs-[a-z-]+):s`", md.read_text())}
    assert pasted and pasted <= set(facts), pasted - set(facts)
    secondary = {f"abs-{m}-{k}" for m in ("shift", "iou") for k in ("not", "apart", "few")}  # "not run" said once
    assert {facts[k] for k in set(facts) - secondary} == {abstract.NOT_IN_BUILD}
    assert {facts[k] for k in secondary} == {"—"}


def test_eps_is_written_per_255_where_it_is_a_whole_number_of_levels():
    from advxai.book.grammar import per_255

    assert per_255(8 / 255) == "8/255" and per_255(0.05) == "0.05 (≈13/255)" and per_255(0) == "0"


def test_the_detection_answer_pools_the_runs_saved_differences_and_decides_against_zero(tmp_path):
    """Two settings on one dataset, differences −0.10 and −0.20 with tight replicates: pooled −0.15, the interval
    below 0, so the map detector is "lower than" the best other; an adversarially trained model's run is left out."""
    import json

    from advxai.artefacts import save_npz

    dirs = []
    for model, v in (("cnn", -0.10), ("resnet", -0.20), ("cnn-at2", 0.50)):
        d = tmp_path / model
        d.mkdir()
        (d / "provenance.json").write_text(json.dumps({"parameters": {"dataset": "pneumoniamnist", "size": 28,
                                                                      "model": model}}))
        save_npz(d / "family_diff.npz", replicates=np.full(100, v) + np.linspace(-0.01, 0.01, 100), value=v,
                 pair=np.array(["gradcam-summary", "mahalanobis"]))
        dirs.append(d)
    f = abstract.answer(dirs)
    assert f["abs-det-diff"] == "-0.15 [-0.21, -0.09]" and f["abs-det-diff-word"] == "lower than"
    assert f["abs-det-diff-over"] == "2 settings on 1 dataset"
    assert f["abs-det-pair"] == "gradcam-summary against mahalanobis"
    d = tmp_path / "chest"  # a second dataset, where the map detector is higher: each dataset alone
    d.mkdir()
    (d / "provenance.json").write_text(json.dumps({"parameters": {"dataset": "chest_xray", "size": 64,
                                                                  "model": "cnn"}}))
    save_npz(d / "family_diff.npz", replicates=np.full(100, 0.1) + np.linspace(-0.01, 0.01, 100), value=0.1,
             pair=np.array(["dispersion", "nic"]))
    assert abstract.by_dataset([*dirs, d])["abs-det-diff-by-dataset"] == (
        "chest_xray 64 px +0.10 [+0.09, +0.11] (higher, 1 setting); "
        "pneumoniamnist 28 px -0.15 [-0.21, -0.09] (lower, 2 settings)")
    assert abstract.by_dataset([])["abs-det-diff-by-dataset"] == abstract.NOT_IN_BUILD


def test_counts_read_as_a_sentence_says_them():
    from advxai.book.abstract import count_of

    assert [count_of(0, 2), count_of(1, 2), count_of(2, 2), count_of(4, 4), count_of(0, 1)] == [
        "none of the 2", "1 of the 2", "both", "all 4", "no"]
