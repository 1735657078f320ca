"""The detection protocol: can a detector that sees one input tell a clean image from an adversarial one?

* **Examples.** Negatives: clean images (every image of the detection sample). Positives: their *successful*
  adversarial versions — of images the model classifies correctly, whose prediction the attack changed. A failed
  attack is not an adversarial example and is left out (its count is in the attack-success row).
* **Folds over images.** Every image and all its adversarial twins share one fold (stratified by label, seeded):
  no twin is ever on the other side of a split. Each image's score comes from the detector fitted on the other
  folds; the out-of-fold scores are pooled, so every image is tested once.
* **Settings** — *seen*: fitted on clean + one (attack, ε) cell, tested on it; *transfer*: the same fit tested
  on every other cell (other attack, other ε); *held out*: fitted on clean + every cell of the other attacks,
  tested on each cell of the left-out attack; *held-out family*: the same with a whole attack family left out
  (:data:`advxai.attacks.FAMILIES`: FGSM, BIM and PGD are one L∞ sign-gradient family, so leaving out PGD alone
  still lets the detector see FGSM). A family of one attack reuses that attack's held-out fit.
* **Metrics.** AUROC and TPR at 1 % and 5 % FPR, with a percentile interval from a bootstrap that resamples
  images — an image's clean version and its adversarial twin together (:func:`pair_bootstrap`). Where every
  replicate gives the same 0 or 1 (perfect separation), the percentile interval has zero width; the Wilson
  interval replaces it (:func:`_degenerate`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ParameterError
from ..measure.metrics import binary_auc, wilson_ci
from . import fits
from .detectors import DETECTORS

FPRS = (0.01, 0.05)
# fitted without adversarial rows: one fit per fold serves every source
CLEAN_ONLY_FITS = ("score", "clean-density", "two-sided")


@dataclass(frozen=True)
class Cell:
    attack: str
    eps: float

    def __str__(self) -> str:
        return f"{self.attack}@{self.eps:g}"


def folds(y: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold of each image (0..k-1), stratified by label. Twins are indexed by their image, so they share it."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    if k < 2 or k > np.bincount(y).min():
        raise ParameterError(f"{k} folds need 2 ≤ k ≤ the smallest class count ({np.bincount(y).min()})")
    out = np.empty(len(y), int)
    for f, (_, test) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
        out[test] = f
    return out


def successes(y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray) -> np.ndarray:
    """Positives of one cell: correctly classified images whose prediction the attack changed."""
    return (np.asarray(pred_clean) == np.asarray(y)) & (np.asarray(pred_adv) != np.asarray(pred_clean))


FAMILY_PREFIX = "without family "


def family(attack: str) -> str:
    """The attack's family (:data:`advxai.attacks.FAMILIES`); an attack outside the registry is its own family."""
    from ..attacks import ATTACKS

    return ATTACKS[attack].family if attack in ATTACKS.names() else attack


def sources(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Training sets of adversarial examples: one per cell (seen / transfer), one per left-out attack and, where
    the grid spans two families or more, one per left-out family."""
    attacks = list(dict.fromkeys(c.attack for c in cells))
    families = list(dict.fromkeys(family(a) for a in attacks))
    out = {str(c): [c] for c in cells}
    if len(attacks) >= 2:
        out.update({f"without {a}": [c for c in cells if c.attack != a] for a in attacks})
    if len(families) >= 2:
        out.update({f"{FAMILY_PREFIX}{f}": [c for c in cells if family(c.attack) != f] for f in families})
    return out


def tested(source: str, cells: list[Cell]) -> list[Cell]:
    """The cells a training source is tested on: every cell, or only those it left out."""
    if source.startswith(FAMILY_PREFIX):
        return [c for c in cells if family(c.attack) == source[len(FAMILY_PREFIX):]]
    if source.startswith("without "):
        return [c for c in cells if c.attack == source[len("without "):]]
    return cells


def setting(source: str, cell: Cell) -> str:
    """``seen``, ``held_out``, ``held_out_family`` or ``from <cell>`` (transfer)."""
    if source.startswith(FAMILY_PREFIX):
        return "held_out_family"
    return "held_out" if source.startswith("without ") else "seen" if source == str(cell) else f"from {source}"


def cross_validate(detector: str, clean: np.ndarray, adv: dict[Cell, np.ndarray], success: dict[Cell, np.ndarray],
                   fold_of: np.ndarray, ctx: dict | None = None) -> dict[str, dict]:
    """Out-of-fold scores of ``detector`` for every training source (:func:`sources`): ``{source: {"clean": (N,),
    cell: (N,)}}``; a cell's scores are meaningful where ``success[cell]`` holds. ``clean`` and ``adv[cell]`` are
    the detector's features of every image (same order). A held-out source scores only what it left out. Within a
    fold, one fit serves every source with the same training cells (and every source, for a clean-only fit)."""
    kind = DETECTORS[detector].fit
    cells = list(adv)
    srcs = sources(cells)
    out = {s: {"clean": np.full(len(clean), np.nan), **{c: np.full(len(clean), np.nan) for c in cells}} for s in srcs}
    for f in np.unique(fold_of):
        train, test = fold_of != f, fold_of == f
        fitted = {}
        for s, pos in srcs.items():
            key = "clean" if kind in CLEAN_ONLY_FITS else tuple(map(str, pos))
            if key not in fitted:
                xs = np.concatenate([clean[train], *[adv[c][train & success[c]] for c in pos]])
                ys = np.r_[np.zeros(train.sum()), np.ones(sum((train & success[c]).sum() for c in pos))]
                # the attack fooled no training image: no detector, its cells stay NaN (not rows)
                fitted[key] = fits.fit(kind, xs, ys, ctx) if ys.any() else None
            if (score := fitted[key]) is None:
                continue
            out[s]["clean"][test] = score(clean[test])
            for c in tested(s, cells):
                out[s][c][test] = score(adv[c][test])
    return out


# --- metrics with a pair bootstrap -------------------------------------------------------------------------


def tpr_at_fpr(is_adv: np.ndarray, score: np.ndarray, fpr: float = 0.05) -> float:
    """Share of adversarial inputs caught when at most ``fpr`` of clean inputs are flagged (score > threshold):
    the threshold lets through the ⌊fpr·n_clean⌋ highest clean scores, so TPR = share of adversarial scores
    above the next clean score. Equals the ROC curve read at ``fpr`` (tests compare with scikit-learn)."""
    is_adv = np.asarray(is_adv).astype(bool)
    clean = np.sort(np.asarray(score)[~is_adv])[::-1]
    k = int(np.floor(fpr * len(clean) + 1e-9))
    if k >= len(clean):
        return 1.0
    return float(np.mean(np.asarray(score)[is_adv] > clean[k]))


def _by_group(w, group, g):
    """Sum the weights (B, n) of items that share a score: (B, g)."""
    from scipy.sparse import csr_matrix

    onehot = csr_matrix((np.ones(len(group), np.float32), (np.arange(len(group)), group)), shape=(len(group), g))
    return np.asarray((onehot.T @ np.asarray(w).T).T, dtype=w.dtype)


def _weighted(neg_s, pos_s, wn, wp, fprs=FPRS):
    """AUROC and TPR at each FPR for weights (B, n) on the negatives and positives: B bootstrap replicates at
    once. With weights 1 these are :func:`metrics.binary_auc` and :func:`tpr_at_fpr` exactly (tested)."""
    scores = np.r_[neg_s, pos_s]
    uniq, group = np.unique(scores, return_inverse=True)
    gn, gp = group[:len(neg_s)], group[len(neg_s):]
    g = len(uniq)
    wng, wpg = _by_group(wn, gn, g), _by_group(wp, gp, g)
    tot_n, tot_p = wng.sum(1), wpg.sum(1)
    below_n = np.cumsum(wng, 1) - wng
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (wpg * (below_n + 0.5 * wng)).sum(1) / (tot_n * tot_p)
        out = {"auroc": auc}
        desc_n = np.cumsum(wng[:, ::-1], 1)[:, ::-1]  # clean weight at or above each score group
        above_p = np.cumsum(wpg[:, ::-1], 1)[:, ::-1] - wpg  # adversarial weight strictly above
        for f in fprs:
            k = np.floor(f * tot_n + 1e-9)
            idx = (desc_n > k[:, None]).sum(1) - 1  # the clean score at position k from the top
            tpr = np.where(idx >= 0, above_p[np.arange(len(idx)), np.clip(idx, 0, g - 1)], tot_p) / tot_p
            out[f"tpr_at_{round(f * 100)}fpr"] = tpr
    return out


@lru_cache(maxsize=4)
def _counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each image is drawn in each replicate; the same draws for every cell of a study (cached)."""
    # float32 halves the cumulative sums' cost; counts and their sums stay exact (integers < 2²⁴)
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_boot).astype(np.float32)


def pair_bootstrap(clean_score: np.ndarray, adv_score: np.ndarray, positive: np.ndarray, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, ci_low, ci_high)} over negatives = every clean image, positives = the images where
    ``positive`` holds (their adversarial twin). Each replicate draws images with replacement and carries an
    image's clean and adversarial score together (counts as weights)."""
    clean_score, adv_score = np.asarray(clean_score, np.float64), np.asarray(adv_score, np.float64)
    positive = np.asarray(positive, bool)
    n = len(clean_score)
    if positive.sum() == 0 or n == 0:
        return {m: (np.nan, np.nan, np.nan) for m in ("auroc", *[f"tpr_at_{round(f * 100)}fpr" for f in FPRS])}
    point = _weighted(clean_score, adv_score[positive], np.ones((1, n)), np.ones((1, positive.sum())))
    counts = _counts(n, n_boot, seed)
    boot = _weighted(clean_score, adv_score[positive], counts, counts[:, positive])
    a = (1 - level) / 2
    out = {}
    for m, v in point.items():
        b = boot[m][np.isfinite(boot[m])]
        lo, hi = np.quantile(b, [a, 1 - a]) if len(b) else (np.nan, np.nan)
        if lo == hi == v[0] and v[0] in (0.0, 1.0):
            lo, hi = _degenerate(m, float(v[0]), n, int(positive.sum()), level)
        out[m] = (float(v[0]), float(lo), float(hi))
    return out


def _degenerate(metric: str, value: float, n_clean: int, n_adv: int, level: float) -> tuple[float, float]:
    """Interval of a metric at 0 or 1 on every bootstrap replicate (perfect separation: 30 + 30 images gave AUROC
    "1.00 [1.00, 1.00]"): the Wilson interval of a proportion at that value. A TPR is the share of the n_adv
    adversarials caught; an AUROC, the share of correctly ordered (clean, adversarial) pairs, taken — conservatively,
    since pairs that share an image are not independent — over min(n_clean, n_adv) independent comparisons."""
    n = n_adv if metric.startswith("tpr") else min(n_clean, n_adv)
    return wilson_ci(round(value * n), n, level)


def scores(is_adv: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC and TPR at 5 % FPR of labelled scores (no bootstrap)."""
    if len(np.unique(is_adv)) < 2:
        return {"auroc": np.nan, "tpr_at_5fpr": np.nan}
    return {"auroc": binary_auc(is_adv, score), "tpr_at_5fpr": tpr_at_fpr(is_adv, score)}


def records(detector: str, oof: dict[str, dict], success: dict[Cell, np.ndarray], n_boot: int = 1000,
            seed: int = 0) -> list[dict]:
    """One record per (training source, tested cell) with the setting (``seen``, ``held_out``, ``from <cell>``),
    the pair-bootstrap metrics and the number of clean and adversarial test images."""
    out = []
    for src, per in oof.items():
        for c, s in per.items():
            if c == "clean" or not np.isfinite(s).all():
                continue
            m = pair_bootstrap(per["clean"], s, success[c], n_boot, seed)
            out.append({"detector": detector, "cell": c, "setting": setting(src, c), "n_clean": len(s),
                        "n_adv": int(success[c].sum()), **m})
    return out


def timed_features(detector: str, views: dict, ref) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    return DETECTORS[detector].features(views, ref), time.perf_counter() - t0


def family_difference(oof_a: dict[str, dict], oof_b: dict[str, dict], success: dict[Cell, np.ndarray],
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict | None:
    """The paired difference in held-out-family AUROC between detectors ``a`` and ``b``: for every family left out
    of the fitting and each of its cells, AUROC(a) − AUROC(b) on that cell, averaged over those cells. Both
    detectors are scored on the same image draws (the pair bootstrap's counts are shared), so each replicate is a
    paired difference. ``{"value", "ci_low", "ci_high", "replicates" (n_boot,), "cells"}``; ``None`` where the grid
    spans one family or no left-out cell has a successful adversarial."""
    points, boots, cells = [], [], 0
    for src in (s for s in oof_a if s.startswith(FAMILY_PREFIX)):
        for c, sa in oof_a[src].items():
            sb = oof_b[src].get(c)
            if c == "clean" or sb is None or not (np.isfinite(sa).all() and np.isfinite(sb).all()):
                continue
            pos = np.asarray(success[c], bool)
            if not pos.any():
                continue
            n = len(sa)
            counts = _counts(n, n_boot, seed)
            one = np.ones((1, n))
            pair = [(_weighted(o[src]["clean"], s[pos], one, one[:, pos])["auroc"][0],
                     _weighted(o[src]["clean"], s[pos], counts, counts[:, pos])["auroc"])
                    for o, s in ((oof_a, sa), (oof_b, sb))]
            points.append(pair[0][0] - pair[1][0])
            boots.append(pair[0][1] - pair[1][1])
            cells += 1
    if not cells:
        return None
    # a replicate that draws none of a cell's successes has no AUROC there: it averages the cells it has, and a
    # replicate with none is dropped
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmean(boots, axis=0)
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return None
    a = (1 - level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return {"value": float(np.mean(points)), "ci_low": float(lo), "ci_high": float(hi), "replicates": boot,
            "cells": cells}


def pooled_over_settings(replicates: dict[tuple[str, str], np.ndarray], points: dict[tuple[str, str], float],
                         n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """One estimate over settings that share datasets: the mean of the settings' point estimates, with an interval
    from a hierarchical bootstrap — each replicate draws datasets with replacement, then settings (``(dataset,
    model)`` keys) within each drawn dataset, then one bootstrap replicate of each drawn setting's own estimate —
    so that neither settings on one dataset nor images within a setting are counted as independent. With one
    setting it is that setting's own percentile interval. ``(value, ci_low, ci_high)``."""
    replicates = {k: np.asarray(v, float)[np.isfinite(v)] for k, v in replicates.items()}
    keys = sorted(k for k, v in replicates.items() if len(v))
    by_dataset: dict[str, list] = {}
    for k in keys:
        by_dataset.setdefault(k[0], []).append(k)
    datasets = sorted(by_dataset)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        drawn = []
        for d in rng.integers(len(datasets), size=len(datasets)):
            group = by_dataset[datasets[d]]
            # one image draw per dataset: settings on one dataset score the same images (the pair bootstrap's
            # counts are shared), so their replicates of one index move together
            i = rng.integers(1 << 30)
            for s in rng.integers(len(group), size=len(group)):
                reps = replicates[group[s]]
                drawn.append(reps[i % len(reps)])
        out[b] = np.mean(drawn)
    a = (1 - level) / 2
    lo, hi = np.quantile(out, [a, 1 - a])
    return float(np.mean([points[k] for k in keys])), float(lo), float(hi)
