"""The RADAR-MIX study, one function per step of notebooks/06_radarmix.ipynb: the attacked sample, every attack at
every ε with its rows, every explainer on the clean and attacked versions with the shift and localisation rows, and
the example image of the figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import artefacts, data
from .. import attacks as A
from .. import explain as X
from ..measure import evaluation as E
from ..measure import tables
from ..models import train


def sample(ds, split: str, n_images: int, seed: int = 0):
    """A seeded class-balanced draw of ``n_images`` from ``split``: images, labels, indices and lesion masks (or
    ``None`` where the split has none)."""
    x_all, y_all = ds.split(split)
    idx = data.balanced_subset(y_all, n_images, seed)
    return x_all[idx], y_all[idx], idx, data.lesion_masks(ds, split, idx)


def attack_all(net, ds, x, y, split: str, attacks: list[str], eps: list[float], attack_params: dict, units: str,
               n_images: int, seed: int, n_boot: int, base: dict):
    """Every attack at every ε: ``(advs, logits, rows)`` with ``advs[a]`` (E, N, H, W, C) and ``logits`` per
    version (``"clean"``: (N, K); ``a``: (E, N, K)); rows: clean classification and each cell's attack rows. Attacks
    in σ units are named ``<attack>@sigma``. UAP is fitted on a balanced draw of another split."""
    logits = {"clean": train.predict_logits(net, x)}
    rows = E.classification_rows(y, E.M.softmax(logits["clean"]), n_boot, seed, subset="attacked", **base)
    advs = {}
    for name in attacks:
        fit = A.fit_images(ds, split, n_images, seed) if A.spec(name).fits_perturbation else None
        sweep = A.sweep(net, x, y, name, eps, A.params_for(name, attack_params.get(name)), seed=seed, fit=fit,
                        units=units)
        name = name if units == "pixel" else f"{name}@{units}"  # reported apart from pixel-unit attacks
        advs[name] = np.stack([xa for xa, _ in sweep.values()])
        logits[name] = np.stack([train.predict_logits(net, xa) for xa in advs[name]])
        for k, (e, (xa, secs)) in enumerate(sweep.items()):
            rows += E.attack_rows(y, E.M.softmax(logits["clean"]), E.M.softmax(logits[name][k]), x, xa, secs,
                                  n_boot, seed, attack=name, eps=e, **base)
    return advs, logits, rows


def explain_all(net, ds, x, y, advs: dict, logits: dict, eps: list[float], explainers: list[str], n_explain: dict,
                explainer_params: dict, n_background: int, targets: list[str], topk: float, faithful: bool, masks,
                seed: int, n_boot: int, base: dict, out: Path, log=print):
    """Every explainer on the clean images and every attacked version, for each target: ``(maps, subs, rows)``.

    ``maps[name][target]`` as :func:`advxai.explain.explain_versions` returns it, ``subs[name]`` the images it
    explains (for the costly explainers a balanced draw of ``n_explain[name]`` among the correctly classified images,
    so every explained image counts in the fooled / not-fooled split; else all). Rows: seconds, the shift
    of every (attack, ε) split fooled / not fooled, localisation on the lesion where masks exist. The maps are saved
    to ``out/maps_<explainer>_<target>.npz``."""
    x_tr, _ = ds.split("train")
    background = x_tr[np.random.default_rng(seed).choice(len(x_tr), n_background, replace=False)]
    preds = {k: v.argmax(-1) for k, v in logits.items()}
    attacks = list(advs)
    repeated = tuple(a for a in attacks if A.spec(a.split("@")[0]).eps_free)  # same images at every ε: explained once
    maps, subs, rows = {}, {}, []
    correct = np.flatnonzero(preds["clean"] == y)
    for name in explainers:
        sub = (np.sort(correct[data.balanced_subset(y[correct], min(n_explain[name], len(correct)), seed)])
               if name in n_explain else np.arange(len(x)))
        kw = dict(explainer_params.get(name, {}), **({"background": background} if name == "shap" else {}))
        t0 = time.perf_counter()
        m = X.explain_versions(name, net, x[sub], y[sub], {a: advs[a][:, sub] for a in attacks},
                               {k: v[..., sub] for k, v in preds.items()}, targets, repeated, **kw)
        secs = time.perf_counter() - t0
        maps[name], subs[name] = m, sub
        rows.append(tables.row("seconds", secs, n=len(sub) * (1 + len(attacks) * len(eps)) * len(targets),
                               explainer=name, subset="attacked", **base))
        for t, mt in m.items():
            artefacts.save_npz(out / f"maps_{name.replace('+', 'p')}_{t}.npz", sub=sub, eps=np.array(eps),
                               explainer=name, target=t, **mt)
            rows += _map_rows(mt, y[sub], preds, sub, attacks, eps, topk, faithful,
                              None if masks is None else masks[sub], seed, n_boot, dict(explainer=name, target=t,
                                                                                        **base))
        log(f"{name}: {len(sub)} images × {1 + len(attacks) * len(eps)} versions × {len(targets)} targets in "
            f"{secs:.1f} s")
    return maps, subs, rows


def load_run(out: Path, explainers: list[str], targets: list[str]) -> tuple:
    """What a finished run saved: ``(df, advs, logits, maps, subs)``, its rows and the rest as :func:`attack_all`
    and :func:`explain_all` returned them (its page's figures are drawn from these files, not from memory)."""
    import pandas as pd

    saved = artefacts.load_npz(Path(out) / "adversarial.npz")
    advs = {k: v for k, v in saved.items() if k not in ("x", "y", "idx", "eps")}
    logits = {k: v for k, v in artefacts.load_npz(Path(out) / "logits.npz").items() if k != "eps"}
    maps, subs = {}, {}
    for name in explainers:
        for t in targets:
            m = artefacts.load_npz(Path(out) / f"maps_{name.replace('+', 'p')}_{t}.npz")
            subs[name] = m["sub"]
            maps.setdefault(name, {})[t] = {k: v for k, v in m.items()
                                            if k not in ("sub", "eps", "explainer", "target")}
    return pd.read_csv(Path(out) / "metrics.csv"), advs, logits, maps, subs


def _map_rows(mt: dict, y, preds: dict, sub, attacks: list[str], eps: list[float], topk: float, faithful: bool, masks,
              seed: int, n_boot: int, base: dict) -> list[dict]:
    """Shift rows of every (attack, ε), then localisation rows (clean, then every attacked version) where masks
    exist: the rows of one explainer and target."""
    rows = []
    for a in attacks:
        for k, e in enumerate(eps):
            split_k = E.split_masks(y, preds["clean"][sub], preds[a][k][sub])
            rows += E.shift_rows(mt["clean"], mt[a][k], split_k, topk, faithful, n_boot, seed, attack=a, eps=e, **base)
    if masks is not None:
        rows += E.localisation_rows(mt["clean"], masks, n_boot, seed, **base)
        for a in attacks:
            for k, e in enumerate(eps):
                rows += E.localisation_rows(mt[a][k], masks, n_boot, seed, attack=a, eps=e, **base)
    return rows


def example_image(subs: dict, logits: dict) -> int:
    """The image (explained by every explainer) whose prediction the most attacks flip at the largest ε."""
    common = sorted(set.intersection(*(set(s.tolist()) for s in subs.values())))
    attacks = [a for a in logits if a != "clean"]
    flips = [sum(logits[a][-1][i].argmax() != logits["clean"][i].argmax() for a in attacks) for i in common]
    return common[int(np.argmax(flips))]


def cw_warning(att) -> str:
    """A warning where C&W-L2 fooled under half of the correctly classified images (a configuration limit:
    iterations, binary-search steps, constant), else ``""``."""
    fr = att[(att.metric == "fooling_rate") & (att.attack == "cw")]
    if len(fr) and fr.value.max() < 0.5:
        return (f"**C&W-L2 fools {fr.value.max():.0%} of the correctly classified images (below 50 %): a "
                "configuration limit (iterations, binary-search steps, constant), not a weak attack.**")
    return ""
