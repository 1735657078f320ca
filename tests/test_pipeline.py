"""The runner end to end on a tiny real grid (configs/tiny.yaml): tables, provenance, cache, failures."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from advxai.errors import AdvXAIError
from advxai.measure import tables
from advxai.runner import cli, pipeline

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def grid(tiny_grid):
    return tiny_grid


def test_robust_chapter_sets_each_at_models_grad_cam_shift_beside_its_twins(grid):
    """The Robust models chapter's shift table on the tiny grid's real robust rows, with an adversarially trained
    twin whose maps never move (IoU 1 [0.99, 1]): a row per (attack, ε, fooled / not fooled) cell, and the fact
    counts exactly the cells where the standard model's interval lies below 0.99."""
    from advxai.book import robust

    df = pd.read_csv(grid[0] / "tables" / "results.csv")
    rob = df[(df.stage == "robust") & (df.metric == "iou")]
    twin = rob.assign(model="cnn-at2", value=1.0, ci_low=0.99, ci_high=1.0)
    p = robust.shift(pd.concat([df, twin], ignore_index=True))
    cells = rob[rob.subset.isin(["fooled", "not_fooled"])]
    assert len(p) == len(cells) and set(p.standard) == {"cnn"}
    below = int((cells.ci_high < 0.99).sum())
    assert below > 0 and (p.word == "higher than").sum() == below
    from advxai.book.abstract import NOT_IN_BUILD, count_of

    assert robust.facts(pd.concat([df, twin], ignore_index=True))["rb-shift-more"] == count_of(
        below, len(cells), "(model, attack, ε, subset) cell")
    assert robust.facts(df)["rb-shift-more"] == NOT_IN_BUILD and robust.shift_table(df) == ""  # no AT model here


def test_robust_chapter_states_the_budgets_its_runs_used(grid):
    """The tiny grid lowers AutoAttack's budgets: the chapter says which, from the runs' recorded parameters."""
    from advxai.book import robust
    from advxai.runner.config import ROBUSTNESS

    said = robust.facts(pd.DataFrame(columns=tables.COLUMNS), list((grid[0] / "runs" / "robust").iterdir()),
                        ROBUSTNESS["attacks"])["rb-budgets"]
    assert "apgd_iter: 20 (default 100)" in said and "square_iter: 20 (default 5000)" in said
    assert "n_targets: 9," in said and "num_random_init: 2 (default 5)" in said


def test_detection_on_an_at_model_goes_to_the_robust_chapter_beside_its_twin_not_into_the_settings(grid):
    """The tiny grid's real detection rows copied as an adversarially trained twin (``cnn-at2``) whose AUROC rows are
    all 1 [0.99, 1]: the Detection chapter's settings and tier count stay the standard models' only, and the
    Robust models chapter pairs each detector with its twin's worst held-out AUROC."""
    from advxai.book import aggregate as AG
    from advxai.book import robust

    df = pd.read_csv(grid[0] / "tables" / "results.csv")
    det = df[df.stage == "detection"]
    twin = det.assign(model="cnn-at2")
    twin.loc[twin.metric == "auroc", ["value", "ci_low", "ci_high"]] = [1.0, 0.99, 1.0]
    both = pd.concat([df, twin], ignore_index=True)
    assert AG.detection_settings(both).equals(AG.detection_settings(df))
    assert AG.tier("tiny", both)["tier-settings"] == "1 setting"
    p = robust.detection(both)
    settings = AG.detection_settings(df)
    assert len(p) == len(settings) and set(p.standard) == {"cnn"}
    assert (p.word == "higher than").sum() == (settings.ci_high < 0.99).sum() > 0
    from advxai.book.abstract import count_of

    assert robust.facts(both)["rb-det-higher"] == count_of(int((p.word == "higher than").sum()), len(p),
                                                           "(model, detector) pair")
    assert robust.detection_table(df) == "" and "cnn-at2 vs cnn" in robust.detection_table(both)


def test_grid_runs_and_writes_tidy_tables(grid):
    results, book, records = grid
    assert [r["status"] for r in records] == ["done"] * 11
    df = pd.read_csv(results / "tables" / "results.csv")
    assert list(df.columns) == tables.COLUMNS
    assert tables.duplicates(df).empty  # every number has one meaning: no two rows share all key columns
    assert {"accuracy", "auc", "f1", "precision", "recall", "specificity", "mcc", "fooling_rate", "flip_rate", "asr",
            "l2", "linf", "linf_max", "psnr", "ssim", "nissim", "mod", "vid", "blank_pairs"} <= set(df.metric)
    # adaptive: the detection's curve; autoattack-nofab: the robust stage's ensemble
    # "held-out families": the detection answer's row (every left-out family's cells together)
    assert set(df.attack) == {"none", "fgsm", "deepfool", "pgd", "adaptive", "autoattack-nofab", "held-out families"}
    rob = df[df.stage == "robust"]
    assert set(rob.metric) == {"clean_accuracy", "robust_accuracy", "seconds", "gradient_alignment", "blank_pairs",
                               "iou", "ssim", "spearman", "topk_intersection"}  # + Grad-CAM's shift under attack
    iou = rob[rob.metric == "iou"]
    assert set(iou.subset) == {"attacked", "fooled", "not_fooled"} and set(iou.explainer) == {"gradcam"}
    assert set(iou.attack) == {"autoattack-nofab", "pgd"} and iou.value.dropna().between(0, 1).all()
    acc = rob[rob.metric == "robust_accuracy"]
    assert set(acc.n) == {20} and (acc.value <= rob[rob.metric == "clean_accuracy"].value.iloc[0] + 1e-9).all()
    assert rob[rob.metric == "gradient_alignment"].value.between(0, 1).all()
    assert set(df[df.stage == "train"].subset) == {"test", "val"}  # official test split; grouped validation
    seeds = df[df.stage == "seeds"].set_index(["subset", "metric"])  # seed 0's and seed 1's training runs
    assert (seeds.n == 2).all() and seeds.loc[("test", "accuracy_sd"), "value"] >= 0
    assert set(df[df.stage == "train"].model) == {"cnn", "cnn·s1"}  # the extra seed's model kept apart
    first = df[(df.stage == "train") & (df.subset == "test") & (df.model == "cnn")].set_index("metric").value
    assert 0 <= seeds.loc[("test", "accuracy"), "value"] <= 1 and first["accuracy"] >= 0
    assert set(df[df.metric == "fooling_rate"].subset) == {"correct"}
    assert set(df[df.metric == "flip_rate"].subset) == {"attacked"}
    att = df[(df.attack == "fgsm") & (df.metric == "linf_max")]
    assert att.value.max() <= 0.05 * (1 + 1e-6) and set(att.n[att.subset == "attacked"]) == {12}
    ok = df.dropna(subset=["ci_low"])
    assert ((ok.ci_low <= ok.value + 1e-9) & (ok.value <= ok.ci_high + 1e-9)).all()
    assert (ok.n >= tables.MIN_N).all() and df[df.n < tables.MIN_N].ci_low.isna().all()
    rates = ok[ok.metric.isin(["accuracy", "fooling_rate", "flip_rate", "asr", "pointing_game", "recall",
                               "precision", "specificity"])]
    assert (rates.ci_high > rates.ci_low).all()  # no zero-width interval for a proportion
    mod = df[df.metric == "mod"]
    assert set(mod.explainer) == {"gradcam"} and set(mod.target) == {"predicted", "clean"}
    assert set(mod.subset) == {"attacked", "fooled", "not_fooled"} and mod.value.dropna().between(0, 1).all()
    assert (book / "results.ipynb").exists() and len(list((book / "runs").glob("*.ipynb"))) == 10


def test_radarmix_and_detection_rows(grid):
    results, _, _ = grid
    df = pd.read_csv(results / "tables" / "results.csv")
    shift = df[df.metric.isin(["iou", "ssim", "spearman", "topk_intersection"]) & (df.stage == "radarmix")]
    assert set(shift.explainer) == {"gradcam", "lime"} and set(shift.attack) == {"fgsm", "pgd"}
    assert set(shift.subset) == {"attacked", "fooled", "not_fooled"} and set(shift.target) == {"predicted", "clean"}
    assert shift[shift.explainer == "lime"].n.max() <= 4 and shift[shift.explainer == "gradcam"].n.max() == 12
    bounded = shift.metric.isin(["iou", "topk_intersection"])  # shares; SSIM and Spearman lie in [-1, 1]
    assert shift[bounded].value.dropna().between(0, 1).all() and shift.value.dropna().between(-1, 1).all()
    blank = df[(df.metric == "blank_pairs") & (df.stage == "radarmix")]
    blank = blank.set_index(["stage", "explainer", "target", "attack", "eps", "subset"])
    for key, n_ok in shift[shift.metric == "iou"].set_index(blank.index.names).n.items():
        assert n_ok + blank.loc[key, "value"] == blank.loc[key, "n"]  # every pair either compared or counted blank
    det = df[(df.stage == "detection") & df.metric.isin(["auroc", "tpr_at_5fpr"])]
    assert set(det.attack) == {"pgd", "deepfool"}
    assert set(det.explainer) == {"msp", "mahalanobis", "map-consistency", "outputs+explanations"}  # the detectors
    assert {"seen", "held_out", "held_out_family", "plain", "adaptive"} <= set(det.target)  # the settings
    curve = df[(df.stage == "detection") & (df.attack == "adaptive") & (df.metric == "evasion_rate")]
    # every explanation-map detector and each other group's best: here one detector per group, each with a port
    assert set(curve.explainer) == {"msp", "mahalanobis", "map-consistency", "outputs+explanations"}
    assert {"λ=0", "best λ", "best λ, before checks", "2× steps + restart", "square (black box)"} <= set(curve.target)
    added = df[(df.stage == "detection") & (df.metric == "evasion_added")]
    assert len(added) == 2 * 4 and added.value.between(0, 1).all()  # what each check added, per detector
    assert det.value.between(0, 1).all() and (det.n <= 120).all()


def test_score_histograms_show_each_groups_best_detector_on_its_worst_held_out_attack(grid):
    """``scores.csv`` of the tiny detection run: one detector per group (the four detectors are one of each), on the
    cell where its held-out AUROC is lowest (as in the table), every clean image and that cell's successes; the
    AUROC recomputed from the saved scores equals the table's."""
    from sklearn.metrics import roc_auc_score

    from advxai.book import detplots

    results, _, _ = grid
    run = next((results / "runs" / "detection").iterdir())
    scores = pd.read_csv(run / "scores.csv")
    assert set(scores.group) == {"outputs", "deep features", "explanation maps", "combinations"}
    df = pd.read_csv(results / "tables" / "results.csv")
    held = df[(df.stage == "detection") & (df.target == "held_out") & (df.metric == "auroc")]
    for det, g in scores.groupby("detector"):
        rows = held[held.explainer == det]
        assert g.auroc.iloc[0] == pytest.approx(rows.value.min())
        y = (g.label == "adversarial").to_numpy()
        assert roc_auc_score(y, g.score) == pytest.approx(rows.value.min(), abs=1e-9)
        assert y.sum() > 0
    assert scores[scores.label == "clean"].groupby("detector").size().nunique() == 1  # the same clean images
    assert len(detplots.score_histograms({"tiny": scores}).axes) == 4


def test_fooling_rate_recomputed_from_saved_arrays(grid):
    """The table's fooling rate on `correct` equals an independent recount from the attack stage's arrays."""
    import numpy as np

    results, _, _ = grid
    df = pd.read_csv(results / "tables" / "results.csv")
    for f in (results / "runs" / "attack").glob("*/adv_*.npz"):
        d = np.load(f)
        for k, e in enumerate(d["eps"]):
            ok = d["pred_clean"] == d["y"]
            mine = np.mean(d["pred_adv"][k][ok] != d["pred_clean"][ok])
            row = df[(df.stage == "attack") & (df.attack == f.stem[4:]) & np.isclose(df.eps, e)
                     & (df.metric == "fooling_rate")]
            assert len(row) == 1 and row.value.iloc[0] == pytest.approx(mine) and row.n.iloc[0] == ok.sum()


def test_cache_key_hashes_only_the_modules_a_stage_uses(grid):
    from advxai.runner import fingerprint

    results, _, _ = grid
    runs = {r.stage: r for r in pipeline.plan(pipeline.load_config(TINY), results)}
    uses = {s: set(fingerprint.notebook_modules(r.notebook)) for s, r in runs.items()}
    assert "detect" in uses["detection"] and "detect" not in uses["train"] and "explain" not in uses["train"]
    assert {"attacks", "data"} <= uses["attack"]
    key = runs["detection"].key
    assert all(len(r.key) == 12 for r in runs.values()) and key == runs["detection"].key
    prov = json.loads((runs["train"].out_dir / "provenance.json").read_text())
    assert prov["lock"] and "numpy" in prov["versions"] and "detect" not in prov["modules"]


def test_run_notebooks_do_not_hash_the_chapters_prose():
    """A stage's cache key covers the modules its notebook imports: a run notebook that imported the narrative or
    the chapters' figures would rerun (the robust stage: about 20 minutes of the study) whenever prose changes."""
    from advxai.runner import fingerprint

    chapters = {"book.narrative", "book.figures", "book.findings", "book.aggregate", "book.robust",
                "book.reproduction"}
    stages = sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb"))
    assert len(stages) == 9
    for nb in stages:
        assert not chapters & set(fingerprint.notebook_modules(nb)), nb.name
    summary = stages[0].with_name("00_summary.ipynb")  # all render cells: prose re-renders it, never reruns it
    assert "book.narrative" in fingerprint.render_modules(summary)
    assert fingerprint.notebook_modules(summary) == ["__init__"]


def test_provenance_recorded_for_every_row(grid):
    results, _, _ = grid
    prov = json.loads((results / "tables" / "provenance.json").read_text())
    df = pd.read_csv(results / "tables" / "results.csv")
    assert set(df.run) <= set(prov)
    p = next(v for v in prov.values() if v["stage"] == "train")
    assert p["data_md5"] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert p["versions"]["keras"].startswith("3.") and "adversarial-robustness-toolbox" in p["versions"]
    assert p["git_commit"] and p["parameters"]["epochs"] == 1


def test_rerun_reuses_and_a_changed_parameter_reruns_only_its_dependants(grid, tmp_path):
    results, _, _ = grid
    again = pipeline.run_grid(TINY, results, log=lambda *a, **k: None)
    assert [r["status"] for r in again] == ["cached"] * 11
    cfg = yaml.safe_load(TINY.read_text())
    cfg["strength"] = {"faithful": True}
    changed = tmp_path / "tiny_faithful.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    recs = {r["stage"]: r["status"] for r in pipeline.run_grid(changed, results, log=lambda *a, **k: None)}
    assert recs == {"train": "cached", "attack": "cached", "gradcam": "cached", "distortion": "cached",
                    "strength": "done", "radarmix": "cached", "detection": "cached", "seeds": "cached",
                    "robust": "cached", "summary": "done"}
    df = pd.read_csv(results / "tables" / "results.csv")
    assert {"nissim_max", "vid_seed"} <= set(df.metric)


def test_serial_and_parallel_executors_give_the_same_tables(grid, tmp_path):
    """One run at a time gives the numbers of two at once (the command line's default, which built the grid), and
    a run waits for what it depends on (gradcam, cached, is finished only after the attack run it reads is
    redone)."""
    results, _, _ = grid
    copy = tmp_path / "results"
    shutil.copytree(results / "runs", copy / "runs")
    runs = pipeline.plan(pipeline.load_config(TINY), copy)
    before = {r.label + r.stage: pd.read_csv(r.out_dir / "metrics.csv") for r in runs if r.stage != "summary"}
    redo = {"attack", "detection", "seeds"}  # RADAR-MIX left out: a minute of wall time, and no other ordering
    for r in runs:
        if r.stage in redo:
            shutil.rmtree(r.out_dir)
    recs = pipeline.run_grid(TINY, copy, executor="serial", log=lambda *a, **k: None)
    assert {r["stage"]: r["status"] for r in recs} == {r.stage: "done" if r.stage in redo else "cached" for r in runs}
    timing = ["seconds", "ms_per_image"]  # wall-clock measurements, not results
    for r in (r for r in runs if r.label + r.stage in before):
        old, new = (d[~d.metric.isin(timing)].reset_index(drop=True)
                    for d in (before[r.label + r.stage], pd.read_csv(r.out_dir / "metrics.csv")))
        pd.testing.assert_frame_equal(old, new)


def test_interrupted_run_is_redone_not_trusted(grid):
    results, _, _ = grid
    runs = pipeline.plan(pipeline.load_config(TINY), results)
    dist = next(r for r in runs if r.stage == "distortion")
    (dist.out_dir / "provenance.json").unlink()  # as if killed before finishing
    (dist.out_dir / "metrics.csv").write_text("half a tab")
    rec = pipeline.execute(dist)
    assert rec["status"] == "done"
    assert pd.read_csv(dist.out_dir / "metrics.csv").metric.str.len().min() > 0


@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_failing_cell_is_reported_and_others_go_on(grid, tmp_path, monkeypatch, executor):
    results, _, _ = grid
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"].append({"name": "chest_xray", "size": 32})
    bad = tmp_path / "two.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("ADVXAI_DATA", str(tmp_path / "empty"))  # no chest_xray there
    monkeypatch.setenv("ADVXAI_RAW_MIRROR", "http://127.0.0.1:9")  # and it cannot be fetched (nothing listens)
    monkeypatch.delenv("ADVXAI_OFFLINE", raising=False)
    shutil.copytree(ROOT.parent / "shared" / "data" / "medmnist", tmp_path / "empty" / "medmnist")
    lines = []
    recs = pipeline.run_grid(bad, results, executor=executor, log=lambda *a, **k: lines.append(str(a[0])))
    assert lines[1].startswith("advxai: chest_xray not fetched, its runs will fail: cannot download "
                               "ChestXRay2017.zip from http://127.0.0.1:9/ChestXRay2017.zip") and "\n" not in lines[1]
    by = {(r["stage"], r["run"]): r for r in recs}
    failed = by[("train", "chest_xray32-cnn")]
    assert failed["status"] == "failed"
    assert "DataError" in failed["error"] and "not found; download" in failed["error"] and "\n" not in failed["error"]
    assert by[("attack", "chest_xray32-cnn")]["status"] == "skipped"
    assert by[("train", "pneumoniamnist28-cnn")]["status"] == "cached"
    assert not list((results / "runs" / "train").glob("chest_xray32-cnn-*"))  # no partial artefact
    assert Path(failed["notebook"]).exists()


@pytest.mark.parametrize("change, message", [
    ({"models": ["alexnet"]}, "unknown model 'alexnet'"),
    ({"attack": {"eps": [0.05, 2.0]}}, r"attack.eps\[1\] must be at most 1, got 2.0"),
    ({"attack": {"names": ["fgsm", "boom"]}}, "unknown attack 'boom'"),
    ({"datasets": ["cifar"]}, "unknown dataset 'cifar'"),
    ({"datasets": [{"name": "chestmnist", "size": 28}]}, "chestmnist is multi-label"),
    ({"datasets": [{"name": "pneumoniamnist", "size": 32}]}, "pneumoniamnist.* 32"),
    ({"explain": {"names": ["occlusion"]}}, "unknown explainer 'occlusion'"),
    ({"radarmix": {"datasets": ["pneumoniamnist"], "explain": {"names": ["gradcam", "occlusion"]}}},
     "unknown explainer 'occlusion'"),
    ({"radarmix": {"datasets": ["pneumoniamnist"], "attack": {"names": ["pgd"]}}}, "at least two attacks"),
    ({"radarmix": {"datasets": ["pneumoniamnist"], "attack": {"eps": [-0.1]}}}, "eps.0. must not be negative"),
    ({"radarmix": {"datasets": ["pneumoniamnist"], "eps_units": "sigma"}}, "σ units .* not 'deepfool'"),
    ({"atack": {"names": ["fgsm"]}}, "unknown key 'atack'; did you mean 'attack'"),
    ({"datasets": [{"name": "pneumoniamnist", "train": {"epoch": 3}}]},
     r"datasets\[0\]\.train\.'epoch'; did you mean 'epochs'"),
    ({"attack": {"names": ["fgsm"], "epsilon": [0.1]}}, "unknown key attack.'epsilon'; did you mean 'eps'"),
    ({"radarmix": {"datasets": [{"name": "pneumoniamnist", "sise": 28}]}}, "unknown key radarmix.datasets.*'sise'"),
    ({"attack": {"names": ["fgsm", "autoattack"]}}, "'autoattack' is now autoattack-nofab .* or apgd-square"),
    ({"explain": {"names": ["gradcam"], "target": ["predicted", "truth"]}}, "unknown explanation target 'truth'"),
    # more images than the split holds (PneumoniaMNIST: 624 test, 524 validation images, read from the file)
    ({"attack": {"names": ["fgsm"], "n_images": 700}}, "attack.n_images = 700 exceeds the 624 images of "
                                                        "pneumoniamnist's test split"),
    ({"radarmix": {"datasets": [{"name": "pneumoniamnist", "split": "val"}], "attack": {"n_images": 600}}},
     "600 exceeds the 524 images of pneumoniamnist's val split"),
    ({"detection": {"datasets": ["pneumoniamnist"], "splits": ["test", "val"], "n_images": 2000}},
     "detection.n_images = 2000 exceeds the 1148 images of pneumoniamnist's test \\+ val split"),
])
def test_bad_config_fails_before_any_work(tmp_path, capsys, change, message):
    cfg = {**yaml.safe_load(TINY.read_text()), **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(AdvXAIError, match=message):
        pipeline.load_config(path)
    assert cli.main(["run", str(path), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("advxai: error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_validate_and_plan_before_any_work(grid, tmp_path, capsys):
    results, _, _ = grid
    assert cli.main(["validate", str(TINY), "--results", str(results)]) == 0
    assert "valid; 11 runs" in capsys.readouterr().out
    assert cli.main(["plan", str(TINY), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "11 runs: 11 cached, 0 to run" in out and "radarmix" in out and "seeds" in out
    fresh = tmp_path / "fresh"
    rows = pipeline.plan_rows(ROOT / "configs" / "paper_grad_attacks.yaml", fresh)
    assert len(rows) > 20 and all(r["state"] == "will run" for r in rows) and not fresh.exists()
    assert {r["from"] for r in rows} == {"config estimate"} and all(r["seconds"] > 0 for r in rows)
    assert {r["from"] for r in pipeline.plan_rows(ROOT / "configs" / "paper_radarmix.yaml", fresh)} == \
        {"config estimate"}


def test_valid_nested_sections_are_accepted(tmp_path):
    cfg = {**yaml.safe_load(TINY.read_text())}
    cfg["radarmix"] = {**cfg["radarmix"], "train": {"epochs": 2}, "eps_units": "pixel"}
    cfg["datasets"] = [{"name": "pneumoniamnist", "size": 28, "train": {"patience": 2}}]
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(cfg))
    loaded = pipeline.load_config(path)
    assert loaded["radarmix"][0]["train"] == {"epochs": 2} and loaded["datasets"][0]["train"] == {"patience": 2}


def test_a_new_seeds_training_run_is_expected_to_take_its_models_last_training_time(tmp_path):
    """The start order and the ETA read each run's last duration; an extra seed's training run not run before
    takes its model's last training time with any seed (written here: 50 s), not the per-stage estimate."""
    from advxai.runner.runs import expected_seconds

    runs = pipeline.plan(pipeline.load_config(TINY), tmp_path)
    train = next(r for r in runs if r.stage == "train")
    extra = next(r for r in runs if r.stage == "train" and r.params.get("model_label"))
    older = tmp_path / "runs" / "train" / f"{train.label}-0123456789ab"  # the same run under an older key
    older.mkdir(parents=True)
    (older / "provenance.json").write_text(json.dumps({"seconds": 50.0}))
    got = expected_seconds(runs)
    assert got[id(train)] == 50.0 and got[id(extra)] == 50.0 and extra.label == f"{train.label}-s1"
    assert got[id(next(r for r in runs if r.stage == "attack"))] is None  # never run: the config's estimate


def test_every_attack_has_one_colour_in_every_panel_and_the_legend_says_which(grid):
    """The Results page's attack figures on the tiny grid: the legend's colour of each attack equals its lines'
    colour in every panel, every plotted attack is in the legend, and no panel's title runs into another's."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_rgb

    from advxai.book import figures

    results, _, _ = grid
    df = pd.read_csv(results / "tables" / "results.csv")
    for draw, stage in ((figures.accuracy_vs_eps, "attack"), (figures.fooling_rates, "attack"),
                        (figures.mod_points, "attack"), (figures.shift_split, "radarmix")):
        fig = draw(df)
        legend = {t.get_text(): to_rgb(h.get_color()) for t, h in zip(fig.legends[0].texts,
                                                                       fig.legends[0].legend_handles, strict=True)}
        plotted = 0
        for ax in fig.axes:  # plain lines, and error-bar containers (their line is labelled on the container)
            drawn = [(ln.get_label(), ln) for ln in ax.get_lines()]
            drawn += [(c.get_label(), c.lines[0]) for c in ax.containers]
            for label, line in drawn:
                if label.startswith("_"):
                    continue
                assert label in legend and to_rgb(line.get_color()) == legend[label], (draw.__name__, label)
                plotted += 1
        drawn = set(df[df.stage == stage].attack.map(figures.attack_name)) - {"none"}
        if draw in (figures.mod_points, figures.shift_split):  # ε axes only: DeepFool and C&W have no budget
            drawn -= figures.MINIMAL
        assert plotted and drawn <= set(legend), draw.__name__
        fig.canvas.draw()
        boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), draw.__name__


def test_localisation_draws_each_attack_against_eps_with_the_clean_and_uniform_references():
    """RADAR-MIX's localisation figure on hand-made rows (two attacks at two ε, one explainer, masks present): a
    line per attack in its palette colour through its values, the clean images' mask energy dotted and the mask's
    area share dashed; ``None`` where no run had masks."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_rgb

    from advxai.book import figures

    keys = dict(stage="radarmix", dataset="isic2018_28", model="cnn", explainer="gradcam", target="predicted",
                subset="attacked", run="r1", n=40)
    rows = [dict(keys, attack="none", eps=0.0, metric="mask_energy", value=0.6, ci_low=0.55, ci_high=0.65),
            dict(keys, attack="none", eps=0.0, metric="mask_area", value=0.3, ci_low=0.28, ci_high=0.32)]
    rows += [dict(keys, attack=a, eps=e, metric="mask_energy", value=v, ci_low=v - 0.05, ci_high=v + 0.05)
             for a, vals in {"fgsm": (0.5, 0.4), "pgd": (0.45, 0.35)}.items()
             for e, v in zip((0.01, 0.05), vals, strict=True)]
    df = pd.DataFrame(rows)
    fig = figures.localisation(df)
    ax = fig.axes[0]
    colours = figures.attack_colours(["fgsm", "pgd"])
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert set(lines) == {"fgsm", "pgd"}
    assert list(lines["fgsm"].get_ydata()) == [0.5, 0.4] and to_rgb(lines["pgd"].get_color()) == colours["pgd"]
    refs = {ln.get_linestyle(): ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_label().startswith("_")}
    assert refs == {":": 0.6, "--": 0.3}
    assert figures.localisation(df[df.metric != "mask_energy"]) is None


def test_results_csv_keeps_each_number_once_across_pixel_and_sigma_twins(tmp_path):
    """The study runs RADAR-MIX twice per model, in pixel and in σ units, on the same images: the σ run's clean-image
    rows repeat the pixel run's and are left out of results.csv (the rerun page promises one row per key)."""
    from types import SimpleNamespace

    from advxai.measure import tables

    def run(name, units, attacks):
        d = tmp_path / name
        d.mkdir()
        rows = [tables.row("accuracy", 0.9, stage="radarmix", dataset="isic2018_28", model="cnn", attack=a,
                           eps=0.0 if a == "none" else 0.01, subset="attacked", n=40) for a in attacks]
        tables.write_csv(tables.frame(rows), d / "metrics.csv")
        (d / "provenance.json").write_text(json.dumps({"stage": "radarmix", "parameters": {"eps_units": units}}))
        return SimpleNamespace(out_dir=d)

    runs = [run("isic2018_28-cnn-aaaa", "pixel", ["none", "pgd"]),
            run("isic2018_28-cnn-sigma-bbbb", "sigma", ["none", "pgd@sigma"])]
    (tmp_path / "tables").mkdir()
    pipeline.combine(runs, tmp_path)
    df = pd.read_csv(tmp_path / "tables" / "results.csv")
    assert sorted(df.attack) == ["none", "pgd", "pgd@sigma"] and tables.duplicates(df).empty
