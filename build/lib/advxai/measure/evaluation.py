"""From a stage's arrays to tidy rows (see :mod:`advxai.measure.tables`): the numbers every table and chapter shows.

Each function takes per-image arrays and returns rows, each naming the subset of images it is over
(:mod:`advxai.measure.subsets`). Proportions carry Wilson intervals, means and other statistics bootstrap intervals
over images; below ``tables.MIN_N`` images, no interval.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from .subsets import SHIFT_SUBSETS, masks
from .tables import MIN_N, NO_CI, mean_row, proportion_row, row, stat_row

CLASSIFICATION = ("accuracy", "balanced_accuracy", "auc", "f1", "precision", "recall", "specificity", "mcc")
RATES = ("balanced_accuracy", "f1", "precision", "recall", "specificity")  # bounded in [0, 1]


def _binary_hits(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """For two classes, recall / precision / specificity are proportions over their own denominators."""
    return {"recall": pred[y == 1] == 1, "precision": y[pred == 1] == 1, "specificity": pred[y == 0] == 0}


def classification_rows(y: np.ndarray, probs: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Table II metrics. Accuracy (and, for two classes, recall, precision, specificity) are proportions with
    Wilson intervals; AUC, F1, MCC, balanced accuracy and macro averages are bootstrapped (labels and
    probabilities resampled together). A bootstrap of a rate that sits at 0 or 1 on every resample has zero
    width; such a rate gets the Wilson interval of that proportion over its ``n`` images instead."""
    y = np.asarray(y)
    pred = probs.argmax(1)
    point = M.classification_metrics(y, probs)
    n = len(y)
    cis = M.bootstrap_many((y, probs), M.classification_metrics, n_boot, seed=seed) if n >= MIN_N else {}
    hits = {"accuracy": pred == y, **(_binary_hits(y, pred) if probs.shape[1] == 2 else {})}
    rows = []
    for name in CLASSIFICATION:
        if name in hits:
            rows.append(proportion_row(name, hits[name], **keys))
            continue
        ci = cis.get(name, NO_CI)
        if name in RATES and ci[0] == ci[1] and point[name] in (0.0, 1.0):
            ci = M.wilson_ci(int(round(point[name] * n)), n)
        rows.append(row(name, point[name], ci, n, **keys))
    return rows


def norm_rows(x: np.ndarray, x_adv: np.ndarray, success: np.ndarray, **keys) -> list[dict]:
    """Achieved ‖δ‖₂ and ‖δ‖∞ averaged over the *successful* adversarials only (a failed attack is not a
    perturbation of size 0), and the largest ‖δ‖∞ over every image (the budget check)."""
    norms = M.perturbation_norms(x, x_adv)
    ok = np.asarray(success, bool)
    return [mean_row("l2", norms["l2"][ok], **keys), mean_row("linf", norms["linf"][ok], **keys),
            row("linf_max", norms["linf"].max() if len(x) else np.nan, n=len(x), **keys)]


def attack_rows(y: np.ndarray, probs_clean: np.ndarray, probs_adv: np.ndarray, x: np.ndarray, x_adv: np.ndarray,
                seconds: float, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Under one (attack, ε), over two subsets:

    * ``attacked`` (all images): Table II metrics on the adversarial images, ASR = 1 − accuracy, the seed's
      ``flip_rate`` (share of predictions that change), norms over the images whose prediction changed;
    * ``correct`` (images the clean model gets right): accuracy, ASR and the **fooling rate** (share whose
      prediction changes: the standard definition), norms over the fooled images.
    """
    y = np.asarray(y)
    pred_c, pred_a = probs_clean.argmax(1), probs_adv.argmax(1)
    flipped = pred_c != pred_a
    c = masks(y, pred_c, pred_a)["correct"]
    rows = classification_rows(y, probs_adv, n_boot, seed, subset="attacked", **keys)
    rows += [proportion_row("asr", pred_a != y, subset="attacked", **keys),
             proportion_row("flip_rate", flipped, subset="attacked", **keys)]
    rows += norm_rows(x, x_adv, flipped, subset="attacked", **keys)
    rows += [proportion_row("accuracy", pred_a[c] == y[c], subset="correct", **keys),
             proportion_row("asr", pred_a[c] != y[c], subset="correct", **keys),
             proportion_row("fooling_rate", flipped[c], subset="correct", **keys)]
    rows += norm_rows(x[c], x_adv[c], flipped[c], subset="correct", **keys)
    rows.append(row("seconds", seconds, n=len(y), subset="attacked", **keys))
    return rows


def distortion_rows(x: np.ndarray, x_adv: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """PSNR, SSIM and NISSIM between each clean and attacked image (data range 1), over every attacked image.
    PSNR of an unchanged image is +inf: those images are left out of the PSNR mean and counted
    (``unchanged`` row)."""
    ssims = M.pairwise(M.ssim, x, x_adv)
    psnrs = M.pairwise(M.psnr, x, x_adv)
    same = ~np.isfinite(psnrs)
    return [
        mean_row("psnr", psnrs[~same], n_boot, seed, subset="attacked", **keys),
        row("unchanged", int(same.sum()), n=len(x), subset="attacked", **keys),
        mean_row("ssim", ssims, n_boot, seed, subset="attacked", **keys),
        mean_row("nissim", (1 - ssims) / 2, n_boot, seed, subset="attacked", **keys),
    ]


def split_masks(y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray) -> dict[str, np.ndarray]:
    """The subsets an explanation comparison is reported on: ``attacked``, ``fooled``, ``not_fooled``."""
    m = masks(y, pred_clean, pred_adv)
    return {s: m[s] for s in SHIFT_SUBSETS}


def strength_rows(nissims: np.ndarray, split: dict[str, np.ndarray], faithful: bool = False, n_boot: int = 1000,
                  seed: int = 0, **keys) -> list[dict]:
    """Attack strength on the explanation, per subset of ``split``: per-image heatmap NISSIM → MOD (mean)
    and VID (spread). ``faithful`` adds the seed's own columns on ``attacked``: ``nissim_max`` (what its
    "nissim" column held) and ``vid_seed`` (its VID expression, :func:`advxai.measure.metrics.vid_seed`)."""
    v = np.asarray(nissims, np.float64)
    rows = []
    for s, sel in split.items():
        rows += [mean_row("mod", v[sel], n_boot, seed, subset=s, **keys)]
        rows += [stat_row("vid", M.vid, (v[sel],), n_boot, seed, subset=s, **keys)] if sel.any() else []
    if faithful:
        rows += [row("nissim_max", float(v.max()), n=len(v), subset="attacked", **keys)]
        if keys.get("eps", 0) > 0:
            rows += [row("vid_seed", M.vid_seed(v, keys["eps"]), n=len(v), subset="attacked", **keys)]
    return rows


SHIFT_METRICS = ("iou", "ssim", "spearman", "topk_intersection")


def shift_rows(clean_maps: np.ndarray, adv_maps: np.ndarray, split: dict[str, np.ndarray], k: float = 0.1,
               faithful: bool = False, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Explanation shift between each image's clean and attacked map (RADAR-MIX; Ghorbani et al. 2019), per
    subset of ``split``: IoU of binarised maps (top-``k`` pixels, ties kept; ``faithful``: > 0 as the seed),
    SSIM (window 5, as the seed), Spearman rank correlation and top-``k`` intersection, each a mean over images.
    Pairs with a blank (constant) map are left out and counted in a ``blank_pairs`` row."""
    blank = np.array([M.is_blank(a) or M.is_blank(b) for a, b in zip(clean_maps, adv_maps, strict=True)], bool)
    ok = ~blank
    per_image = {name: np.full(len(blank), np.nan) for name in SHIFT_METRICS}
    if ok.any():
        c, a = clean_maps[ok], adv_maps[ok]
        per_image["iou"][ok] = M.pairwise(M.iou, c, a, k=k, faithful=faithful)
        per_image["ssim"][ok] = M.pairwise(M.ssim, c, a, win_size=5)
        per_image["spearman"][ok] = M.pairwise(M.spearman, c, a)
        per_image["topk_intersection"][ok] = M.pairwise(M.topk_intersection, c, a, k=k)
    rows = []
    for s, sel in split.items():
        rows.append(row("blank_pairs", int((sel & blank).sum()), n=int(sel.sum()), subset=s, **keys))
        rows += [mean_row(name, v[sel & ok], n_boot, seed, subset=s, **keys) for name, v in per_image.items()]
    return rows


def localisation_rows(maps: np.ndarray, masks_: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Does the map land on the lesion? Over every image of the version (subset ``attacked``): mean share of
    saliency inside the mask (``mask_energy``), the pointing-game hit rate (``pointing_game``, a proportion),
    and the mask's own area share (``mask_area``, the chance level). Blank maps are left out and counted."""
    blank = np.array([M.is_blank(m) for m in maps], bool)
    ok = ~blank
    return [
        row("blank_maps", int(blank.sum()), n=len(maps), subset="attacked", **keys),
        mean_row("mask_energy", M.pairwise(M.mask_energy, maps[ok], masks_[ok]) if ok.any() else [], n_boot, seed,
                 subset="attacked", **keys),
        proportion_row("pointing_game", M.pairwise(M.pointing_hit, maps[ok], masks_[ok]).astype(bool)
                       if ok.any() else [], subset="attacked", **keys),
        mean_row("mask_area", np.asarray(masks_, np.float64).reshape(len(masks_), -1).mean(1), n_boot, seed,
                 subset="attacked", **keys),
    ]


DETECTION_METRICS = ("auroc", "tpr_at_1fpr", "tpr_at_5fpr")


def detection_rows(records: list[dict], **keys) -> list[dict]:
    """Rows from :func:`advxai.detect.records`: ``auroc``, ``tpr_at_1fpr``, ``tpr_at_5fpr`` with the tested cell in
    ``attack`` / ``eps``, the detector in ``explainer``, the setting in ``target`` (``seen``, ``held_out``, or
    ``from <attack>@<ε>`` for transfer), subset ``fooled`` (the positives), ``n`` = clean + adversarial images."""
    return [row(m, r[m][0], r[m][1:], r["n_clean"] + r["n_adv"],
                **{**keys, "attack": r["cell"].attack, "eps": r["cell"].eps, "explainer": r["detector"],
                   "target": r["setting"], "subset": "fooled"})
            for r in records for m in DETECTION_METRICS]


def detection_attack_rows(y: np.ndarray, preds: dict, success: dict, **keys) -> list[dict]:
    """Per cell: the fooling rate over the correctly classified images (attack success, Wilson interval) and the
    number of positives (``n_adversarial``, with the number of clean images in ``n``)."""
    correct = preds["clean"] == np.asarray(y)
    rows = []
    for c, ok in success.items():
        rows.append(proportion_row("fooling_rate", ok[correct], **keys, attack=c.attack, eps=c.eps, subset="correct"))
        rows.append(row("n_adversarial", int(ok.sum()), n=len(ok), **keys, attack=c.attack, eps=c.eps,
                        subset="fooled"))
    return rows


def detection_cost_rows(cost: dict[str, float], n: int, **keys) -> list[dict]:
    """Milliseconds per image of each detector, explanation included (``explainer`` = the detector)."""
    return [row("ms_per_image", ms, n=n, **{**keys, "explainer": d, "subset": "attacked"}) for d, ms in cost.items()]


def adaptive_rows(res: dict, **keys) -> list[dict]:
    """The adaptive attack on one detector (:func:`advxai.studies.detection.adaptive_study`), over the correctly
    classified test-fold images it attacked:

    * the evasion curve — attack ``adaptive``, per ε: ``evasion_rate`` (fooled *and* scored below the detector's
      5 %-FPR threshold) and ``fooling_rate``, target ``λ=<w>`` for each weight (``λ=0``: plain PGD) and
      ``best λ`` (each image's first evading λ, plain PGD included, with what the checks found and ε-nested: the
      reported number); at the cell's ε the sanity checks, target ``2× steps + restart`` and ``square (black
      box)``, each with ``evasion_added`` (the share of images it evaded that the attack had not: what it added to
      the reported number), and ``best λ, before checks``;
    * for every detector, the detection metrics of the plain cell and of the reported attack at the cell's ε
      (target ``plain`` / ``adaptive``, attack = the cell's), with their fooling and evasion rates.
    """
    c = res["cell"]
    k = {**keys, "explainer": res["detector"]}
    rows = []

    def pair(target, fooled, evaded, attack, eps):
        return [proportion_row("fooling_rate", fooled, **k, attack=attack, eps=eps, target=target, subset="correct"),
                proportion_row("evasion_rate", evaded, **k, attack=attack, eps=eps, target=target, subset="correct")]

    for e, per in res["curve"].items():
        for w, (fooled, evaded) in per.items():
            rows += pair("best λ" if w == "best" else f"λ={w:g}", fooled, evaded, "adaptive", e)
    rows += pair("best λ, before checks", *res["before_checks"]["best"], "adaptive", c.eps)
    for name, found in (("2× steps + restart", res["more_steps"]), ("square (black box)", res["square"])):
        rows += pair(name, *found, "adaptive", c.eps)
        rows.append(proportion_row("evasion_added", res["gained"][name], **k, attack="adaptive", eps=c.eps,
                                   target=name, subset="correct"))
    at = res["curve"][c.eps]
    for kind, (fooled, evaded) in (("plain", at[0.0]), ("adaptive", at["best"])):
        m = res[kind]
        n = res["n_test"] + int(fooled.sum())
        rows += [row(name, m[name][0], m[name][1:], n, **k, attack=c.attack, eps=c.eps, target=kind,
                     subset="fooled") for name in DETECTION_METRICS]
        rows += pair(kind, fooled, evaded, c.attack, c.eps)
    return rows


def seed_rows(records: list[dict], **keys) -> list[dict]:
    """Training-seed variance: per (subset, metric) the mean over seeds (``n`` = number of seeds, no interval:
    it is not a sample of images) and a ``<metric>_sd`` row with the sample standard deviation (ddof 1)."""
    import pandas as pd

    per = pd.DataFrame(records)
    rows = []
    for (subset, metric), g in per.groupby(["subset", "metric"], sort=False):
        v = g.value.to_numpy(float)
        sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        rows += [row(metric, float(v.mean()), n=len(v), **{**keys, "subset": subset}),
                 row(f"{metric}_sd", sd, n=len(v), **{**keys, "subset": subset})]
    return rows
