"""From a stage's arrays to tidy rows (see :mod:`advxai.tables`): the numbers every table and chapter shows.

Each function takes per-image arrays and returns rows with 95 % bootstrap intervals over images.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from .tables import mean_row, row, stat_row

CLASSIFICATION = ("accuracy", "balanced_accuracy", "auc", "f1", "precision", "recall", "specificity", "mcc")


def classification_rows(y: np.ndarray, probs: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Table II metrics with bootstrap intervals (labels and probabilities resampled together)."""
    point = M.classification_metrics(y, probs)
    cis = M.bootstrap_many((y, probs), M.classification_metrics, n_boot, seed=seed)
    return [row(name, point[name], cis[name], len(y), **keys) for name in CLASSIFICATION]


def attack_rows(y: np.ndarray, probs_clean: np.ndarray, probs_adv: np.ndarray, x: np.ndarray, x_adv: np.ndarray,
                seconds: float, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Under one (attack, ε): Table II metrics on the adversarial images, fooling rate, ASR, achieved norms."""
    pred_c, pred_a = probs_clean.argmax(1), probs_adv.argmax(1)
    norms = M.perturbation_norms(x, x_adv)
    rows = classification_rows(y, probs_adv, n_boot, seed, **keys)
    rows += [
        mean_row("fooling_rate", (pred_c != pred_a).astype(float), n_boot, seed, **keys),
        mean_row("asr", (pred_a != y).astype(float), n_boot, seed, **keys),
        mean_row("l2", norms["l2"], n_boot, seed, **keys),
        mean_row("linf", norms["linf"], n_boot, seed, **keys),
        row("seconds", seconds, n=len(y), **keys),
    ]
    return rows


def distortion_rows(x: np.ndarray, x_adv: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """PSNR, SSIM and NISSIM between each clean and attacked image (data range 1). PSNR of an unchanged
    image is +inf; such images are left out of the PSNR mean (``n`` says how many remain)."""
    ssims = M.pairwise(M.ssim, x, x_adv)
    return [
        mean_row("psnr", M.pairwise(M.psnr, x, x_adv), n_boot, seed, **keys),
        mean_row("ssim", ssims, n_boot, seed, **keys),
        mean_row("nissim", (1 - ssims) / 2, n_boot, seed, **keys),
    ]


def strength_rows(nissims: np.ndarray, faithful: bool = False, n_boot: int = 1000, seed: int = 0,
                  **keys) -> list[dict]:
    """Attack strength on the explanation: per-image heatmap NISSIM → MOD (mean) and VID (spread).

    ``nissim`` is the mean heatmap NISSIM (the same number as MOD, kept under the image metric's name);
    ``faithful`` adds the seed's own columns: ``nissim_max`` (what its "nissim" column held) and
    ``vid_seed`` (its VID expression, see :func:`advxai.metrics.vid_seed`).
    """
    v = np.asarray(nissims, np.float64)
    rows = [
        mean_row("mod", v, n_boot, seed, **keys),
        stat_row("vid", M.vid, (v,), n_boot, seed, **keys),
    ]
    if faithful:
        rows += [row("nissim_max", float(v.max()), n=len(v), **keys)]
        if keys.get("eps", 0) > 0:
            rows += [row("vid_seed", M.vid_seed(v, keys["eps"]), n=len(v), **keys)]
    return rows


def shift_rows(clean_maps: np.ndarray, adv_maps: np.ndarray, k: float = 0.1, faithful: bool = False,
               n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Explanation shift between each image's clean and attacked map (RADAR-MIX; Ghorbani et al. 2019):
    IoU of binarised maps (top-``k`` pixels; ``faithful``: > 0 as the seed), SSIM (window 5, as the seed),
    Spearman rank correlation and top-``k`` intersection, each a mean over images with its interval."""
    per_image = {
        "iou": M.pairwise(M.iou, clean_maps, adv_maps, k=k, faithful=faithful),
        "ssim": M.pairwise(M.ssim, clean_maps, adv_maps, win_size=5),
        "spearman": M.pairwise(M.spearman, clean_maps, adv_maps),
        "topk_intersection": M.pairwise(M.topk_intersection, clean_maps, adv_maps, k=k),
    }
    return [mean_row(name, v, n_boot, seed, **keys) for name, v in per_image.items()]


def localisation_rows(maps: np.ndarray, masks: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> list[dict]:
    """Does the map land on the lesion? Mean share of saliency inside the mask (``mask_energy``) and the
    pointing-game hit rate (``pointing_game``), with the mask's own area share as the chance level."""
    return [
        mean_row("mask_energy", M.pairwise(M.mask_energy, maps, masks), n_boot, seed, **keys),
        mean_row("pointing_game", M.pairwise(M.pointing_hit, maps, masks), n_boot, seed, **keys),
        mean_row("mask_area", np.asarray(masks, np.float64).reshape(len(masks), -1).mean(1), n_boot, seed, **keys),
    ]


def detection_rows(records: list[dict], detector: str, **keys) -> list[dict]:
    """Rows from :func:`advxai.detect.leave_one_attack_out` records: ``auroc`` and ``tpr_at_5fpr`` with the
    held-out attack in ``attack``, its ε in ``eps``, and the detector's inputs in ``explainer`` (``none``:
    outputs only; ``gradcam``: the map only; ``outputs + gradcam``: both)."""
    return [row(m, r[m][0], r[m][1:], r["n"], **{**keys, "attack": r["held_out"], "eps": r["eps"] or 0.0,
                                                   "explainer": detector})
            for r in records for m in ("auroc", "tpr_at_5fpr")]
