"""The robust stage's table and figures, for its run page and the Robust models chapter: RobustBench's leaderboard
rows, accuracy under attack against ε, the input-gradient saliency grid. Kept apart from the chapter's prose
(:mod:`advxai.book.robust`), the other chapters' figures and the narrative (it imports only
:mod:`advxai.book.style`) so that editing those does not rerun the robust stage: a run's cache key covers the modules
its notebook imports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grammar import MAP_CMAP
from .style import NOT_RUN, collapsed, fmt, fmt_n, md_table


def k255(eps: float) -> str:
    """ε in pixel units as k/255, RobustBench's notation."""
    return f"{eps * 255:.3g}/255"


def robustbench_md(df: pd.DataFrame) -> str:
    """RobustBench's leaderboard columns, one row per (dataset, model, attack, ε), collapsed under one sentence."""
    rb = df[df.stage == "robust"]
    if rb.empty:
        return NOT_RUN
    clean = {(r.dataset, r.model): fmt_n(r) for r in rb[rb.metric == "clean_accuracy"].itertuples()}
    rows = [{"dataset": r.dataset, "model": r.model, "clean accuracy": clean.get((r.dataset, r.model), "—"),
             "attack": r.attack, "ε": k255(r.eps), "robust accuracy": fmt(r), "threat model": "L∞", "n": int(r.n)}
            for r in rb[rb.metric == "robust_accuracy"].sort_values(["dataset", "model", "attack", "eps"]).itertuples()]
    n = rb.groupby(["dataset", "model"]).ngroups
    return (f"Accuracy under attack of {n} model{'s' * (n > 1)} on a class-balanced sample of each test split, "
            f"in RobustBench's columns:\n\n" + collapsed(f"robust accuracy, {len(rows)} rows", md_table(rows)))


# --- figures -----------------------------

ROBUST_STYLES = {"autoattack-nofab": "-", "pgd": "--"}  # line style per attack; colour per model


def robust_accuracy(df: pd.DataFrame):
    """Accuracy under attack against ε (in k/255), RobustBench's curve: a panel per dataset, a colour per model, a
    line style per attack, each with its 95 % Wilson band; the clean accuracy (the same images) at ε = 0.
    ``None`` without robustness rows."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    rb = df[(df.stage == "robust") & df.metric.isin(["robust_accuracy", "clean_accuracy"])]
    if not len(rb):
        return None
    models = sorted(rb.model.unique())
    colours = dict(zip(models, sns.color_palette("dark", len(models)), strict=True))
    attacks = sorted(rb[rb.metric == "robust_accuracy"].attack.unique())
    styles = {a: ROBUST_STYLES.get(a, ":") for a in attacks}
    groups = list(rb.groupby("dataset"))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)  # a panel per dataset
    for ax, (d, g) in zip(axes.flat, groups, strict=True):
        for m, gm in g.groupby("model"):
            clean = gm[gm.metric == "clean_accuracy"]
            for a, dd in gm[gm.metric == "robust_accuracy"].groupby("attack"):
                dd = pd.concat([clean.assign(eps=0.0), dd]).sort_values("eps")
                ax.plot(dd.eps * 255, dd.value, marker="o", ms=3, ls=styles[a], color=colours[m], label=m)
                ax.fill_between(dd.eps * 255, dd.ci_low, dd.ci_high, color=colours[m], alpha=0.12)
        ax.set(ylim=(-0.02, 1.02), xlabel="ε (× 1/255, L∞)", ylabel="accuracy under attack (95 % Wilson)")
        ax.set_title(str(d), fontsize=9)
    handles = [Line2D([], [], color=c, marker="o", label=m) for m, c in colours.items()]
    handles += [Line2D([], [], color="grey", ls=s, label=a) for a, s in styles.items()]
    fig.legend(handles=handles, title="model · attack", loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False,
               fontsize=9)
    fig.tight_layout()
    return fig


def saliency_grid(samples: dict):
    """The same test images (rows) and, per model (columns after the image), the magnitude of the input gradient
    ∇ₓ z_y summed over channels, each map scaled to its own maximum: robust models' maps are reported to follow
    the image's structure. ``samples``: model -> {x, grads, labels} of one dataset (the same seeded images)."""
    import matplotlib.pyplot as plt

    first = next(iter(samples.values()))
    n, cols = len(first["x"]), 1 + len(samples)
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 1.9 * n), squeeze=False)
    for i in range(n):
        img = first["x"][i]
        axes[i, 0].imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1)
        axes[i, 0].set_title(f"image ({first['labels'][i]})", fontsize=8)
        for j, (m, s) in enumerate(samples.items(), start=1):
            mag = np.abs(s["grads"][i]).sum(-1)
            axes[i, j].imshow(mag / (mag.max() or 1.0), cmap=MAP_CMAP, vmin=0, vmax=1)
            axes[i, j].set_title(f"|∇ₓ z_y| · {m}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), cax=fig.add_axes((0.93, 0.3, 0.015, 0.4)),
                 label="|∇ₓ z_y| (0–1 per map)")
    return fig
