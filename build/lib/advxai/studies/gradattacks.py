"""The Grad-Attacks study, one function per step of notebooks 02–05: attack a class-balanced test sample at every ε,
explain the clean and attacked images, measure the distortion of the images and of their heatmaps (MOD)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import artefacts, data
from .. import attacks as A
from .. import explain as X
from ..measure import evaluation, tables
from ..measure import metrics as M
from ..models import train


def sample(ds, n_images: int, seed: int = 0):
    """A seeded class-balanced draw of ``n_images`` test images: ``(x, y, idx)``."""
    x_te, y_te = ds.split("test")
    idx = data.balanced_subset(y_te, n_images, seed)
    return x_te[idx], y_te[idx], idx


def attack_all(net, ds, x, y, idx, attacks: list[str], eps: list[float], attack_params: dict, n_images: int, seed: int,
               n_boot: int, base: dict, out: Path, log=print) -> list[dict]:
    """Every attack at every ε on ``x``: the clean classification rows, then each cell's attack rows. Each attack's
    images and predictions are saved to ``out/adv_<attack>.npz`` (the later stages read them)."""
    probs_clean = M.softmax(train.predict_logits(net, x))
    rows = evaluation.classification_rows(y, probs_clean, n_boot, seed, subset="attacked", **base)
    for name in attacks:
        params = A.params_for(name, attack_params.get(name))
        log(name, params, "| ε means:", A.spec(name).eps_meaning)
        fit = A.fit_images(ds, "test", n_images, seed) if A.spec(name).fits_perturbation else None
        advs = A.sweep(net, x, y, name, eps, params, seed=seed, fit=fit)
        preds = []
        for e, (x_adv, secs) in advs.items():
            p_adv = M.softmax(train.predict_logits(net, x_adv))
            preds.append(p_adv.argmax(1))
            rows += evaluation.attack_rows(y, probs_clean, p_adv, x, x_adv, secs, n_boot, seed, attack=name, eps=e,
                                           **base)
        artefacts.save_npz(out / f"adv_{name}.npz", eps=np.array(list(advs)),
                           x_adv=np.stack([a for a, _ in advs.values()]), idx=idx, y=y, x=x,
                           pred_clean=probs_clean.argmax(1), pred_adv=np.stack(preds))
    return rows


def load_attacks(attack_dir: Path) -> dict[str, dict]:
    """The attack run's saved images and predictions, per attack (``adv_<attack>.npz``)."""
    return {p.stem[4:]: artefacts.load_npz(p) for p in sorted(Path(attack_dir).glob("adv_*.npz"))}


def explain_all(net, advs: dict, explainers: list[str], targets: list[str], layer: str, base: dict, out: Path,
                log=print) -> list[dict]:
    """Every explainer's maps of the clean images and every attacked version, for each target, saved to
    ``out/maps_<explainer>_<target>.npz``; one ``seconds`` row per explainer."""
    first = next(iter(advs.values()))
    x, y, eps = first["x"], first["y"], first["eps"]
    preds = {"clean": first["pred_clean"], **{a: d["pred_adv"] for a, d in advs.items()}}
    rows = []
    for name in explainers:
        t0 = time.perf_counter()
        maps = X.explain_versions(name, net, x, y, {a: d["x_adv"] for a, d in advs.items()}, preds, targets,
                                  layer=layer)
        secs = time.perf_counter() - t0
        n_maps = len(x) * (1 + sum(len(d["x_adv"]) for d in advs.values()))
        rows.append(tables.row("seconds", secs, n=n_maps * len(targets), explainer=name, **base))
        for t, m in maps.items():
            artefacts.save_npz(out / f"maps_{name.replace('+', 'p')}_{t}.npz", eps=eps, explainer=name, target=t, **m)
        log(f"{name}: {n_maps} maps × {len(targets)} targets in {secs:.1f} s")
    return rows


def distortion_rows(attack_dir: Path, n_boot: int, seed: int, base: dict) -> list[dict]:
    """PSNR, SSIM and NISSIM of every attacked image against its clean one, per (attack, ε)."""
    rows = []
    for a, d in load_attacks(attack_dir).items():
        for e, xa in zip(d["eps"], d["x_adv"], strict=True):
            rows += evaluation.distortion_rows(d["x"], xa, n_boot, seed, attack=a, eps=float(e), **base)
    return rows


def strength_rows(gradcam_dirs: list, attack_dirs: list, faithful: bool, n_boot: int, seed: int,
                  base: dict) -> tuple[list[dict], pd.DataFrame]:
    """The attack's strength on the heatmaps: NISSIM of each image's clean vs attacked map, MOD and VID per
    (explainer, target, attack, ε) split fooled / not fooled; and the per-image NISSIM behind them."""
    rows, per_image = [], []
    for g_dir, a_dir in zip(gradcam_dirs, attack_dirs, strict=True):
        advs = load_attacks(a_dir)
        for mp in sorted(Path(g_dir).glob("maps_*.npz")):
            m = artefacts.load_npz(mp)
            explainer, target = str(m["explainer"]), str(m["target"])
            for a, d in advs.items():
                for k, e in enumerate(d["eps"]):
                    v = M.heatmap_nissim(m["clean"], m[a][k], d["x"], d["x_adv"][k], faithful=faithful)
                    split = evaluation.split_masks(d["y"], d["pred_clean"], d["pred_adv"][k])
                    rows += evaluation.strength_rows(v, split, faithful, n_boot, seed, attack=a, eps=float(e),
                                                     explainer=explainer, target=target, **base)
                    per_image += [dict(attack=a, eps=float(e), explainer=explainer, target=target, nissim=float(n),
                                       fooled="fooled" if f else "not fooled" if c else "misclassified")
                                  for n, f, c in zip(v, split["fooled"], split["fooled"] | split["not_fooled"],
                                                     strict=True)]
    return rows, pd.DataFrame(per_image)
