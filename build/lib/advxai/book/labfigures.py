"""The lab's figures (``book/course``): what an attack does to an image and its map, the detector's ROC curve, the
adaptive attack's evasion against plain PGD's, and the randomisation cascade. Each is drawn by the check that
computed its numbers (:mod:`advxai.book.course`), in the book's figure grammar (:mod:`advxai.book.grammar`)."""

from __future__ import annotations

import numpy as np

from .grammar import ADVERSARIAL_COLOUR, CHANCE_STYLE, CLEAN_COLOUR, MAP_CMAP, rate_axis


def _show(fig):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    plt.show()


def attack_and_maps(model, x: np.ndarray, x_adv: np.ndarray, n: int = 3):
    """``n`` images in rows: the clean image, the attacked one, and the Grad-CAM of each for its own prediction
    (one colour scale, with its bar); the titles give each prediction."""
    import matplotlib.pyplot as plt

    from .. import explain
    from ..models.train import predict_logits

    x, x_adv = x[:n], x_adv[:n]
    pred = [predict_logits(model, v).argmax(1) for v in (x, x_adv)]
    maps = [explain.explain("gradcam", model, v, p, progress=False) for v, p in zip((x, x_adv), pred, strict=True)]
    fig, axes = plt.subplots(len(x), 4, figsize=(9, 2.4 * len(x)), squeeze=False)
    for i, row in enumerate(axes):
        for j, (img, title) in enumerate([(x[i], "clean"), (x_adv[i], "attacked"), (maps[0][i], "map, clean"),
                                          (maps[1][i], "map, attacked")]):
            shown = row[j].imshow(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img,
                                  cmap="gray" if j < 2 else MAP_CMAP, vmin=0, vmax=1)
            row[j].set_title(f"{title}: class {pred[j % 2][i]}", fontsize=8)
            row[j].axis("off")
    fig.colorbar(shown, ax=axes[:, 2:].ravel().tolist(), shrink=0.6, label="Grad-CAM (min–max normalised)")
    plt.show()


def roc(neg: np.ndarray, pos: np.ndarray, auroc: float):
    """The ROC curve of a score (higher = more suspicious) on clean (``neg``) and attacked (``pos``) images."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos])
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(fpr, tpr, color=ADVERSARIAL_COLOUR, label=f"your score, AUROC {auroc:.2f}")
    ax.plot([0, 1], [0, 1], **CHANCE_STYLE, label="chance")
    ax.set(xlabel="false-positive rate (clean images flagged)", xlim=(0, 1))
    rate_axis(ax, "true-positive rate (attacked images flagged)")
    ax.legend(fontsize=8, loc="lower right")
    _show(fig)


def evasion(shares: dict[str, tuple[float, float, float]], n: int):
    """Fooled *and* unflagged, per attack: {name: (share, low, high)} with Wilson intervals, over ``n`` images."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    names = list(shares)
    v = np.array([shares[k] for k in names])
    ax.bar(names, v[:, 0], 0.6, color=[CLEAN_COLOUR, ADVERSARIAL_COLOUR][:len(names)])
    ax.errorbar(names, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="none", ecolor="black", capsize=3)
    rate_axis(ax, f"fooled and unflagged (95 % Wilson, n = {n})")
    _show(fig)


def cascade(layers: list[str], rho: dict[str, list[tuple[float, float, float]]]):
    """Spearman correlation of each map with the trained model's, after randomising down to each layer (top
    first): {map: [(mean, low, high) per layer]}; 1: the map did not change, 0: unrelated."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    low = min(lo for vals in rho.values() for _, lo, _ in vals)
    for (name, vals), style in zip(rho.items(), ("-", "--"), strict=False):
        v = np.array(vals)
        ax.plot(layers, v[:, 0], ls=style, marker="o", color="black", label=name)
        ax.fill_between(layers, v[:, 1], v[:, 2], color="grey", alpha=0.2, lw=0)
    ax.axhline(0, **CHANCE_STYLE, label="unrelated maps")
    ax.set(ylim=(min(-0.2, low - 0.05), 1.02), ylabel="Spearman with the trained model's map",
           xlabel="randomised down to")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    _show(fig)
