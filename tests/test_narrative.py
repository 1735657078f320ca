"""Sentences and verdicts are computed from numbers and their intervals (synthetic rows: a formula test)."""

import numpy as np
import pandas as pd
import pytest

from advxai.book import narrative as N
from advxai.book import reproduction as R
from advxai.book import style as S
from advxai.measure.tables import row


def _r(value, lo, hi, n=100, **keys):
    return pd.Series(row(keys.pop("metric", "fooling_rate"), value, (lo, hi), n, **keys))


def test_comparative_words_follow_the_intervals():
    a, b = _r(0.9, 0.85, 0.95), _r(0.6, 0.5, 0.7)
    assert S.compare(a, b) == "higher than" and S.compare(b, a) == "lower than"
    assert S.compare(a, _r(0.88, 0.8, 0.93)) == "indistinguishable from"
    assert S.compare(a, _r(0.5, np.nan, np.nan, n=6)) == "not comparable with"
    assert "too few images" in S.fmt(_r(0.5, np.nan, np.nan, n=6))
    assert S.fmt(_r(0.999676, 0.998971, 0.999995)) == "1.000 [0.999, 1.000]"  # 2 digits read "[1.00, 1.00]"
    assert S.fmt(_r(0.9997, 0.9995, 0.99996)) == "0.9997 [0.9995, 1.0000]"
    assert S.fmt(_r(1.0, 1.0, 1.0)) == "1.00 [1.00, 1.00]"  # a true point interval stays as it is


def test_top_group_holds_the_values_whose_intervals_overlap_the_largest():
    rows = pd.DataFrame([row("fooling_rate", v, (lo, hi), 80, attack=a, subset="correct", stage="attack")
                         for a, v, lo, hi in [("pgd", 1.0, 0.95, 1.0), ("deepfool", 0.97, 0.91, 0.99),
                                              ("fgsm", 0.4, 0.3, 0.5)]])
    assert N.top_group(rows, "attack") == (["pgd", "deepfool"], ["fgsm"])
    assert N.top_group(rows[rows.attack != "deepfool"], "attack") == (["pgd"], ["fgsm"])
    few = pd.DataFrame([row("fooling_rate", 0.97, (np.nan, np.nan), 6, attack="fgsm", subset="correct", stage="a"),
                        row("fooling_rate", 0.9, (0.8, 0.95), 80, attack="pgd", subset="correct", stage="a")])
    assert N.top_group(few, "attack") == (["pgd"], [])  # too few images: in neither group, never ranked


def _table(deepfool_flip, pgd_flip, size=64, model="cnn"):
    d = f"chest_xray_{size}"
    k = dict(stage="attack", dataset=d, model=model, eps=0.1)
    return pd.DataFrame([
        row("accuracy", 0.87, (0.84, 0.90), 624, stage="train", dataset=d, model=model, subset="test"),
        row("flip_rate", deepfool_flip[0], deepfool_flip[1:], 100, attack="deepfool", subset="attacked", **k),
        row("flip_rate", pgd_flip[0], pgd_flip[1:], 100, attack="pgd", subset="attacked", **k),
        row("fooling_rate", 1.0, (0.95, 1.0), 83, attack="deepfool", subset="correct", **k),
        row("fooling_rate", 1.0, (0.95, 1.0), 83, attack="pgd", subset="correct", **k),
    ])


def test_reproduction_gives_two_verdicts_and_never_stops_at_not_comparable():
    rep = R.report(_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89))).set_index("claim")
    clean = rep.loc["clean accuracy on chest X-ray 85.9–88.9 %"]
    assert clean["same setting?"].startswith("no: ") and "64 px, seed 224" in clean["same setting?"]
    assert clean["holds here?"] == "holds (1 of 1 models)"  # 0.87 [0.84, 0.90] meets the seed's range anyway
    assert rep.loc["fooling rate up to 96 % (PGD, OCT; all attacked images, ε 0.1)", "holds here?"] == "not run"
    paper = R.report(_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89), size=224, model="resnet50"),
                     pretrained={("chest_xray_224", "resnet50"): True}).set_index("claim")
    assert paper.loc["clean accuracy on chest X-ray 85.9–88.9 %", "same setting?"] == "yes"
    ranked = paper.loc[paper.index.str.startswith("DeepFool has the strongest")].iloc[0]
    assert ranked["holds here?"] == "holds (1 of 1 models)"  # over all images DeepFool's interval lies above PGD's
    again = paper.loc[paper.index.str.startswith("… re-examined")].iloc[0]
    assert again["holds here?"] == "undecided (1 of 1 models)"  # over correct images: indistinguishable
    assert "indistinguishable from pgd" in again["ours"]


def test_holds_here_aggregates_every_model_and_seed():
    two = pd.concat([_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89)),
                     _table((0.5, 0.4, 0.6), (0.9, 0.84, 0.95), model="cnn·s1")])
    rep = R.report(two).set_index("claim")
    ranked = rep.loc[rep.index.str.startswith("DeepFool has the strongest")].iloc[0]
    assert ranked["holds here?"] == "mixed (holds on 1, does not hold on 1 of 2 models)"
    assert "over 2 models" in ranked["ours"]
    assert R.holds(["no (ours lower)", "no (ours lower)"]) == "does not hold (2 of 2 models; ours lower)"
    assert R.holds(["partially (ours higher)"] * 3) == "near miss (3 of 3 models; ours higher)"
    near = R.holds(["no (ours lower)", "partially (ours lower)"])
    assert near == "mixed (near miss on 1, does not hold on 1 of 2 models)"
    # an adversarially trained twin is not a model the seeds' claims were made for: it is not counted
    with_at = pd.concat([two, _table((0.2, 0.1, 0.3), (0.5, 0.4, 0.6), model="cnn-at2")])
    again = R.report(with_at).set_index("claim")
    assert again.loc["clean accuracy on chest X-ray 85.9–88.9 %", "holds here?"] == rep.loc[
        "clean accuracy on chest X-ray 85.9–88.9 %", "holds here?"]
    assert "of 2 models" in again.loc[again.index.str.startswith("DeepFool has the strongest")].iloc[0]["holds here?"]


def test_reproduction_ranking_says_no_when_another_attack_is_clearly_stronger():
    rep = R.report(_table((0.5, 0.4, 0.6), (0.9, 0.84, 0.95), size=224, model="vgg16"),
                   pretrained={("chest_xray_224", "vgg16"): True})
    row_ = rep[rep.claim.str.startswith("DeepFool has the strongest")].iloc[0]
    assert row_["holds here?"] == "does not hold (1 of 1 models; pgd higher)" and "no (pgd higher)" in row_["ours"]


def test_split_table_says_which_side_is_empty():
    keys = dict(stage="strength", dataset="d_28", model="cnn", explainer="gradcam", eps=0.1)
    rows = [row("mod", 0.49, (0.48, 0.50), 73, attack="deepfool", target="predicted", subset="fooled", **keys),
            row("mod", np.nan, (np.nan, np.nan), 0, attack="deepfool", target="predicted", subset="not_fooled",
                **keys),
            row("mod", 0.42, (0.40, 0.44), 39, attack="fgsm", target="predicted", subset="fooled", **keys),
            row("mod", 0.20, (0.17, 0.23), 34, attack="fgsm", target="predicted", subset="not_fooled", **keys)]
    text = N.split_table(pd.DataFrame(rows), "strength", "mod")
    assert "2 rows, with intervals" in text
    assert "| deepfool | 0.1 | 0.49 [0.48, 0.50] (n = 73) | — | no correctly classified image resisted |" in text
    assert "| fgsm | 0.1 | 0.42 [0.40, 0.44] (n = 39) | 0.20 [0.17, 0.23] (n = 34) | higher than |" in text


def test_rankings_withhold_verdicts_and_name_what_is_missing():
    rep = R.report(_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89))).set_index("claim")
    ranked = rep.loc[rep.index.str.startswith("DeepFool has the strongest")].iloc[0]
    assert "cnn, seed resnet50" in ranked["same setting?"]  # a CNN at 64 px from scratch is not the seed's setting
    no_deepfool = _table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89), size=224, model="resnet50")
    no_deepfool = no_deepfool[no_deepfool.attack != "deepfool"]
    rep = R.report(no_deepfool, pretrained={("chest_xray_224", "resnet50"): True})
    assert (rep[rep.claim.str.startswith("DeepFool has")]["holds here?"] == "not run").all()


def test_split_table_tells_blank_maps_from_no_images():
    keys = dict(stage="radarmix", dataset="d_28", model="cnn", explainer="lime", eps=0.05, target="predicted",
                attack="pgd")
    rows = [row("iou", np.nan, (np.nan, np.nan), 0, subset="fooled", **keys),
            row("blank_pairs", 3, n=3, subset="fooled", **keys),
            row("iou", 0.8, (np.nan, np.nan), 1, subset="not_fooled", **keys),
            row("blank_pairs", 0, n=1, subset="not_fooled", **keys)]
    text = N.split_table(pd.DataFrame(rows), "radarmix", "iou")
    assert ("| pgd | 0.05 | — | 0.80 (n = 1: too few images for an interval) | fooled: all 3 pairs had a blank map |"
            in text)


def test_clean_facts_name_the_bars_met_and_missed():
    from advxai.book import narrative

    def r(dataset, subset, metric, value, lo=np.nan, hi=np.nan, n=100):
        return {"stage": "train", "dataset": dataset, "model": "cnn", "attack": "none", "eps": 0.0,
                "explainer": "none", "target": "none", "subset": subset, "metric": metric, "value": value,
                "ci_low": lo, "ci_high": hi, "n": n}

    df = pd.DataFrame([r("chest_xray_64", "test", m, v, v - 0.02, v + 0.02) for m, v in
                       [("accuracy", 0.88), ("balanced_accuracy", 0.85), ("auc", 0.96)]]
                      + [r("isic2018_28", "test", m, v, v - 0.03, v + 0.03) for m, v in
                         [("accuracy", 0.68), ("balanced_accuracy", 0.49), ("auc", 0.91)]]
                      + [r("isic2018_28", "test", "majority_baseline", 0.601)])
    facts = narrative.clean(df)
    assert facts["clean-met"] == "1 of the 2 models"
    assert facts["clean-unmet"] == "isic2018_28 · cnn: balanced_accuracy on test 0.490 vs 0.500"
    text = facts["clean-table"]
    assert "| chest_xray_64 · cnn | 100 | 0.88 [0.86, 0.90] | 0.85 [0.83, 0.87] | 0.96 [0.94, 0.98] | 1 of 1 |" in text
    assert "| 2 of 3 |" in text


def test_fitted_on_reads_the_transfer_rows_of_the_held_out_cell():
    """signature held out on DeepFool at 0.02: fitted on PGD 0.05 alone it is inverted (0.41 [0.39, 0.43]),
    fitted on PGD 0.02 alone 0.84; rows of other cells, other detectors and DeepFool's own fit are not read."""
    k = dict(stage="detection", explainer="signature", attack="deepfool", eps=0.02)
    rows = [row("auroc", v, (lo, hi), 2224, target=t, **k) for t, v, lo, hi in [
        ("from fgsm@0.05", 0.65, 0.64, 0.67), ("from pgd@0.02", 0.84, 0.83, 0.86), ("from pgd@0.05", 0.41, 0.39, 0.43),
        ("from deepfool@0.02", 0.99, 0.98, 1.0), ("held_out", 0.81, 0.79, 0.83)]]
    rows += [row("auroc", 0.1, (0.05, 0.15), 2224, target="from fgsm@0.05", **{**k, "explainer": "lid"}),
             row("auroc", 0.2, (0.15, 0.25), 2224, target="from pgd@0.02", **{**k, "eps": 0.05})]
    g = pd.DataFrame(rows)
    held = g[g.target == "held_out"].iloc[0]
    from advxai.book.detfacts import fitted_on

    said = fitted_on(g, held)
    assert said.startswith("from 0.41 [0.39, 0.43] (pgd@0.05) to 0.84 [0.83, 0.86] (pgd@0.02), against 0.81 "
                           "[0.79, 0.83] fitted on all of them — below chance for one,")
    assert fitted_on(g[g.target != "from pgd@0.05"], held).endswith("against 0.81 [0.79, 0.83] fitted on all of them")
    assert fitted_on(g[g.target.isin(["held_out", "from fgsm@0.05"])], held).startswith("not measured")
    # a detector fitted on clean images only cannot depend on the attacks of the training folds: no range read
    clean_only = g.assign(explainer="map-consistency")
    said = fitted_on(clean_only, clean_only[clean_only.target == "held_out"].iloc[0])
    assert said.startswith("not applicable") and "fitted on clean images only" in said


def _held_out(dataset, model, detector, auroc, tpr, attack="deepfool"):
    keys = dict(stage="detection", dataset=dataset, model=model, explainer=detector, target="held_out",
                attack=attack, eps=0.02, subset="attacked")
    return [row("auroc", auroc, (auroc - 0.02, auroc + 0.02), 200, **keys),
            row("tpr_at_5fpr", tpr, (tpr - 0.05, tpr + 0.05), 200, **keys)]


def test_detection_across_settings_counts_winners_and_the_goal_per_setting():
    from advxai.book import aggregate as AG

    rows = []
    grid = [("p_28", "cnn", 0.90, 0.70), ("p_28", "cnn·s1", 0.80, 0.85), ("i_28", "resnet", 0.60, 0.99)]
    for d, m, maha, cons in grid:
        rows += _held_out(d, m, "mahalanobis", maha, 0.5) + _held_out(d, m, "map-consistency", cons, 0.95)
    rows += _held_out("p_28", "cnn", "map-consistency", 0.65, 0.95, attack="pgd")  # its worst attack on p · cnn
    s = AG.detection_settings(pd.DataFrame(rows))
    assert len(s) == 6 and set(s.group) == {"deep features", "explanation maps"}
    assert s[(s.model == "cnn") & (s.detector == "map-consistency")].auroc.item() == 0.65  # the worst held-out cell
    assert AG.arch_seed("cnn·s1") == ("cnn", 1) and AG.arch_seed("resnet", 0) == ("resnet", 0)
    summ = AG.detector_summary(s)
    assert summ.loc["map-consistency", "median"] == 0.85 and summ.loc["map-consistency", "tied for best on"] == 2
    assert summ.loc["map-consistency", "passes the thresholds on"] == 1 and summ.loc["mahalanobis",
                                                                                   "tied for best on"] == 1
    verdicts = AG.setting_verdicts(s).set_index("model")
    assert verdicts.met.tolist().count(True) == 1 and verdicts.loc["resnet", "met"]  # 0.99 [0.97, 1], TPR 0.95
    from advxai.book import detfacts

    facts = detfacts.across(s)
    assert facts["det-across-n"] == "3 settings (2 datasets × 2 architectures × 2 training seeds)"
    assert facts["det-across-tops"] == "explanation maps on 2, deep features on 1"
    assert facts["det-across-goal"] == "1 of the 3 settings"
    assert facts["det-across-answer"] == "On 1 of the 3 settings only"
    assert facts["det-across-map"] == "map-consistency, median 0.85 (range 0.65–0.99)"
    # the closest of the settings that miss the goal (i_28 · resnet meets it)
    assert facts["det-across-closest"].startswith("the closest miss is map-consistency on p_28 · cnn·s1, AUROC 0.85")
    one = detfacts.across(s[s.model == "cnn"])
    assert one["det-across-n"].startswith("1 setting (") and one["det-across-answer"] == "No"
    assert one["det-across-goal"] == "no setting"
    assert AG.settings_figure(s) is not None


def test_seeds_table_gives_mean_sd_and_each_seed():
    from advxai.book import aggregate as AG

    keys = dict(dataset="p_28", subset="test")
    rows = [row(m, v, (np.nan, np.nan), 3, stage="seeds", model="cnn", **keys)
            for m, v in [("accuracy", 0.9), ("accuracy_sd", 0.01), ("balanced_accuracy", 0.88),
                         ("balanced_accuracy_sd", 0.02), ("auc", 0.95), ("auc_sd", 0.005)]]
    metrics = [("accuracy", 0.89), ("balanced_accuracy", 0.87), ("auc", 0.94)]
    rows += [row(m, v + k / 100, (0.8, 0.99), 624, stage="train", model=lab, **keys)
             for k, lab in enumerate(["cnn", "cnn·s1", "cnn·s2"]) for m, v in metrics]
    t = AG.seeds_table(pd.DataFrame(rows)).iloc[0]
    assert t["accuracy (mean ± s.d.)"] == "0.900 ± 0.010" and t["accuracy per seed"] == "0.890, 0.900, 0.910"
    assert AG.base_rows(pd.DataFrame(rows)).model.unique().tolist() == ["cnn"]


def test_findings_are_facts_decided_by_the_intervals_of_every_model():
    """The chapters' findings sentences are in book/*.md; their facts: PGD saturates from ε 0.05 on both models,
    FGSM falls at its largest ε on both (0.99 [0.94, 1] at 0.05 > 0.85 [0.77, 0.91] at 0.1), Grad-CAM moves more on
    the fooled images in both cells (0.45–0.55 vs 0.15–0.25), one side of each cell under 30 images (18)."""
    from advxai.book import findings as F
    from advxai.book.abstract import NOT_IN_BUILD

    rows = []
    for m in ("cnn", "cnn·s1"):
        k = dict(stage="attack", dataset="c_64", model=m, subset="correct")
        rows += [row("fooling_rate", 1.0, (0.96, 1.0), 88, attack="pgd", eps=e, **k) for e in (0.05, 0.1)]
        rows.append(row("fooling_rate", 0.5, (0.4, 0.6), 88, attack="pgd", eps=0.01, **k))
        rows += [row("fooling_rate", v, (lo, hi), 88, attack="fgsm", eps=e, **k)
                 for e, v, lo, hi in [(0.01, 0.5, 0.4, 0.6), (0.05, 0.99, 0.94, 1.0), (0.1, 0.85, 0.77, 0.91)]]
        s = dict(stage="strength", dataset="c_64", model=m, explainer="gradcam", target="predicted", attack="fgsm",
                 eps=0.1)
        rows += [row("mod", 0.5, (0.45, 0.55), 70, subset="fooled", **s),
                 row("mod", 0.2, (0.15, 0.25), 18, subset="not_fooled", **s)]
    facts = F.chapters(pd.DataFrame(rows))
    assert {k: facts[k] for k in ("ga-sat-models", "ga-sat-attacks", "ga-sat-share", "ga-sat-n")} == {
        "ga-sat-models": "all 2 models", "ga-sat-attacks": "PGD from ε = 0.05",
        "ga-sat-share": "every correctly classified image", "ga-sat-n": "88"}
    assert facts["ga-weak"].startswith("FGSM on both models; e.g. FGSM on c_64 · cnn: 0.99 [0.94, 1.00] at ε = 0.05")
    assert [facts[f"ga-split-{k}"] for k in ("n", "more", "less", "overlap", "thin", "min")] == [
        "2", "both", "none", "none", "2", "30"]
    assert facts["rm-sat-attacks"] == facts["rm-split-n"] == NOT_IN_BUILD  # no RADAR-MIX rows: not run
    calm = pd.DataFrame([r for r in rows if r["attack"] != "fgsm"])
    assert F.chapters(calm)["ga-weak"] == "no attack, on any of the 2 models"
    assert facts["rm-split-more"] == NOT_IN_BUILD and facts["rm-split-less"] == "—"  # "not run" said once


def test_grid_md_gives_runs_that_differ_only_in_their_model_one_line():
    q = {"dataset": "pneumoniamnist", "size": 28, "attacks": ["fgsm", "pgd"], "eps": [0.01, 0.05], "n_images": 100,
         "seed": 0}
    prov = {f"r{i}": {"stage": "attack", "label": m, "parameters": {**q, "model": m}}
            for i, m in enumerate(["cnn", "cnn·s1", "resnet"])}
    prov["other"] = {"stage": "attack", "label": "x", "parameters": {**q, "size": 64, "model": "cnn"}}
    prov["train"] = {"stage": "train", "label": "cnn", "parameters": {}}
    lines = N.grid_md(prov).split("\n\n")[0].splitlines()
    assert lines == [
        "- Grad-Attacks on **pneumoniamnist 28 px** · cnn, cnn·s1, resnet: fgsm, pgd at ε ∈ {0.01, 0.05} on 100 "
        "class-balanced test images (sample and attack seed 0).",
        "- Grad-Attacks on **pneumoniamnist 64 px** · cnn: fgsm, pgd at ε ∈ {0.01, 0.05} on 100 class-balanced "
        "test images (sample and attack seed 0)."]
    assert "trained from seed" in N.grid_md(prov)
    assert N.grid_md({"t": prov["train"]}) == S.NOT_RUN


def test_the_adaptive_table_flags_a_weak_attack_and_a_raised_number():
    """Two attacked detectors at the cell's ε 0.05 and at 0.3: dispersion's number was raised by the 2× steps check
    (evasion_added 0.1) and reaches 0.97 at 0.3; nic stays at 0.5 at 0.3, so the attack is too weak there."""
    keys = {"stage": "detection", "dataset": "d", "model": "m", "attack": "adaptive", "subset": "correct"}
    rows = []
    for det, at_cell, top, added in (("dispersion", 0.9, 0.97, 0.1), ("nic", 0.4, 0.5, 0.0)):
        for eps, v in ((0.05, at_cell), (0.3, top)):
            rows.append(row("evasion_rate", v, (v - 0.1, min(v + 0.1, 1)), 30, **keys, explainer=det, eps=eps,
                            target="best λ"))
            rows.append(row("evasion_rate", 0.1, (0.0, 0.2), 30, **keys, explainer=det, eps=eps, target="λ=0"))
        for check in ("2× steps + restart", "square (black box)"):
            rows.append(row("evasion_rate", 0.5, (0.4, 0.6), 30, **keys, explainer=det, eps=0.05, target=check))
            rows.append(row("evasion_added", added if check.startswith("2×") else 0.0, (0, 0.2), 30, **keys,
                            explainer=det, eps=0.05, target=check))
    t = N.adaptive_table(pd.DataFrame(rows)).set_index("detector")
    assert t.loc["dispersion", "_strong"] and not t.loc["nic", "_strong"]
    assert t.loc["dispersion", "raised by"].startswith("2× steps + restart") and t.loc["nic", "raised by"] == "—"
    assert t.loc["dispersion", "gradient"] == "softplus twin" and t.loc["nic", "gradient"] == "exact"
    assert t.loc["dispersion", "_at_cell"].value == 0.9


def test_fooling_facts_rank_by_intervals_and_count_over_models():
    """Both attacks fool every correct image (tied on the fooling rate); over all attacked images DeepFool's
    1.00 [0.96, 1] lies above PGD's 0.83 [0.75, 0.89], so it alone tops the flip rate; the table has both rows."""
    from advxai.book.abstract import NOT_IN_BUILD

    f = N.fooling_facts(_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89)))
    assert f["ga-top-fooling"] == "deepfool and pgd on 1 model" and f["ga-top-flip"] == "deepfool on 1 model"
    assert "2 rows of 1 model" in f["ga-fooling-table"] and f["ga-fooling-table"].count("chest_xray_64 · cnn") == 2
    assert N.fooling_facts(_table((1.0, 0.96, 1.0), (0.83, 0.75, 0.89)), "radarmix", "rm")["rm-top-fooling"] == (
        NOT_IN_BUILD)


def test_a_sentence_table_entry_is_its_not_run_line_or_its_sentences_with_the_facts_it_has():
    from advxai.book import sentences
    from advxai.book.abstract import NOT_IN_BUILD

    entries = {"x": {"when": "a", "not_run": "Not run.", "list": True,
                     "sentences": ["A is {a}.", "B is {b}, after {a}."]}}
    assert sentences.render("x", {"a": NOT_IN_BUILD, "b": "2"}, entries) == "Not run."
    assert sentences.render("x", {"a": "1", "b": NOT_IN_BUILD}, entries) == "- A is 1."  # B's number is missing
    assert sentences.render("x", {"a": "1", "b": "2"}, entries) == "- A is 1.\n- B is 2, after 1."
    with pytest.raises(KeyError, match="names facts no code computes"):
        sentences.render("x", {"a": "1"}, entries)


def test_every_fact_the_sentence_table_names_is_computed_for_any_grid():
    """book/sentences.yml: each entry's facts exist (robust.facts on an empty table), and an empty build shows each
    entry's not-run line."""
    from advxai.book import aggregate as AG
    from advxai.book import robust, sentences
    from advxai.measure import tables

    empty = pd.DataFrame(columns=tables.COLUMNS)
    facts = {**robust.facts(empty), **AG.detection_facts(empty)}
    assert AG.detection_glue(empty)["det-adaptive-tables"].data == ""  # a grid without detection: nothing pasted
    said = sentences.glue_all(facts)
    assert set(said) == set(sentences.table()) and all(said[k] == sentences.table()[k]["not_run"] for k in said)
    named = {k for e in sentences.table().values() for s in e["sentences"] for k in sentences.FIELD.findall(s)}
    assert named <= set(facts), named - set(facts)
