"""Figures a stage's notebook draws from its own arrays, for its run page: training curves and examples, the
RADAR-MIX maps, shift heatmaps, localisation and feature manifolds. Apart from :mod:`advxai.book.figures` (the
chapters' figures, drawn from the result table with the narrative's rules) so that a notebook that draws only its
own run does not depend on the detection or narrative code: its cache key hashes what it imports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grammar import CHANCE_STYLE, CLEAN_COLOUR, MAP_CMAP, MINIMAL, attack_colours, attack_name, per_255


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
            ax.imshow(mp, cmap=MAP_CMAP, alpha=0.55, vmin=0, vmax=1)
            if masks is not None:
                ax.contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{a}\n→ {pred}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(f"true class {labels[y[i]]}; ε = {per_255(eps)}; target {target}"
                 + ("; cyan: lesion mask" if masks is not None else ""), y=1.0)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), cax=fig.add_axes((0.93, 0.3, 0.015, 0.4)),
                 label="map value (0–1 per map)")
    return fig


def map_grid(x, maps: dict, x_advs: dict, eps: list, pick: list[int], title: str):
    """Grad-CAM (or another explainer's) maps over the image: per attack and picked image a row — the image, its
    clean map, then its map on the adversarial image at each ε. Maps in the book's perceptual colour map with one
    colour bar; ε as a fraction of 255; a minimal-perturbation attack (DeepFool, C&W: no ε budget) labelled with
    the L∞ norm it reached on that image instead. ``maps``: ``clean`` -> [n, h, w], attack -> [n_eps, n, h, w];
    ``x_advs``: attack -> [n_eps, n, ...]."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    nrow, ncol = len(pick) * len(x_advs), len(eps) + 2
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.7 * ncol + 0.8, 1.8 * nrow), squeeze=False)
    for a_i, (a, xa) in enumerate(x_advs.items()):
        for p_i, i in enumerate(pick):
            row = axes[a_i * len(pick) + p_i]
            row[0].imshow(x[i].squeeze(), cmap="gray", vmin=0, vmax=1)
            row[0].set_title("image", fontsize=7)
            row[1].imshow(x[i].squeeze(), cmap="gray", vmin=0, vmax=1)
            row[1].imshow(maps["clean"][i], cmap=MAP_CMAP, alpha=0.55, vmin=0, vmax=1)
            row[1].set_title("clean map", fontsize=7)
            for k, e in enumerate(eps):
                reached = float(np.abs(xa[k, i] - x[i]).max())
                row[k + 2].imshow(xa[k, i].squeeze(), cmap="gray", vmin=0, vmax=1)
                row[k + 2].imshow(maps[a][k, i], cmap=MAP_CMAP, alpha=0.55, vmin=0, vmax=1)
                row[k + 2].set_title(f"{a} L∞ {reached * 255:.1f}/255" if attack_name(a) in MINIMAL
                                     else f"{a} ε = {per_255(e)}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, y=1.0)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    cax = fig.add_axes((0.94, 0.3, 0.015, 0.4))
    fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), cax=cax, label="map value (0–1 per map)")
    return fig


def version_colours(attacks) -> dict:
    """Clean images in the grammar's clean grey, each attack in its colour (:mod:`advxai.book.grammar`)."""
    return {"clean": CLEAN_COLOUR, **attack_colours(attacks)}


def localisation(df: pd.DataFrame, attacks: list[str], target: str, eps: float):
    """Mask energy (share of saliency inside the lesion) per explainer, clean vs each attack at ``eps``, beside the
    mean mask area (what a uniform map would score)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    loc = df[(df.metric == "mask_energy") & (df.target == target)
             & ((df.attack == "none") | np.isclose(df.eps, eps))].copy()
    loc["version"] = loc.attack.where(loc.attack != "none", "clean")
    fig, ax = plt.subplots(figsize=(8, 3.4))
    sns.barplot(data=loc, x="explainer", y="value", hue="version", hue_order=["clean"] + attacks, ax=ax,
                palette=version_colours(attacks))
    area = df[(df.metric == "mask_area") & (df.attack == "none")].value.mean()
    ax.axhline(area, **CHANCE_STYLE, label="mask area (chance)")
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
                        legend=r == 0, palette=version_colours(sorted(set(version) - {"clean"})))
        # classes in a sequential palette: no attack's colour means a class
        sns.scatterplot(x=emb[:, 0], y=emb[:, 1], hue=cls, s=14, ax=axes[r, 1], legend=r == 0, palette="viridis")
        axes[r, 0].set_title(f"{method.upper()}: clean vs attack (ε = {eps:g})")
        axes[r, 1].set_title(f"{method.upper()}: true class")
        for ax in axes[r]:
            ax.set_xlabel(f"{method} 1")
            ax.set_ylabel(f"{method} 2")
    for ax in axes[0]:
        ax.legend(fontsize=7, markerscale=0.8, loc="best")
    fig.tight_layout()
    return fig
