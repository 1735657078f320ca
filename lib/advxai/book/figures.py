"""Figures of the Results page that chapters paste (``glue``): drawn from the result table alone, so a chapter
shows whatever grid was run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .narrative import GOAL, _worst_held_out, explanation_based


def detection(df: pd.DataFrame):
    """Per (dataset, model) of the detection stage, four panels: (a) each detector's worst held-out
    AUROC with its pair-bootstrap interval, explanation-map detectors apart from the baselines, beside the goal
    and chance; (b) the transfer matrix (fitted on one attack and ε, tested on each) of the best explanation-map
    detector; (c) that detector under the plain and the adaptive attack: AUROC and the share of correctly
    classified images that end fooled *and* undetected at 5 % FPR (evasion); (d) AUROC against ε (seen setting)
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
        worst = _worst_held_out(g, "auroc").sort_values("value")
        family = worst.explainer.map(lambda n: "explanation-map" if explanation_based(n) else "baseline")
        colours = family.map({"explanation-map": "tab:orange", "baseline": "tab:blue"})
        y = np.arange(len(worst))
        row[0].errorbar(worst.value, y, xerr=[worst.value - worst.ci_low, worst.ci_high - worst.value], fmt="none",
                        ecolor="grey", lw=1)
        row[0].scatter(worst.value, y, c=list(colours), zorder=3)
        row[0].set_yticks(y, [f"{e} ({a})" for e, a in zip(worst.explainer, worst.attack, strict=True)])
        row[0].axvline(GOAL["auroc"], color="tab:green", ls="--", lw=1,
                       label=f"goal {GOAL['auroc']:.2f}; Ma et al. 2021: > 0.98 on seen attacks")
        row[0].axvline(0.5, color="black", ls=":", lw=1, label="chance")
        row[0].set(xlim=(0, 1.02), xlabel="worst held-out AUROC (95 % pair bootstrap)",
                   title=f"(a) {dataset} · {model}: attacks never seen")
        row[0].legend(loc="lower right", fontsize=8, title="orange: explanation-map", title_fontsize=8)
        expl = worst[family == "explanation-map"]
        best = expl.iloc[-1].explainer if len(expl) else worst.iloc[-1].explainer
        tr = g[g.target.str.startswith("from ") & (g.metric == "auroc") & (g.explainer == best)].copy()
        if len(tr):
            tr["tested on"] = tr.attack + "@" + tr.eps.map("{:g}".format)
            tr["fitted on"] = tr.target.str.removeprefix("from ")
            sns.heatmap(tr.pivot_table(index="fitted on", columns="tested on", values="value"), ax=row[1],
                        vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", cbar_kws={"label": "AUROC"})
        row[1].set_title(f"(b) transfer: {best}")
        ad = g[g.target.isin(["plain", "adaptive"]) & g.metric.isin(["auroc", "evasion_rate"])]
        if len(ad):
            ad = ad.assign(what=ad.metric.map({"auroc": "AUROC", "evasion_rate": "evasion"}))
            for i, (target, colour) in enumerate([("plain", "tab:blue"), ("adaptive", "tab:red")]):
                a = ad[ad.target == target].set_index("what").reindex(["AUROC", "evasion"])
                x = np.arange(2) + (i - 0.5) * 0.35
                row[2].bar(x, a.value, 0.35, color=colour, label=f"{target} {a.attack.iloc[0]}@{a.eps.iloc[0]:g}")
                row[2].errorbar(x, a.value, yerr=[a.value - a.ci_low, a.ci_high - a.value], fmt="none", ecolor="k")
            row[2].set_xticks([0, 1], ["detection\nAUROC", "evaded\n(fooled, undetected)"])
            row[2].set(ylim=(0, 1.05), title=f"(c) adaptive attack on {ad.explainer.iloc[0]}")
            row[2].legend(fontsize=8)
        else:
            row[2].set_axis_off()
            row[2].text(0.5, 0.5, "no adaptive attack in this grid", ha="center")
        base = worst[family == "baseline"]
        shown = [best] + ([base.iloc[-1].explainer] if len(base) else [])
        seen = g[(g.target == "seen") & (g.metric == "auroc") & g.explainer.isin(shown)]
        multi = [a for a, s in seen.groupby("attack") if s.eps.nunique() > 1]
        for (det, attack), s in seen[seen.attack.isin(multi)].groupby(["explainer", "attack"]):
            s = s.sort_values("eps")
            row[3].errorbar(s.eps, s.value, yerr=[s.value - s.ci_low, s.ci_high - s.value], marker="o", capsize=2,
                            ls="-" if explanation_based(det) else ":", label=f"{det} · {attack}")
        if multi:
            row[3].axhline(GOAL["auroc"], color="tab:green", ls="--", lw=1)
            row[3].set(xlabel="ε", ylabel="seen AUROC", title="(d) AUROC against ε")
            row[3].legend(fontsize=7)
        else:
            row[3].set_axis_off()
            row[3].text(0.5, 0.5, "one ε per attack in this grid", ha="center")
    fig.tight_layout()
    return fig


def detection_roc(rocs: dict[str, pd.DataFrame]):
    """ROC curves (log false-positive rate) of the best detectors per held-out attack, one panel per (detection
    run, held-out attack); ``rocs``: run label -> its ``roc.csv`` (columns held_out, detector, auroc, fpr, tpr).
    ``None`` when no run saved curves."""
    import matplotlib.pyplot as plt

    panels = [(label, cell, g) for label, df in rocs.items() for cell, g in df.groupby("held_out", sort=False)]
    if not panels:
        return None
    cols = min(2, len(panels))  # legible at the width of a book page
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False, sharey=True)
    for ax, (label, cell, g) in zip(axes.flat, panels, strict=False):  # more axes than panels: rest blank
        for det, d in g.groupby("detector", sort=False):
            ax.plot(d.fpr.clip(lower=1e-4), d.tpr, label=f"{det} {d.auroc.iloc[0]:.3f}")
        ax.plot([1e-4, 1], [1e-4, 1], ls=":", color="grey")
        ax.axvline(0.05, ls="--", color="grey", lw=0.8)
        ax.set(xscale="log", xlim=(1e-3, 1), xlabel="false-positive rate", title=f"{label}: held out {cell}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="lower right", title="AUROC", title_fontsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel("true-positive rate")
    fig.tight_layout()
    return fig


# --- the Results page's attack figures (notebooks/00_summary.ipynb) ---------------------------------------------


def accuracy_vs_eps(df: pd.DataFrame):
    """Accuracy on the attacked images against ε, a panel per (dataset, model), a line per attack with its band;
    ``None`` without attack rows."""
    import seaborn as sns

    acc = df[(df.metric == "accuracy") & (df.subset == "attacked") & df.stage.isin(["attack", "radarmix"])].copy()
    base = acc[acc.attack == "none"]
    acc = pd.concat([acc[acc.attack != "none"]] + [base.assign(attack=a) for a in acc.attack.unique() if a != "none"])
    if not len(acc):
        return None
    acc["panel"] = acc.dataset + " · " + acc.model
    g = sns.relplot(data=acc, x="eps", y="value", hue="attack", col="panel", kind="line", marker="o", height=3.2,
                    aspect=1.2, col_wrap=min(3, acc.panel.nunique()))
    for p, ax in g.axes_dict.items():  # bands on the panel they belong to (seaborn orders panels its own way)
        for _, dd in acc[acc.panel == p].groupby("attack"):
            dd = dd.sort_values("eps")
            ax.fill_between(dd.eps, dd.ci_low, dd.ci_high, alpha=0.15)
    g.set_axis_labels("ε (pixel scale; overshoot for DeepFool)", "accuracy under attack")
    return g.figure


def fooling_rates(df: pd.DataFrame):
    """Fooling rate (of the correctly classified images) and flip rate (of all) against ε with Wilson intervals, a
    panel per (dataset, model, metric); ``None`` without attack rows."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fr = df[((df.metric == "fooling_rate") & (df.subset == "correct"))
            | ((df.metric == "flip_rate") & (df.subset == "attacked"))]
    fr = fr[fr.stage.isin(["attack", "radarmix"])].copy()
    if not len(fr):
        return None
    fr["panel"] = fr.dataset + " · " + fr.model + " · " + fr.metric
    g = sns.FacetGrid(fr, col="panel", col_wrap=min(4, fr.panel.nunique()), height=3.0, aspect=1.2, sharex=False)

    def points(data, **kw):
        ax = plt.gca()
        for i, (a, d) in enumerate(data.groupby("attack")):
            d = d.sort_values("eps")
            off = (i - 1) * 0.002
            err = np.clip(np.nan_to_num([d.value - d.ci_low, d.ci_high - d.value]), 0, None)  # no interval: none
            ax.errorbar(d.eps + off, d.value, yerr=err, fmt="o-", ms=3, capsize=2, label=a)

    g.map_dataframe(points)
    g.add_legend()
    g.set_axis_labels("ε", "share (95 % Wilson)")
    return g.figure


def mod_points(df: pd.DataFrame):
    """MOD (mean heatmap NISSIM) per attack, fooled vs not fooled, a panel per (dataset, target); ``None`` without
    strength rows."""
    import seaborn as sns

    m = df[(df.stage == "strength") & (df.metric == "mod") & df.subset.isin(["fooled", "not_fooled"])]
    if not len(m):
        return None
    g = sns.catplot(data=m, x="attack", y="value", hue="subset", col="dataset", row="target", kind="point",
                    dodge=0.3, linestyle="none", height=3.0, aspect=1.2, errorbar=None)
    g.set_axis_labels("attack (every ε)", "MOD (mean heatmap NISSIM)")
    return g.figure
