"""The picture the study is about, drawn from the runs' saved arrays: a clean image, its adversarial version, the
perturbation (×10), and the explanation of the clean and of the attacked image, side by side — a row per attack
(Grad-Attacks) or per explainer (RADAR-MIX), on one image that every attack fooled. Read from the run folders
(``adv_<attack>.npz`` + ``maps_<explainer>_<target>.npz`` of an attack and a Grad-CAM run; ``adversarial.npz``,
``logits.npz`` and the maps of a RADAR-MIX run); nothing is recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .grammar import MAP_CMAP


def _params(run_dir) -> dict:
    return json.loads((Path(run_dir) / "provenance.json").read_text())["parameters"]


def _pick_run(dirs: list, prefer: tuple[str, ...], stage_filter=lambda p: True) -> Path | None:
    """The first run folder whose dataset is the first of ``prefer`` present (the config seed's model)."""
    from .aggregate import arch_seed

    params = {Path(d): _params(d) for d in dirs if (Path(d) / "provenance.json").exists()}  # each file read once
    runs = {d: p for d, p in params.items() if stage_filter(p) and arch_seed(p.get("model", ""))[0] == p.get("model")}
    for name in prefer:
        for d, p in runs.items():
            if p["dataset"] == name:
                return d
    return next(iter(runs), None)


def _nearest(eps: np.ndarray, target: float) -> int:
    return int(np.argmin(np.abs(np.asarray(eps, float) - target)))


def _show(ax, img, title: str | None = None, cmap=None, vmin=None, vmax=None):
    img = np.asarray(img)
    ax.imshow(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img, cmap=cmap or ("gray" if img.ndim == 2
              or img.shape[-1] == 1 else None), vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _row(axes, x, xa, clean_map, adv_map, label: str, first: bool):
    delta = np.clip(0.5 + 10 * (xa - x), 0, 1)  # the perturbation ×10, grey = unchanged
    cols = [("clean image", x, None), ("adversarial", xa, None), ("perturbation ×10", delta, None),
            ("clean map", clean_map, MAP_CMAP), ("adversarial map", adv_map, MAP_CMAP)]
    for ax, (title, img, cmap) in zip(axes, cols, strict=True):
        if cmap:
            _show(ax, x, title if first else None)
            ax.imshow(img, cmap=cmap, alpha=0.5, vmin=0, vmax=1)
        else:
            _show(ax, img, title if first else None, vmin=0, vmax=1)
    axes[0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")


def gradattacks_grid(attack_dirs: list, gradcam_dirs: list, eps: float = 0.05, explainer: str = "gradcam",
                     target: str = "predicted", prefer: tuple[str, ...] = ("chest_xray", "pneumoniamnist")):
    """A row per attack at the grid's ε nearest ``eps``, on the first image every attack fooled, from the config
    seed's model of the first dataset of ``prefer``; ``None`` without such runs."""
    import matplotlib.pyplot as plt

    att = _pick_run(attack_dirs, prefer)
    if att is None:
        return None
    p = _params(att)
    cam = next((Path(d) for d in gradcam_dirs if (Path(d) / "provenance.json").exists()
                and _params(d)["dataset"] == p["dataset"] and _params(d)["model"] == p["model"]), None)
    if cam is None:
        return None
    advs = {f.stem.removeprefix("adv_"): np.load(f) for f in sorted(att.glob("adv_*.npz"))}
    maps = np.load(cam / f"maps_{explainer.replace('+', 'p')}_{target}.npz")
    some = next(iter(advs.values()))
    k = _nearest(some["eps"], eps)
    fooled = np.all([a["pred_adv"][k] != a["pred_clean"] for a in advs.values()], axis=0) & (
        some["pred_clean"] == some["y"])
    if not fooled.any():
        return None
    i = int(np.flatnonzero(fooled)[0])
    fig, axes = plt.subplots(len(advs), 5, figsize=(10, 2.1 * len(advs)), squeeze=False)
    for r, (name, a) in enumerate(advs.items()):
        from ..attacks import spec

        what = "ε" if spec(name).eps_bounded else "ε unused:" if spec(name).eps_free else "overshoot"
        _row(axes[r], a["x"][i], a["x_adv"][k][i], maps["clean"][i], maps[name][k][i],
             f"{name}\n{what} {a['eps'][k]:g}", r == 0)
    fig.suptitle(f"{p['dataset']} {p['size']} px · {p['model']}: test image {int(some['idx'][i])} (label "
                 f"{int(some['y'][i])}), fooled by every attack; {explainer} of the predicted class", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    map_colourbar(fig)
    return fig


def map_colourbar(fig) -> None:
    """The saliency maps' colour bar (:data:`advxai.book.grammar.MAP_CMAP`, values min–max normalised per map), in
    the right margin a ``tight_layout(rect=(0, 0, 0.9, 1))`` leaves free."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cax = fig.add_axes((0.92, 0.2, 0.015, 0.6))
    fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), cax=cax, label="map value (0–1 per map)")


def radarmix_grid(radarmix_dirs: list, attack: str = "pgd", eps: float = 0.05, target: str = "predicted"):
    """A row per explainer (Grad-CAM, Grad-CAM++, SHAP, LIME) for one attack at the ε nearest ``eps``, on the first
    image every explainer explained and the attack fooled (pixel units, the config seed's model); ``None`` when
    no run has one."""
    import matplotlib.pyplot as plt

    run = _pick_run(radarmix_dirs, ("isic2018",), lambda q: q.get("eps_units", "pixel") == "pixel")
    if run is None or not (run / "adversarial.npz").exists():
        return None
    adv, logits = np.load(run / "adversarial.npz"), np.load(run / "logits.npz")
    if attack not in adv:
        return None
    k = _nearest(adv["eps"], eps)
    maps = {f.stem.removeprefix("maps_").removesuffix(f"_{target}").replace("pp", "++"): np.load(f)
            for f in sorted(run.glob(f"maps_*_{target}.npz"))}
    fooled = (logits[attack][k].argmax(1) != logits["clean"].argmax(1)) & (logits["clean"].argmax(1) == adv["y"])
    common = set(np.flatnonzero(fooled))
    for m in maps.values():
        common &= set(m["sub"].tolist()) if "sub" in m else common
    if not common:
        return None
    i = min(common)
    fig, axes = plt.subplots(len(maps), 5, figsize=(10, 2.1 * len(maps)), squeeze=False)
    for r, (name, m) in enumerate(maps.items()):
        j = list(m["sub"]).index(i) if "sub" in m else i
        _row(axes[r], adv["x"][i], adv[attack][k][i], m["clean"][j], m[attack][k][j], name, r == 0)
    p = _params(run)
    fig.suptitle(f"{p['dataset']} {p['size']} px · {p['model']}: lesion {int(adv['idx'][i])}, {attack} at ε = "
                 f"{adv['eps'][k]:g} (fooled); each explainer's map of the predicted class", fontsize=10)
    fig.tight_layout()
    return fig


def figures(attack_dirs: list, gradcam_dirs: list, radarmix_dirs: list) -> dict:
    """The chapters' example grids by glue name (a sentence in their place where a grid has no fooled image)."""
    from IPython.display import HTML  # cross-document glue pastes HTML (a Markdown object shows its repr)

    ga, rm = gradattacks_grid(attack_dirs, gradcam_dirs), radarmix_grid(radarmix_dirs)
    none = "<p><em>{} in this build: no example to show.</em></p>"
    return {"ga-example-fig": ga if ga is not None else HTML(none.format(
                "No Grad-Attacks run, or no image that every attack fooled,")),
            "rm-example-fig": rm if rm is not None else HTML(none.format(
                "No RADAR-MIX run in pixel units, or no lesion that PGD fooled and every explainer explained,"))}
