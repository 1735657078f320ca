"""Each chapter's opening findings: a few sentences a reader can quote, each a claim with its evidence, computed
from the result table over every trained model of the build (architectures and training seeds together) — the
per-model numbers stay in the chapter's collapsed tables.

Wording rules (held by the book's prose test): one claim per sentence, counts instead of lists, an interval or
an ``n`` beside every number, the words *more* / *fewer* only where the intervals do not overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import NOT_RUN, SPLIT_MIN, has_ci


def _models(g: pd.DataFrame) -> int:
    return g.groupby(["dataset", "model"]).ngroups


NAMES = {"fgsm": "FGSM", "bim": "BIM", "pgd": "PGD", "deepfool": "DeepFool", "cw": "C&W-L2", "uap": "UAP",
         "square": "Square"}


def name(attack: str) -> str:
    base, _, units = str(attack).partition("@")
    return NAMES.get(base, base) + (f" (ε in {units} units)" if units else "")


def _on(n: int) -> str:
    return "On the one model" if n == 1 else f"On every one of the {n} models"


def saturation(df: pd.DataFrame, stage: str = "attack", level: float = 0.95) -> list[str]:
    """One sentence: the attacks that fooled (nearly) every correctly classified image on every trained model —
    an ε-bounded attack from the smallest ε of the grid where every model's 95 % interval reaches ``level`` (and
    every larger ε too), an ε-free attack (DeepFool, C&W) at every ε."""
    from ..attacks import spec

    fr = df[(df.stage == stage) & (df.metric == "fooling_rate") & (df.subset == "correct") & (df.attack != "none")]
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
        cell = g[g.eps >= full[0] - 1e-12]
        parts.append(f"{name(a)} (unbounded)" if free else name(a) if len(eps) == 1
                     else f"{name(a)} from ε = {full[0]:g}")
        cells.append(cell)
    if not parts:
        return []
    cell = pd.concat(cells)
    what = ("every correctly classified image" if (cell.value >= 1).all() else
            f"at least {cell.value.min():.0%} of the correctly classified images")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    n = f"{int(cell.n.min())}" if cell.n.min() == cell.n.max() else f"{int(cell.n.min())}–{int(cell.n.max())}"
    return [f"{_on(_models(cell))}, {listed} fooled {what} (n = {n} correctly classified per model)."]


def weakening(df: pd.DataFrame, stage: str = "attack") -> list[str]:
    """Attacks whose fooling rate at the largest ε is *below* their best on a model, intervals apart (a
    one-step attack overshooting): on how many models it happens."""
    fr = df[(df.stage == stage) & (df.metric == "fooling_rate") & (df.subset == "correct") & (df.attack != "none")]
    out = []
    for a, g in fr.groupby("attack", sort=False):
        hits, total, example = 0, 0, None
        for _, gm in g.groupby(["dataset", "model"]):
            gm = gm.sort_values("eps")
            if len(gm) < 2 or not gm.apply(has_ci, axis=1).all():
                continue
            total += 1
            best, last = gm.loc[gm.value.idxmax()], gm.iloc[-1]
            if last.ci_high < best.ci_low:
                hits += 1
                example = example or (best, last)
        if hits:
            b, last = example
            out.append(f"{name(a)} fooled fewer images at its largest ε than at a smaller "
                       f"one on {hits} of {total} models, e.g. {b.dataset} · {b.model}: {b.value:.2f} "
                       f"[{b.ci_low:.2f}, {b.ci_high:.2f}] at ε = {b.eps:g}, {last.value:.2f} "
                       f"[{last.ci_low:.2f}, {last.ci_high:.2f}] at ε = {last.eps:g}.")
    return out


def split(df: pd.DataFrame, stage: str, metric: str, what: str, higher_moves: bool) -> list[str]:
    """Explanation change on fooled vs not-fooled images, over every (model, explainer, attack, ε) cell with
    both sides' intervals (target ``predicted``): in how many cells the fooled maps moved more, intervals apart,
    in how many less, and in how many the intervals overlap."""
    s = df[(df.stage == stage) & (df.metric == metric) & (df.target == "predicted") & (df.attack != "none")]
    keys = ["dataset", "model", "explainer", "attack", "eps"]
    f = s[s.subset == "fooled"].set_index(keys)
    nf = s[s.subset == "not_fooled"].set_index(keys)
    both = f.merge(nf, left_index=True, right_index=True, suffixes=("_f", "_n"), how="inner")
    both = both[np.isfinite(both.ci_low_f) & np.isfinite(both.ci_low_n)]
    if both.empty:
        return []
    few = int((np.minimum(both.n_f, both.n_n) < SPLIT_MIN).sum())
    more = (both.ci_low_f > both.ci_high_n) if higher_moves else (both.ci_high_f < both.ci_low_n)
    less = (both.ci_high_f < both.ci_low_n) if higher_moves else (both.ci_low_f > both.ci_high_n)
    return [f"{what} moved more on the fooled images than on the not-fooled ones in {int(more.sum())} of "
            f"{len(both)} cells where both have an interval, less in {int(less.sum())}, and the intervals "
            f"overlap in {int(len(both) - more.sum() - less.sum())}. "
            + (f"{few} of these cells rest on fewer than {SPLIT_MIN} images on one side." if few else
               f"Each side of every cell rests on at least {SPLIT_MIN} images.")]


def gradattacks(df: pd.DataFrame) -> str:
    """The Grad-Attacks chapter's findings."""
    if (df.stage == "attack").sum() == 0:
        return NOT_RUN
    claims = saturation(df) + weakening(df) + split(df, "strength", "mod", "Grad-CAM (MOD)", higher_moves=True)
    return _bullets(claims)


def radarmix(df: pd.DataFrame) -> str:
    """The RADAR-MIX chapter's findings."""
    if (df.stage == "radarmix").sum() == 0:
        return NOT_RUN
    claims = saturation(df, "radarmix") + split(df, "radarmix", "iou", "The explanation (top-k IoU)",
                                                 higher_moves=False)
    return _bullets(claims)


def _bullets(claims: list[str]) -> str:
    return "\n".join(f"- {c}" for c in claims) if claims else "*No finding is decided by the intervals of this build.*"


def chapters(df: pd.DataFrame) -> dict[str, str]:
    """Each chapter's findings by glue name."""
    return {"ga-findings": gradattacks(df), "rm-findings": radarmix(df)}
