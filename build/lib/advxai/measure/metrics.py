"""Every formula of the book, each citing its source. Pure NumPy / scikit-learn / scikit-image: no TensorFlow.

Conventions: images and heatmaps are float arrays in [0, 1]; ``y`` are integer labels; ``probs`` are
softmax probabilities (N, K).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..errors import ParameterError

# --- classification (Grad-Attacks / RADAR-MIX Table II) -------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def binary_auc(is_pos: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann–Whitney statistic, P(score_pos > score_neg) with ties counting one half — equal to
    scikit-learn's ``roc_auc_score`` (tested) and fast enough for bootstrap loops. NaN if one class is absent."""
    from scipy.stats import rankdata

    is_pos = np.asarray(is_pos).astype(bool)
    n_pos, n_neg = is_pos.sum(), (~is_pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((rankdata(score)[is_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(y: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC: binary on P(class 1); multi-class one-vs-rest, macro-averaged over the classes present
    (scikit-learn's ``multi_class="ovr"``). NaN if only one class."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return binary_auc(y == 1, probs[:, 1])
    return float(np.mean([binary_auc(y == k, probs[:, k]) for k in np.unique(y)]))


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix C[true, predicted] (fast: one bincount, called inside bootstrap loops)."""
    return np.bincount(np.asarray(y) * n_classes + np.asarray(pred), minlength=n_classes**2).reshape(n_classes, -1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)  # 0 where undefined


def classification_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy, AUC, F1, precision, recall, specificity, MCC (the seeds' Table II set), and balanced accuracy.

    From the confusion matrix with TP_k, FP_k, FN_k, TN_k per class k: precision TP/(TP+FP), recall
    TP/(TP+FN), F1 2TP/(2TP+FP+FN), specificity TN/(TN+FP) (0 where a denominator is 0, as scikit-learn's
    ``zero_division=0``). Binary tasks score the positive class 1 (pneumonia); multi-class tasks take the
    macro mean over classes. Balanced accuracy is the mean recall over classes (what imbalanced sets such as
    ISIC, 67 % NV, need beside accuracy; a constant classifier scores 1/K). MCC is Gorodkin's multi-class
    form (= Matthews' for two classes): (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), c correct,
    s total, t_k true and p_k predicted counts.
    """
    y = np.asarray(y)
    k = probs.shape[1]
    cm = confusion(y, probs.argmax(1), k).astype(np.float64)
    s, c = cm.sum(), np.trace(cm)
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    tn = s - tp - fp - fn
    per = {"f1": _ratio(2 * tp, 2 * tp + fp + fn), "precision": _ratio(tp, tp + fp),
           "recall": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp)}
    t, p = cm.sum(1), cm.sum(0)
    den = np.sqrt((s**2 - p @ p) * (s**2 - t @ t))
    out = {"accuracy": float(c / s) if s else float("nan"), "auc": auc(y, probs)}
    out.update({name: float(v[1] if k == 2 else v.mean()) for name, v in per.items()})
    out["mcc"] = float((c * s - t @ p) / den) if den > 0 else 0.0
    present = t > 0
    out["balanced_accuracy"] = float(per["recall"][present].mean()) if present.any() else float("nan")
    return out


# --- attack outcome -------------------------------------------------------------------------------------


def fooling_rate(y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray) -> float:
    """FR = share of the *correctly classified* images whose prediction changes under attack (the standard
    definition, e.g. Moosavi-Dezfooli et al. 2016). NaN when no image is classified correctly."""
    correct = np.asarray(pred_clean) == np.asarray(y)
    return float(np.mean(np.asarray(pred_adv)[correct] != np.asarray(pred_clean)[correct])) if correct.any() \
        else float("nan")


def flip_rate(pred_clean: np.ndarray, pred_adv: np.ndarray) -> float:
    """The Grad-Attacks seed's "fooling rate": share of *all* attacked images whose prediction changes. It
    counts an already-wrong image that an attack flips back to the true class (DeepFool does) as fooled."""
    return float(np.mean(np.asarray(pred_clean) != np.asarray(pred_adv)))


def attack_success_rate(y: np.ndarray, pred_adv: np.ndarray) -> float:
    """ASR = 1 − accuracy on the adversarial images (RADAR-MIX), over the subset it is given."""
    return float(1.0 - np.mean(np.asarray(y) == np.asarray(pred_adv)))


def perturbation_norms(x: np.ndarray, x_adv: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image achieved L2 and L∞ norms of δ = x_adv − x (pixel scale [0, 1])."""
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return {"l2": np.linalg.norm(d, axis=1), "linf": np.abs(d).max(axis=1)}


# --- image distortion -----------------------------------------------------------------------------------


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ParameterError(f"shapes differ: {a.shape} vs {b.shape}; compare images of the same size")
    return a, b


def psnr(clean: np.ndarray, adv: np.ndarray) -> float:
    """PSNR = 10·log10(1 / MSE) for images in [0, 1] (data_range 1); +inf for identical images."""
    a, b = _pair(clean, adv)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def ssim(a: np.ndarray, b: np.ndarray, win_size: int = 7, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) with a uniform ``win_size`` window; channels averaged for (H, W, C).

    scikit-image defaults otherwise (K1 0.01, K2 0.03). ``win_size`` is clipped to the image (odd, ≥ 3).
    """
    a, b = _pair(a, b)
    if a.ndim == 3 and a.shape[-1] == 1:
        a, b = a[..., 0], b[..., 0]
    win = min(win_size, *(s if s % 2 else s - 1 for s in a.shape[:2]))
    if win < 3:
        raise ParameterError(f"images of shape {a.shape} are too small for SSIM (need ≥ 3×3)")
    return float(structural_similarity(a, b, win_size=win, data_range=data_range,
                                       channel_axis=-1 if a.ndim == 3 else None))


def nissim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    """NISSIM = (1 − SSIM) / 2 ∈ [0, 1]: 0 for identical images, 1 for perfectly anti-correlated ones."""
    return (1.0 - ssim(a, b, **kw)) / 2.0


def pairwise(fn: Callable[..., float], a: np.ndarray, b: np.ndarray, **kw) -> np.ndarray:
    """Apply an image-pair metric image by image to two stacks (N, ...)."""
    a, b = _pair(a, b)
    return np.array([fn(u, v, **kw) for u, v in zip(a, b, strict=True)])


# --- attack strength on Grad-CAM (Grad-Attacks) -----------------------------------------------------------


def mod(nissims: np.ndarray) -> float:
    """MOD = (1/n) Σ_i NISSIM_i: mean distortion between clean and attacked heatmaps of one (model, attack, ε)."""
    return float(np.mean(nissims))


def vid(nissims: np.ndarray) -> float:
    """VID = sqrt((1/n) Σ_i (NISSIM_i − MOD)²): the spread (population s.d.) of heatmap distortion."""
    v = np.asarray(nissims, np.float64)
    return float(np.sqrt(np.mean((v - v.mean()) ** 2)))


def vid_seed(nissims: np.ndarray, eps: float) -> float:
    """The seed code's VID, kept for the *faithful* switch: mh = (1/ε) Σ NISSIM_i; VID = sqrt((Σ (NISSIM_i − mh))² / ε).

    It divides by ε where a mean divides by n and squares the sum instead of summing squares, so it grows
    with n and with 1/ε and is not a dispersion. See the book's methods chapter.
    """
    if eps <= 0:
        raise ParameterError("the seed's VID divides by ε; it is undefined for ε = 0")
    v = np.asarray(nissims, np.float64)
    mh = v.sum() / eps
    return float(np.sqrt(np.sum(v - mh) ** 2 / eps))


def jet_overlay(image: np.ndarray, heatmap: np.ndarray, size: int = 224, alpha: float = 0.4) -> np.ndarray:
    """The seed's Grad-CAM picture: jet-coloured heatmap · α + image (0–255), min–max rescaled to uint8,
    resized to ``size`` px (what its scripts saved to JPEG and compared). Returns (size, size, 3) uint8."""
    from matplotlib import colormaps
    from PIL import Image

    img = np.asarray(image, np.float64)
    img = np.repeat(img, 3, axis=-1) if img.ndim == 3 and img.shape[-1] == 1 else img
    img = np.stack([img] * 3, -1) if img.ndim == 2 else img
    jet = colormaps["jet"](np.uint8(255 * np.clip(heatmap, 0, 1)))[..., :3] * 255.0
    jet = np.asarray(Image.fromarray(np.uint8(jet)).resize(img.shape[1::-1], Image.Resampling.BICUBIC), np.float64)
    sup = jet * alpha + img * 255.0
    sup = (sup - sup.min()) / max(sup.max() - sup.min(), 1e-12) * 255.0  # keras array_to_img(scale=True)
    return np.asarray(Image.fromarray(np.uint8(sup)).resize((size, size), Image.Resampling.BILINEAR))


def seed_ssim(a_rgb: np.ndarray, b_rgb: np.ndarray) -> float:
    """SSIM as ``tf.image.ssim(max_val=255)``: 11×11 Gaussian window σ 1.5, population covariance."""
    return float(structural_similarity(np.asarray(a_rgb, np.float64), np.asarray(b_rgb, np.float64),
                                       data_range=255.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, win_size=11))


def heatmap_nissim(clean_maps: np.ndarray, adv_maps: np.ndarray, images: np.ndarray | None = None,
                   adv_images: np.ndarray | None = None, faithful: bool = False) -> np.ndarray:
    """Per-image NISSIM between clean and attacked heatmaps.

    Default: on the raw heatmaps (H, W) in [0, 1], SSIM win 7, data_range 1.
    ``faithful=True``: as the seed did, on jet overlays of each heatmap on *its own* image (clean map on the
    clean image, attacked map on the attacked image) at 224 px, SSIM as ``tf.image.ssim`` on 0–255 RGB.
    """
    if not faithful:
        return pairwise(nissim, clean_maps, adv_maps)
    if images is None or adv_images is None:
        raise ParameterError("faithful heatmap NISSIM needs the clean and attacked images for the overlays")
    return np.array([(1.0 - seed_ssim(jet_overlay(i, c), jet_overlay(j, a))) / 2.0
                     for c, a, i, j in zip(clean_maps, adv_maps, images, adv_images, strict=True)])


# --- explanation shift (RADAR-MIX; Ghorbani et al. 2019) -------------------------------------------------


def topk_mask(saliency: np.ndarray, k: float = 0.1) -> np.ndarray:
    """Boolean mask of the ``k`` fraction of pixels with the highest saliency. Ties at the threshold are all
    kept (the mask may hold more than ``k``): breaking them by position would make two flat maps share their
    top-left pixels and inflate IoU."""
    if not 0 < k <= 1:
        raise ParameterError(f"top-k fraction must lie in (0, 1], got {k}")
    s = np.asarray(saliency, np.float64)
    n = max(1, int(round(k * s.size)))
    threshold = np.partition(s.ravel(), s.size - n)[s.size - n]  # the n-th largest value
    return s >= threshold


def is_blank(saliency: np.ndarray) -> bool:
    """A constant map (all pixels equal, e.g. LIME with no positive superpixel) ranks nothing: shift metrics
    are undefined on it, so it is counted and left out rather than compared."""
    return bool(np.ptp(np.asarray(saliency)) == 0)


def iou(a: np.ndarray, b: np.ndarray, k: float = 0.1, faithful: bool = False) -> float:
    """IoU = |A ∩ B| / |A ∪ B| of binarised maps: the top-``k`` pixels of each (default, ties kept), or, as
    the RADAR-MIX seed did, the pixels > 0 (``faithful``; saturates for Grad-CAM, whose maps are mostly > 0).
    Two empty masks give 1 (only possible with ``faithful``; blank maps are excluded before comparing)."""
    a, b = _pair(a, b)
    ma, mb = (a > 0, b > 0) if faithful else (topk_mask(a, k), topk_mask(b, k))
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0


def topk_intersection(a: np.ndarray, b: np.ndarray, k: float = 0.1) -> float:
    """Share of the top-``k`` pixels of ``a`` that are also top-``k`` in ``b`` (Ghorbani et al. 2019; ties kept)."""
    a, b = _pair(a, b)
    ma, mb = topk_mask(a, k), topk_mask(b, k)
    return float(np.logical_and(ma, mb).sum() / ma.sum())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of the pixel saliencies (Ghorbani et al. 2019); NaN if a map is constant."""
    from scipy.stats import spearmanr

    a, b = _pair(a, b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


# --- localisation (beyond both papers): does the saliency land on the lesion? -------------------------------


def mask_energy(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the saliency mass inside the lesion mask: Σ_{p∈M} s_p / Σ_p s_p (energy-based pointing game,
    Wang et al. 2020, Score-CAM). NaN for an all-zero map."""
    s, m = _pair(saliency, np.asarray(mask, np.float64))
    total = s.sum()
    return float(s[m > 0].sum() / total) if total > 0 else float("nan")


def pointing_hit(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Pointing game (Zhang et al. 2018): 1 if the most salient pixel lies inside the mask, else 0."""
    s, m = _pair(saliency, np.asarray(mask, np.float64))
    return float(m.ravel()[int(np.argmax(s))] > 0)


# --- uncertainty ----------------------------------------------------------------------------------------


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (Wilson 1927; Brown, Cai & DasGupta 2001):
    (p̂ + z²/2n ± z·sqrt(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n). Unlike a percentile bootstrap it does not
    collapse to [1, 1] when every image succeeds: 100/100 gives [0.963, 1]. (nan, nan) for n = 0."""
    from scipy.stats import norm

    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding must not exclude p̂
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return float(lo), float(hi)


def bootstrap_ci(values: np.ndarray | tuple, statistic: Callable = np.mean, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over images (Efron & Tibshirani 1993).

    ``values`` is one array or a tuple of arrays resampled together (e.g. labels and scores for AUC).
    Resamples where the statistic is undefined (NaN) are dropped; all-NaN gives (nan, nan).
    """
    arrays = values if isinstance(values, tuple) else (values,)
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    if statistic is np.mean and len(arrays) == 1:  # the common case, vectorised (same draws, same numbers)
        stats = arrays[0].astype(np.float64)[idx].mean(axis=1)
    else:
        stats = np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_many(arrays: tuple, statistics: Callable[..., dict], n_boot: int = 1000, level: float = 0.95,
                   seed: int = 0) -> dict[str, tuple[float, float]]:
    """Like :func:`bootstrap_ci` for a statistic returning several named numbers from the same resamples."""
    arrays = tuple(np.asarray(a) for a in arrays)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arrays[0]), size=(n_boot, len(arrays[0])))
    draws: dict[str, list] = {}
    for i in idx:
        for name, v in statistics(*(a[i] for a in arrays)).items():
            draws.setdefault(name, []).append(v)
    alpha = (1 - level) / 2
    out = {}
    for name, vals in draws.items():
        v = np.asarray(vals, np.float64)
        v = v[np.isfinite(v)]
        out[name] = tuple(float(q) for q in np.quantile(v, [alpha, 1 - alpha])) if len(v) else (np.nan, np.nan)
    return out
