"""From a stage's arrays to tidy rows (see :mod:`advxai.tables`): the numbers every table and chapter shows.

Each function takes per-image arrays and returns rows with 95 % bootstrap intervals over images.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from .tables import mean_row, row, stat_row

CLASSIFICATION = ("accuracy", "auc", "f1", "precision", "recall", "specificity", "mcc")


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
