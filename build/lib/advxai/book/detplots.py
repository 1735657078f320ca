"""The detection run page's figures and the quantities they read (notebooks/07_detection.ipynb; the Detection
chapter pastes the same figures from the Results page): each detector's worst held-out AUROC, the transfer
matrix, the adaptive attack and its evasion curves, AUROC against ε, the ROC curves. Kept apart from
:mod:`advxai.book.narrative` and :mod:`advxai.book.figures` so that editing the book's prose or its other
figures does not rerun detection (a run's cache key hashes the modules its notebook imports)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grammar import ADVERSARIAL_COLOUR, CHANCE_STYLE, CLEAN_COLOUR, GOAL_STYLE, GROUP_COLOURS, group_colour, rate_axis

GOAL = {"auroc": 0.98, "tpr_at_5fpr": 0.90}  # issue 12: held-out AUROC and TPR at 5 % FPR of an explanation detector
ANCHORS = {"Ma et al. 2021 (seen attacks, deep features)": ("auroc", 0.98),
           "Watson & Al Moubayed 2020 (SHAP, detection accuracy)": ("accuracy", 0.88)}


def explanation_based(name: str) -> bool:
    """Whether a result row's detector name is a registered explanation-map detector."""
    from ..detect.detectors import DETECTORS

    return name in DETECTORS and DETECTORS[name].explanation


def group_of(detector: str) -> str:
    """The detector's group (what it reads); ``other`` for a name outside the registry."""
    from ..detect.detectors import DETECTORS

    return DETECTORS[detector].family if detector in DETECTORS else "other"


def worst_held_out(g: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per detector, its held-out cell with the lowest ``metric``: the attack it is worst at, never saw."""
    h = g[(g.target == "held_out") & (g.metric == metric)]
    return h.loc[h.groupby("explainer").value.idxmin()] if len(h) else h


def detection(df: pd.DataFrame):
    """Per (dataset, model) of the detection stage, four panels: (a) each detector's worst held-out
    AUROC with its pair-bootstrap interval, explanation-map detectors apart from the baselines, beside the goal
    and chance; (b) the transfer matrix (fitted on one attack and ε, tested on each) of the best explanation-map
    detector; (c) that detector under the plain and the adaptive attack: the share of correctly classified images
    that end fooled *and* undetected at 5 % FPR (evasion); (d) AUROC against ε (seen setting)
    of the best explanation-map detector and the best baseline, for attacks run at several ε. ``None`` without
    detection rows."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    det = df[df.stage == "detection"]
    groups = [(k, g) for k, g in det.groupby(["dataset", "model"]) if (g.target == "held_out").any()]
    if not groups:
        return None
    # two rows of two panels per (dataset, model): legible at the width of a book page
    fig, grid = plt.subplots(2 * len(groups), 2, figsize=(12, 9 * len(groups)), squeeze=False)
    for row, ((dataset, model), g) in zip(grid.reshape(len(groups), 4), groups, strict=True):
        worst = worst_held_out(g, "auroc").sort_values("value")
        family = worst.explainer.map(lambda n: "explanation-map" if explanation_based(n) else "baseline")
        colours = worst.explainer.map(lambda n: group_colour(group_of(n)))
        y = np.arange(len(worst))
        row[0].errorbar(worst.value, y, xerr=[worst.value - worst.ci_low, worst.ci_high - worst.value], fmt="none",
                        ecolor="grey", lw=1)
        row[0].scatter(worst.value, y, c=list(colours), zorder=3)
        row[0].set_yticks(y, [f"{e} ({a})" for e, a in zip(worst.explainer, worst.attack, strict=True)])
        row[0].axvline(GOAL["auroc"], **GOAL_STYLE,
                       label=f"goal {GOAL['auroc']:.2f}; Ma et al. 2021: > 0.98 on seen attacks")
        rate_axis(row[0], "worst held-out AUROC (95 % pair bootstrap)", 0.5, axis="x")
        row[0].set_title(f"(a) {dataset} · {model}: attacks never seen")
        from matplotlib.lines import Line2D

        groups = [Line2D([], [], ls="", marker="o", color=group_colour(g), label=g)
                  for g in dict.fromkeys(worst.explainer.map(group_of))]
        handles, _ = row[0].get_legend_handles_labels()
        row[0].legend(handles=handles + groups, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8,
                      frameon=False, title="what the detector reads", title_fontsize=8)  # below the axes
        expl = worst[family == "explanation-map"]
        best = expl.iloc[-1].explainer if len(expl) else worst.iloc[-1].explainer
        tr = g[g.target.str.startswith("from ") & (g.metric == "auroc") & (g.explainer == best)].copy()
        if len(tr):
            tr["tested on"] = tr.attack + "@" + tr.eps.map("{:g}".format)
            tr["fitted on"] = tr.target.str.removeprefix("from ")
            sns.heatmap(tr.pivot_table(index="fitted on", columns="tested on", values="value"), ax=row[1],
                        vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", cbar_kws={"label": "AUROC"})
        row[1].set_title(f"(b) transfer: {best}")
        # evasion only: a rate of images, never on one axis with an AUROC (the AUROCs are in the tables)
        ad = g[g.target.isin(["plain", "adaptive"]) & (g.metric == "evasion_rate")]
        if len(ad):  # the detector of panel (b), attacked like every explanation-map detector
            ad = ad[ad.explainer == (best if (ad.explainer == best).any() else ad.explainer.iloc[0])]
            a = ad.set_index("target").reindex(["plain", "adaptive"])
            row[2].bar([0, 1], a.value, 0.6, color=[CLEAN_COLOUR, ADVERSARIAL_COLOUR])
            row[2].errorbar([0, 1], a.value, yerr=[a.value - a.ci_low, a.ci_high - a.value], fmt="none", ecolor="k")
            row[2].set_xticks([0, 1], [f"plain {ad.attack.iloc[0]} (λ = 0)\nε = {ad.eps.iloc[0]:g}",
                                       "adaptive\n(best λ)"])
            rate_axis(row[2], "evaded: fooled and undetected (95 % Wilson)")
            row[2].set_title(f"(c) adaptive attack on {ad.explainer.iloc[0]}")
        else:
            row[2].set_axis_off()
            row[2].text(0.5, 0.5, "no adaptive attack in this grid", ha="center")
        base = worst[family == "baseline"]
        shown = [best] + ([base.iloc[-1].explainer] if len(base) else [])
        seen = g[(g.target == "seen") & (g.metric == "auroc") & g.explainer.isin(shown)]
        multi = [a for a, s in seen.groupby("attack") if s.eps.nunique() > 1]
        markers = dict(zip(multi, "osD^v<>", strict=False))  # one marker per attack, colour per group
        for (det, attack), s in seen[seen.attack.isin(multi)].groupby(["explainer", "attack"]):
            s = s.sort_values("eps")
            row[3].errorbar(s.eps, s.value, yerr=np.clip([s.value - s.ci_low, s.ci_high - s.value], 0, None),
                            marker=markers[attack], capsize=2,
                            ls="-" if explanation_based(det) else ":", color=group_colour(group_of(det)),
                            label=f"{det} ({group_of(det)}) · {attack}")
        if multi:
            row[3].axhline(GOAL["auroc"], **GOAL_STYLE)
            rate_axis(row[3], "seen AUROC", 0.5)
            row[3].set(xlabel="ε", title="(d) AUROC against ε")
            row[3].legend(fontsize=7)
        else:
            row[3].set_axis_off()
            row[3].text(0.5, 0.5, "one ε per attack in this grid", ha="center")
    fig.tight_layout()
    return fig


def _panel_grid(n: int, height: float, ylabel: str, **kw):
    """``n`` panels in two columns (legible at the width of a book page), ``ylabel`` on the first column, the
    axes past ``n`` blank: (figure, the ``n`` axes in order)."""
    import matplotlib.pyplot as plt

    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, height * rows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    return fig, axes.flat[:n]


def detection_roc(rocs: dict[str, pd.DataFrame]):
    """ROC curves (log false-positive rate) of the best detectors per held-out attack, one panel per (detection
    run, held-out attack); ``rocs``: run label -> its ``roc.csv`` (columns held_out, detector, auroc, fpr, tpr).
    ``None`` when no run saved curves."""
    panels = [(label, cell, g) for label, df in rocs.items() for cell, g in df.groupby("held_out", sort=False)]
    if not panels:
        return None
    fig, axes = _panel_grid(len(panels), 4.2, "true-positive rate", sharey=True)
    for ax, (label, cell, g) in zip(axes, panels, strict=True):
        for (det, d), ls in zip(g.groupby("detector", sort=False), ["-", "--", "-.", ":"] * 3, strict=False):
            ax.plot(d.fpr.clip(lower=1e-4), d.tpr, ls=ls, color=group_colour(group_of(det)),
                    label=f"{det} ({group_of(det)}) {d.auroc.iloc[0]:.3f}")
        ax.plot([1e-4, 1], [1e-4, 1], **CHANCE_STYLE)
        ax.set_ylim(0, 1.02)
        ax.axvline(0.05, ls="--", color="grey", lw=0.8)
        ax.set(xscale="log", xlim=(1e-3, 1), xlabel="false-positive rate", title=f"{label}: held out {cell}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="lower right", title="AUROC", title_fontsize=7)
    fig.tight_layout()
    return fig


def score_histograms(scores: dict[str, pd.DataFrame]):
    """Per detection run, one panel per detector group: the out-of-fold scores of the group's best detector on
    clean images and on the successful adversarials of its worst held-out attack (``scores.csv``), as densities on
    shared bins between the pooled 1st and 99th percentiles (tails clipped into the end bins). ``None`` when no
    run saved scores."""
    order = list(GROUP_COLOURS)
    panels = [(label, grp, g) for label, df in scores.items()
              for grp, g in sorted(df.groupby("group"), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9)]
    if not panels:
        return None
    fig, axes = _panel_grid(len(panels), 3.2, "density")
    for ax, (label, grp, g) in zip(axes, panels, strict=True):
        lo, hi = np.nanpercentile(g.score, [1, 99])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
        for kind, colour in (("clean", CLEAN_COLOUR), ("adversarial", ADVERSARIAL_COLOUR)):
            v = g[g.label == kind].score.clip(bins[0], bins[-1])
            ax.hist(v, bins=bins, density=True, alpha=0.55, color=colour, label=f"{kind} (n = {len(v)})")
        r = g.iloc[0]
        ax.set(xlabel=f"{r.detector} score", title=f"{label} · {grp}: held out {r.held_out}, AUROC {r.auroc:.2f}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


WEAK_AT_LARGEST = 0.95  # the evasion the attack must reach at its largest ε before a "not evaded" can be read


def adaptive_curves(df: pd.DataFrame):
    """Per (dataset, model), one panel per attacked detector (at most four per row): the adaptive attack's evasion
    rate against ε (fooled *and* under the detector's 5 %-FPR threshold, over the correctly classified images
    attacked; Wilson bands), ε-nested and with what the checks found (solid, the group's colour), plain PGD (λ = 0,
    dotted); at the cell's ε the two checks — twice the steps from a random start (×) and Square, black box (▲) —
    and, where a check raised the number, the attack's own before it (○). A title says when a check raised it or
    when the attack stays below :data:`WEAK_AT_LARGEST` at its largest ε. ``None`` without such rows."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from .grammar import eps_ticks, shape

    ad = df[(df.stage == "detection") & (df.attack == "adaptive")]
    ev = ad[ad.metric == "evasion_rate"]
    settings = list(ev.groupby(["dataset", "model"]))
    if not settings:
        return None
    layout = [shape(g.explainer.nunique()) for _, g in settings]
    cols = max(c for _, c in layout)
    fig, axes = plt.subplots(sum(r for r, _ in layout), cols, figsize=(3.6 * cols, 3.6 * sum(r for r, _ in layout)),
                             squeeze=False, sharey=True)
    flat, at = axes.reshape(-1, cols), 0
    for ((dataset, model), g), (rows, _) in zip(settings, layout, strict=True):
        panels = list(flat[at:at + rows].flat)
        at += rows
        dets = list(dict.fromkeys(g.explainer))  # the study's order: every map detector, then the other groups'
        for ax, det in zip(panels, dets, strict=False):
            d, colour = g[g.explainer == det], group_colour(group_of(det))
            for target, ls in (("best λ", "-"), ("λ=0", ":")):
                c = d[d.target == target].sort_values("eps")
                ax.plot(c.eps, c.value, ls=ls, marker="o", ms=3, color=colour)
                if target == "best λ":
                    ax.fill_between(c.eps, c.ci_low, c.ci_high, color=colour, alpha=0.15, lw=0)
            for target, marker in (("2× steps + restart", "x"), ("square (black box)", "^")):
                c = d[d.target == target]
                ax.scatter(c.eps, c.value, marker=marker, s=60, color="black", zorder=3)
            added = ad[(ad.explainer == det) & (ad.metric == "evasion_added") & (ad.value > 0)
                       & (ad.dataset == dataset) & (ad.model == model)]
            if len(added):
                before = d[d.target == "best λ, before checks"]
                ax.scatter(before.eps, before.value, marker="o", s=50, facecolors="none", edgecolors=colour,
                           zorder=3)
            top = d[(d.target == "best λ")].sort_values("eps").iloc[-1]
            flags = (["raised by a check"] if len(added) else []) + (
                [f"< {WEAK_AT_LARGEST:g} at largest ε"] if top.value < WEAK_AT_LARGEST else [])
            ax.set(xscale="log", ylim=(0, 1.02), xlabel="ε (L∞, log scale)")
            ax.set_title(f"{det}\n({group_of(det)}; n = {int(d.n.max())})" + ("\n" + ", ".join(flags) if flags
                                                                                else ""), fontsize=9)
            eps_ticks(ax, d.eps)
            ax.minorticks_off()
        for ax in panels[len(dets):]:
            ax.set_axis_off()
        panels[0].set_ylabel(f"{dataset} · {model}\nevaded (fooled, undetected)")
    handles = [Line2D([], [], color="grey", ls="-", label="adaptive, best λ per image, ε-nested (band: 95 % Wilson)"),
               Line2D([], [], color="grey", ls=":", label="plain PGD (λ = 0)"),
               Line2D([], [], color="black", ls="", marker="x", label="check: 2× steps, random start"),
               Line2D([], [], color="black", ls="", marker="^", label="check: Square, black box (classifier only)"),
               Line2D([], [], color="grey", ls="", marker="o", markerfacecolor="none",
                      label="the attack before a check raised it")]
    handles += [Line2D([], [], color=group_colour(gr), lw=3, label=gr)
                for gr in dict.fromkeys(ev.explainer.map(group_of))]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.1 if sum(r for r, _ in layout) < 3 else 0.05, 1, 1))
    return fig
