"""Figures of the Results page that chapters paste (``glue``): drawn from the result table alone, so a chapter
shows whatever grid was run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .narrative import GOAL, _worst_held_out, explanation_based


def detection(df: pd.DataFrame):
    """Per (dataset, model) of the detection stage, four panels: (a) each detector's worst held-out
    AUROC with its pair-bootstrap interval, explanation-based detectors apart from the baselines, beside the goal
    and chance; (b) the transfer matrix (fitted on one attack and ε, tested on each) of the best explanation-based
    detector; (c) that detector under the plain and the adaptive attack: AUROC and the share of correctly
    classified images that end fooled *and* undetected at 5 % FPR (evasion); (d) AUROC against ε (seen setting)
    of the best explanation-based detector and the best baseline, for attacks run at several ε. ``None`` without
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
        family = worst.explainer.map(lambda n: "explanation-based" if explanation_based(n) else "baseline")
        colours = family.map({"explanation-based": "tab:orange", "baseline": "tab:blue"})
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
        row[0].legend(loc="lower right", fontsize=8, title="orange: explanation-based", title_fontsize=8)
        expl = worst[family == "explanation-based"]
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


# --- the RADAR-MIX run's figures (notebooks/06_radarmix.ipynb) -------------------------------------------------


def shift_heatmaps(df: pd.DataFrame, explainers: list[str], attacks: list[str], eps: list[float],
                   targets: list[str], title: str):
    """Top-k IoU of clean vs attacked maps: one heatmap (explainer × attack) per ε (rows) and per target × fooled /
    not fooled (columns); blank cells have no such images."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    shift = df[(df.metric == "iou") & (df.explainer != "none")]
    panels = [(t, s_) for t in targets for s_ in ("fooled", "not_fooled")]
    fig, axes = plt.subplots(len(eps), len(panels), figsize=(4.0 * len(panels), 3.2 * len(eps)), squeeze=False)
    for i, e in enumerate(eps):
        for j, (t, s_) in enumerate(panels):
            grid = shift[np.isclose(shift.eps, e) & (shift.target == t) & (shift.subset == s_)]
            grid = grid.pivot_table(index="explainer", columns="attack", values="value").reindex(
                index=explainers, columns=attacks)
            sns.heatmap(grid, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", cbar=j == len(panels) - 1,
                        ax=axes[i, j], cbar_kws={"label": "IoU (top-k)"})
            axes[i, j].set_title(f"target {t}, {s_.replace('_', ' ')}, ε = {e:g}", fontsize=9)
            axes[i, j].set_xlabel("attack")
            axes[i, j].set_ylabel("explainer")
    fig.suptitle(f"{title}: top-k IoU of clean vs attacked maps (blank cells: no such images)", y=1.01)
    fig.tight_layout()
    return fig


def explanation_examples(i: int, x, y, advs: dict, logits: dict, maps: dict, subs: dict, labels: list[str],
                         target: str, eps: float, masks=None):
    """One image (index ``i``), every explainer (rows), clean and each attack at the largest ε (columns): the map
    over the image, the predicted class above, the lesion mask's outline where there is one."""
    import matplotlib.pyplot as plt

    cols = ["clean"] + list(advs)
    fig, axes = plt.subplots(len(maps), len(cols), figsize=(1.9 * len(cols), 2.0 * len(maps)), squeeze=False)
    for r, name in enumerate(maps):
        j = int(np.flatnonzero(subs[name] == i)[0])
        for c, a in enumerate(cols):
            img = x[i] if a == "clean" else advs[a][-1, i]
            mp = maps[name][target]["clean"][j] if a == "clean" else maps[name][target][a][-1, j]
            pred = labels[int((logits["clean"][i] if a == "clean" else logits[a][-1, i]).argmax())]
            ax = axes[r, c]
            ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.imshow(mp, cmap="magma", alpha=0.55, vmin=0, vmax=1)
            if masks is not None:
                ax.contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{a}\n→ {pred}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(f"true class {labels[y[i]]}; ε = {eps:g}; target {target}"
                 + ("; cyan: lesion mask" if masks is not None else ""), y=1.0)
    fig.tight_layout()
    return fig


def localisation(df: pd.DataFrame, attacks: list[str], target: str, eps: float):
    """Mask energy (share of saliency inside the lesion) per explainer, clean vs each attack at ``eps``, beside the
    mean mask area (what a uniform map would score)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    loc = df[(df.metric == "mask_energy") & (df.target == target)
             & ((df.attack == "none") | np.isclose(df.eps, eps))].copy()
    loc["version"] = loc.attack.where(loc.attack != "none", "clean")
    fig, ax = plt.subplots(figsize=(8, 3.4))
    sns.barplot(data=loc, x="explainer", y="value", hue="version", hue_order=["clean"] + attacks, ax=ax)
    area = df[(df.metric == "mask_area") & (df.attack == "none")].value.mean()
    ax.axhline(area, ls="--", color="k", lw=1, label="mask area (chance)")
    ax.set_ylabel("share of saliency inside the lesion")
    ax.set_ylim(0, 1)
    ax.set_title(f"Localisation, clean vs attacked (ε = {eps:g})")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def manifolds(feats: np.ndarray, version: np.ndarray, cls: np.ndarray, eps: float, seed: int = 0):
    """Penultimate features embedded by t-SNE and UMAP (rows), coloured by version (clean / attack) and by true
    class (columns)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..measure import manifold

    fig, axes = plt.subplots(2, 2, figsize=(10, 8.5))
    for r, method in enumerate(["tsne", "umap"]):
        emb = manifold.embed(feats, method, seed=seed)
        sns.scatterplot(x=emb[:, 0], y=emb[:, 1], hue=version, style=version == "clean", s=14, ax=axes[r, 0],
                        legend=r == 0)
        sns.scatterplot(x=emb[:, 0], y=emb[:, 1], hue=cls, s=14, ax=axes[r, 1], legend=r == 0)
        axes[r, 0].set_title(f"{method.upper()}: clean vs attack (ε = {eps:g})")
        axes[r, 1].set_title(f"{method.upper()}: true class")
        for ax in axes[r]:
            ax.set_xlabel(f"{method} 1")
            ax.set_ylabel(f"{method} 2")
    for ax in axes[0]:
        ax.legend(fontsize=7, markerscale=0.8, loc="best")
    fig.tight_layout()
    return fig


# --- the training run's figures (notebooks/01_train.ipynb) ------------------------------------------------------


def class_examples(ds, seed: int = 0, per_class: int = 6):
    """``per_class`` random training images of each class (a row per class), seeded."""
    import matplotlib.pyplot as plt

    x_tr, y_tr = ds.split("train")
    fig, axes = plt.subplots(ds.n_classes, per_class, figsize=(9, 1.6 * ds.n_classes), squeeze=False)
    rng = np.random.default_rng(seed)
    for k, row in enumerate(axes):
        for ax, i in zip(row, rng.choice(np.flatnonzero(y_tr == k), len(row), replace=False), strict=False):
            ax.imshow(x_tr[i].squeeze(), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
        row[0].set_title(ds.labels[k], loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def training_curves(hist: dict):
    """Loss and accuracy per epoch, training and validation."""
    import matplotlib.pyplot as plt

    h = pd.DataFrame({k: v for k, v in hist.items() if isinstance(v, list) and k != "learning_rate"})
    h["epoch"] = np.arange(1, len(h) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    h.plot(x="epoch", y=["loss", "val_loss"], ax=axes[0], title="cross-entropy loss")
    axes[0].set_ylabel("loss")
    h.plot(x="epoch", y=["accuracy", "val_accuracy"], ax=axes[1], title="accuracy")
    axes[1].set_ylabel("accuracy")
    fig.tight_layout()
    return fig


def confusion(cm: np.ndarray, labels: list[str], title: str):
    """A confusion matrix coloured by the share of each true class, annotated with counts."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2, 0.9 * n + 1.5))
    sns.heatmap(cm / np.maximum(cm.sum(1, keepdims=True), 1), annot=cm, fmt="d", cmap="Blues", vmin=0, vmax=1,
                xticklabels=labels, yticklabels=labels, ax=ax, cbar_kws={"label": "share of the true class"})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
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
