"""Each chapter's opening findings as *facts*: the numbers, counts and names a finding's sentence carries, computed
from the result table over every trained model of the build (architectures and training seeds together) and glued
as text (``ga-*``, ``rm-*``). The sentences are written in ``book/gradattacks.md`` and ``book/radarmix.md``, where
an author edits them; tests check the facts. A fact a build cannot compute reads :data:`NOT_IN_BUILD`.

The rules behind the facts: a count of cells instead of a list, an interval or an ``n`` beside every number, and
"more" / "fewer" only where the intervals do not overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .abstract import NOT_IN_BUILD, count_of
from .style import SPLIT_MIN, has_ci


def _models(g: pd.DataFrame) -> int:
    return g.groupby(["dataset", "model"]).ngroups


NAMES = {"fgsm": "FGSM", "bim": "BIM", "pgd": "PGD", "deepfool": "DeepFool", "cw": "C&W-L2", "uap": "UAP",
         "square": "Square"}


def name(attack: str) -> str:
    base, _, units = str(attack).partition("@")
    return NAMES.get(base, base) + (f" (ε in {units} units)" if units else "")


def _count(k: int) -> str:
    return "none" if k == 0 else str(k)


def _models_phrase(n: int) -> str:
    return "the one model" if n == 1 else f"all {n} models"


def saturation(df: pd.DataFrame, stage: str = "attack", prefix: str = "ga", level: float = 0.95) -> dict[str, str]:
    """The attacks that fooled (nearly) every correctly classified image on every trained model — an ε-bounded
    attack from the smallest ε of the grid where every model's 95 % interval reaches ``level`` (and every larger ε
    too), an ε-free attack (DeepFool, C&W) at every ε: which (``-sat-attacks``), on how many models
    (``-sat-models``), the lowest rate among them (``-sat-share``) and the images per model (``-sat-n``)."""
    from ..attacks import spec

    keys = [f"{prefix}-sat-{k}" for k in ("models", "attacks", "share", "n")]
    fr = df[(df.stage == stage) & (df.metric == "fooling_rate") & (df.subset == "correct") & (df.attack != "none")]
    if fr.empty:
        return dict.fromkeys(keys, NOT_IN_BUILD)
    n_models = _models(fr)
    parts, cells = [], []
    for a, g in fr.groupby("attack", sort=False):
        if _models(g) < n_models:  # "on every model" only for an attack run on every model
            continue
        eps = sorted(g.eps.unique())
        full = [e for e in eps if (g[np.isclose(g.eps, e)].ci_high >= level).all()
                and (g[np.isclose(g.eps, e)].value >= level - 0.05).all()]
        if not full or not all(e in full for e in eps if e >= full[0]):
            continue
        sp = spec(a.split("@")[0])
        free = sp.eps_free or not sp.eps_bounded  # ε is no budget (C&W: unused; DeepFool: an overshoot)
        if free and len(full) < len(eps):
            continue
        parts.append(f"{name(a)} (unbounded)" if free else name(a) if len(eps) == 1
                     else f"{name(a)} from ε = {full[0]:g}")
        cells.append(g[g.eps >= full[0] - 1e-12])
    if not parts:
        return dict(zip(keys, [_models_phrase(n_models), "no attack", "—", "—"], strict=True))
    cell = pd.concat(cells)
    share = ("every correctly classified image" if (cell.value >= 1).all() else
             f"at least {cell.value.min():.0%} of the correctly classified images")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    n = f"{int(cell.n.min())}" if cell.n.min() == cell.n.max() else f"{int(cell.n.min())}–{int(cell.n.max())}"
    return dict(zip(keys, [_models_phrase(n_models), listed, share, n], strict=True))


def weakening(df: pd.DataFrame, stage: str = "attack", prefix: str = "ga") -> dict[str, str]:
    """Attacks whose fooling rate at the largest ε is *below* their best on a model, intervals apart (a one-step
    attack overshooting): per attack, on how many models, with one example (``-weak``)."""
    fr = df[(df.stage == stage) & (df.metric == "fooling_rate") & (df.subset == "correct") & (df.attack != "none")]
    if fr.empty:
        return {f"{prefix}-weak": NOT_IN_BUILD}
    found, example, total = [], None, 0
    for a, g in fr.groupby("attack", sort=False):
        hits, total = 0, 0
        for _, gm in g.groupby(["dataset", "model"]):
            gm = gm.sort_values("eps")
            if len(gm) < 2 or not gm.apply(has_ci, axis=1).all():
                continue
            total += 1
            best, last = gm.loc[gm.value.idxmax()], gm.iloc[-1]
            if last.ci_high < best.ci_low:
                hits += 1
                example = example or (a, best, last)
        if hits:
            found.append(f"{name(a)} on {count_of(hits, total)} models")
    if not found:
        n = _models(fr)
        return {f"{prefix}-weak": "no attack, on the one model" if n == 1 else f"no attack, on any of the {n} models"}
    a, b, last = example
    return {f"{prefix}-weak": ", ".join(found) + f"; e.g. {name(a)} on {b.dataset} · {b.model}: {b.value:.2f} "
            f"[{b.ci_low:.2f}, {b.ci_high:.2f}] at ε = {b.eps:g}, {last.value:.2f} [{last.ci_low:.2f}, "
            f"{last.ci_high:.2f}] at ε = {last.eps:g}"}


def split(df: pd.DataFrame, stage: str, metric: str, higher_moves: bool, prefix: str) -> dict[str, str]:
    """Explanation change on fooled vs not-fooled images, over every (model, explainer, attack, ε) cell with both
    sides' intervals (target ``predicted``): how many cells (``-split-n``), in how many the fooled maps moved
    more, intervals apart (``-split-more``), less (``-split-less``), the intervals overlap (``-split-overlap``),
    and how many rest on fewer than :data:`SPLIT_MIN` images on a side (``-split-thin``, ``-split-min``)."""
    keys = [f"{prefix}-split-{k}" for k in ("n", "more", "less", "overlap", "thin")]
    s = df[(df.stage == stage) & (df.metric == metric) & (df.target == "predicted") & (df.attack != "none")]
    idx = ["dataset", "model", "explainer", "attack", "eps"]
    f = s[s.subset == "fooled"].set_index(idx)
    nf = s[s.subset == "not_fooled"].set_index(idx)
    both = f.merge(nf, left_index=True, right_index=True, suffixes=("_f", "_n"), how="inner")
    both = both[np.isfinite(both.ci_low_f) & np.isfinite(both.ci_low_n)]
    if both.empty:  # the sentence says "not run" once
        return {**dict.fromkeys(keys, "—"), **dict.fromkeys(keys[:2], NOT_IN_BUILD),
                f"{prefix}-split-min": str(SPLIT_MIN)}
    thin = int((np.minimum(both.n_f, both.n_n) < SPLIT_MIN).sum())
    more = int(((both.ci_low_f > both.ci_high_n) if higher_moves else (both.ci_high_f < both.ci_low_n)).sum())
    less = int(((both.ci_high_f < both.ci_low_n) if higher_moves else (both.ci_low_f > both.ci_high_n)).sum())
    n = len(both)
    return {**dict(zip(keys, [str(n), count_of(more, n), _count(less), _count(n - more - less), _count(thin)],
                       strict=True)), f"{prefix}-split-min": str(SPLIT_MIN)}


def chapters(df: pd.DataFrame) -> dict[str, str]:
    """Both chapters' findings facts by glue name (Grad-Attacks: ``ga-*``; RADAR-MIX: ``rm-*``)."""
    return {**saturation(df), **weakening(df), **split(df, "strength", "mod", True, "ga"),
            **saturation(df, "radarmix", "rm"), **split(df, "radarmix", "iou", False, "rm")}
