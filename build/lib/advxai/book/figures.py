"""Figures of the Results page that chapters paste (``glue``): drawn from the result table alone, so a chapter
shows whatever grid was run. The detection figures are in :mod:`advxai.book.detplots`, the robust stage's in
:mod:`advxai.book.robustplots`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grammar import ATTACK_ORDER, CHANCE_STYLE, MINIMAL, attack_colours, attack_name, closed, rate_axis  # noqa: F401
from .style import units

TOPK = 0.1  # RADAR-MIX's top-k share (config radarmix.topk): two unrelated maps' expected IoU is k / (2 − k)

# --- the Results page's attack figures (notebooks/00_summary.ipynb) ---------------------------------------------

# One colour per attack in every figure of the book (advxai.book.grammar).


def _legend(fig, colours: dict, extra: list | None = None, title: str = "attack") -> None:
    """One legend for the whole figure, outside the panels: a line per attack in its colour."""
    from matplotlib.lines import Line2D

    named = {attack_name(a): c for a, c in colours.items()}  # pgd and pgd@sigma: one colour, one entry
    handles = [Line2D([], [], color=c, marker="o", label=attack_name(a)) for a, c in named.items()] + (extra or [])
    fig.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize=9)


def _panels(n: int, width: int = 3):
    import matplotlib.pyplot as plt

    cols = min(width, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes.flat


def accuracy_vs_eps(df: pd.DataFrame):
    """Accuracy on the attacked images against ε (ε = 0: clean accuracy on the same images), a panel per
    (dataset, model), a line per attack in its colour with its 95 % Wilson band; ``None`` without attack rows."""
    acc = df[(df.metric == "accuracy") & (df.subset == "attacked") & df.stage.isin(["attack", "radarmix"])]
    if not len(acc):
        return None
    acc = acc.assign(units=acc.attack.map(units))
    groups = [((d, m, u), g) for (d, m), gm in acc.groupby(["dataset", "model"])
              for u, g in gm[gm.attack != "none"].groupby("units")]
    colours = attack_colours([a for a in acc.attack.unique() if a != "none"])
    fig, axes = _panels(len(groups))
    for ax, ((d, m, u), g) in zip(axes, groups, strict=False):
        base = acc[(acc.dataset == d) & (acc.model == m) & (acc.attack == "none")]
        for a, dd in g.groupby("attack"):
            dd = pd.concat([base.assign(attack=a), dd]).drop_duplicates("eps").sort_values("eps")
            ax.plot(dd.eps, dd.value, "o-", ms=3, color=colours[a], label=attack_name(a))
            ax.fill_between(dd.eps, dd.ci_low, dd.ci_high, color=colours[a], alpha=0.15)
        ax.set(ylim=(0, 1.02), ylabel="accuracy under attack",
               xlabel="ε (pixel scale; overshoot for DeepFool)" if u == "pixel" else f"ε ({u} units)")
        ax.set_title(f"{d} · {m}" + ("" if u == "pixel" else f"\nε in {u} units"), fontsize=9)
    _legend(fig, colours)
    fig.tight_layout()
    return fig


def fooling_rates(df: pd.DataFrame):
    """Fooling rate (over the correctly classified images) and flip rate (over all attacked images) against ε
    with 95 % Wilson intervals, a panel per (dataset, model, rate), a line per attack in its colour; ``None``
    without attack rows."""
    fr = df[((df.metric == "fooling_rate") & (df.subset == "correct"))
            | ((df.metric == "flip_rate") & (df.subset == "attacked"))]
    fr = fr[fr.stage.isin(["attack", "radarmix"])]
    if not len(fr):
        return None
    groups = list(fr.assign(units=fr.attack.map(units)).groupby(["dataset", "model", "units", "metric"]))
    colours = attack_colours(fr.attack.unique())
    fig, axes = _panels(len(groups), width=4)
    for ax, ((d, m, u, metric), g) in zip(axes, groups, strict=False):
        for i, (a, dd) in enumerate(g.groupby("attack")):
            dd = dd.sort_values("eps")
            off = (i - 1) * 0.002  # attacks at one ε side by side
            err = np.clip(np.nan_to_num([dd.value - dd.ci_low, dd.ci_high - dd.value]), 0, None)
            ax.errorbar(dd.eps + off, dd.value, yerr=err, fmt="o-", ms=3, capsize=2, color=colours[a],
                        label=attack_name(a))
        what = "fooling rate (correct images)" if metric == "fooling_rate" else "flip rate (all attacked)"
        ax.set(ylim=(-0.02, 1.05), xlabel="ε" if u == "pixel" else f"ε ({u} units)", ylabel="share (95 % Wilson)")
        ax.set_title(f"{d} · {m}\n{what}", fontsize=9)
    _legend(fig, colours)
    fig.tight_layout()
    return fig


def mod_points(df: pd.DataFrame):
    """MOD (mean heatmap NISSIM) against ε, fooled (filled, solid) vs not fooled (open, dotted), a line per attack
    in its colour with its 95 % bootstrap interval, a panel per (dataset, model, explainer, target): ε kept apart,
    never pooled. ``None`` without strength rows."""
    m = df[(df.stage == "strength") & (df.metric == "mod") & df.subset.isin(["fooled", "not_fooled"])]
    return _split_points(m, ["dataset", "model", "explainer", "target"], "MOD (0 = unchanged)",
                         lambda d, mdl, x, t: f"{d} · {mdl}\n{x}, target {t}", 0.5, "unrelated maps (≈ 0.5)")


def chapter_figures(df: pd.DataFrame) -> dict:
    """The figures the chapters paste from the Results page, by glue name (a sentence where a build has none)."""
    from .style import NO_FIGURE, NO_MASKS, html

    shown = {"ga-strength-fig": (mod_points(df), NO_FIGURE), "rm-shift-fig": (shift_split(df), NO_FIGURE),
             "rm-local-fig": (localisation(df), NO_MASKS)}
    return {name: closed(fig) if fig is not None else html(none) for name, (fig, none) in shown.items()}



def shift_split(df: pd.DataFrame, target: str = "predicted"):
    """RADAR-MIX's explanation shift split by outcome: top-k IoU of each image's clean vs attacked map against ε,
    fooled (filled, solid) vs not fooled (open, dotted), a line per attack with its 95 % bootstrap interval, a panel
    per (dataset, model, explainer, ε units); a side resting on fewer than ``SPLIT_MIN`` images is drawn faint.
    ``None`` without RADAR-MIX shift rows."""
    s = df[(df.stage == "radarmix") & (df.metric == "iou") & (df.target == target)
           & df.subset.isin(["fooled", "not_fooled"]) & (df.attack != "none")]
    s = s.assign(units=s.attack.map(units))
    k = float(s.k.dropna().iloc[0]) if "k" in s and s.k.notna().any() else TOPK
    return _split_points(s, ["dataset", "model", "explainer", "units"], "top-k IoU (1 = unchanged)",
                         lambda d, mdl, x, u: f"{d} · {mdl}\n{x}" + ("" if u == "pixel" else f", ε in {u} units"),
                         k / (2 - k), f"unrelated maps (k/(2−k) = {k / (2 - k):.2f})")


def _split_points(m: pd.DataFrame, keys: list[str], ylabel: str, title, reference: float, reference_label: str):
    """Fooled vs not-fooled points against ε (see :func:`mod_points`), one panel per ``keys`` group, on an axis
    from 0 with the value two unrelated maps would score (``reference``). DeepFool and C&W, which have no ε
    budget, are left to the tables."""
    from matplotlib.lines import Line2D

    from .style import SPLIT_MIN

    if not len(m):
        return None
    m = m[~m.attack.map(attack_name).isin(MINIMAL)]  # no ε budget: not drawn on an ε axis (the tables hold them)
    groups = list(m.groupby(keys))
    if not groups:
        return None
    colours = attack_colours(m.attack.unique())
    fig, axes = _panels(len(groups), width=4)
    for ax, (key, g) in zip(axes, groups, strict=False):
        for (a, sub), dd in g.groupby(["attack", "subset"]):
            dd = dd.dropna(subset=["value"]).sort_values("eps")
            if dd.empty:
                continue
            off = 0.001 if sub == "not_fooled" else -0.001
            err = np.clip(np.nan_to_num([dd.value - dd.ci_low, dd.ci_high - dd.value]), 0, None)
            style = dict(ms=4, capsize=2, color=colours[a], mfc=colours[a] if sub == "fooled" else "white")
            ax.errorbar(dd.eps + off, dd.value, yerr=err, fmt="-" if sub == "fooled" else ":", alpha=0.35, **style)
            full = dd.n.to_numpy() >= SPLIT_MIN  # the points resting on enough images, drawn solid over the line
            ax.errorbar(dd.eps[full] + off, dd.value[full], yerr=err[:, full], fmt="o", label=attack_name(a), **style)
            ax.plot(dd.eps[~full] + off, dd.value[~full], "o", alpha=0.35, ms=4, color=colours[a],
                    mfc=style["mfc"])
        u = units(g.attack.iloc[0])
        ax.set(xlabel="ε" if u == "pixel" else f"ε ({u} units)")
        rate_axis(ax, ylabel, reference, reference_label)
        ax.set_title(title(*key), fontsize=9)
    style = [Line2D([], [], color="grey", marker="o", ls="-", label="fooled"),
             Line2D([], [], color="grey", marker="o", mfc="white", ls=":", label="not fooled"),
             Line2D([], [], color="grey", marker="o", ls="", alpha=0.35, label=f"under {SPLIT_MIN} images"),
             Line2D([], [], **CHANCE_STYLE, label=reference_label)]
    _legend(fig, colours, style)
    fig.tight_layout()
    return fig


def localisation(df: pd.DataFrame, target: str = "predicted"):
    """RADAR-MIX localisation on the lesion: the mask energy of each explainer's map (of the ``target`` class) on
    the attacked images against ε, a line per attack with its 95 % bootstrap band, the clean images' value dotted
    and the mask's area share dashed (what a uniform map scores), a panel per (dataset, model, explainer, ε units).
    ``None`` without localisation rows."""
    from matplotlib.lines import Line2D

    loc = df[(df.stage == "radarmix") & (df.target == target) & (df.subset == "attacked")
             & df.metric.isin(["mask_energy", "mask_area"])]
    loc = loc.assign(units=loc.attack.map(units))
    energy, area = loc[loc.metric == "mask_energy"], loc[loc.metric == "mask_area"]
    groups = [((d, m, x, u), g) for (d, m, x), gx in energy.groupby(["dataset", "model", "explainer"])
              for u, g in gx[gx.attack != "none"].groupby("units")]
    if not groups:
        return None
    colours = attack_colours(energy[energy.attack != "none"].attack.unique())
    fig, axes = _panels(len(groups), width=4)
    for ax, ((d, m, x, u), g) in zip(axes, groups, strict=False):
        for a, dd in g.groupby("attack"):
            dd = dd.sort_values("eps")
            ax.plot(dd.eps, dd.value, "o-", ms=3, color=colours[a], label=attack_name(a))
            ax.fill_between(dd.eps, dd.ci_low, dd.ci_high, color=colours[a], alpha=0.15)
        here = g.run.iloc[0]  # the clean maps and the mask area of this panel's run
        clean = energy[(energy.run == here) & (energy.explainer == x) & (energy.attack == "none")]
        share = area[(area.run == here) & (area.explainer == x)]
        for rows, ls in ((clean, ":"), (share, "--")):
            if len(rows):
                ax.axhline(rows.value.iloc[0], color="black" if ls == ":" else "grey", ls=ls, lw=1)
        ax.set(ylim=(0, 1), xlabel="ε" if u == "pixel" else f"ε ({u} units)", ylabel="mask energy")
        ax.set_title(f"{d} · {m}\n{x}" + ("" if u == "pixel" else f", ε in {u} units"), fontsize=9)
    extra = [Line2D([], [], color="black", ls=":", label="clean images"),
             Line2D([], [], color="grey", ls="--", label="mask area (uniform map)")]
    _legend(fig, colours, extra)
    fig.tight_layout()
    return fig
