"""Figures of the Results page that chapters paste (``glue``): drawn from the result table alone, so a chapter
shows whatever grid was run. The detection figures are in :mod:`advxai.book.detplots`."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
