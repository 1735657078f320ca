"""The detection study, one function per step of notebooks/07_detection.ipynb: the image sample, the attacked cells,
the views every detector reads, the cross-validated scores with their cost, and the adaptive attack."""

from __future__ import annotations

import time

import numpy as np

from .. import detect
from ..attacks import compiled
from ..detect import Cell
from ..detect import adaptive as AD
from ..detect import views as V
from ..detect.detectors import DETECTORS, MAP_GROUP, OTHER_GROUPS, views_for


def sample(ds, splits: list[str], n_images: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``splits`` (all of them when ``n_images`` is 0/None, else a seeded class-balanced draw)."""
    from ..data import balanced_subset

    parts = [ds.split(s) for s in splits]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if n_images:
        idx = balanced_subset(y, int(n_images), seed)
        x, y = x[idx], y[idx]
    return x, y


def attack_cells(model, x, y, attacks: dict[str, list[float]], params: dict, seed: int = 0, ds=None):
    """{Cell: adversarial images} for every (attack, ε), their predictions, and seconds per attack."""
    from ..attacks import fit_images, spec
    from ..models.train import predict_logits

    advs, preds, secs = {}, {"clean": predict_logits(model, x).argmax(1)}, {}
    for name, grid in attacks.items():
        fit = fit_images(ds, "test", 100, seed) if spec(name).fits_perturbation else None
        t0 = time.perf_counter()
        for e, xa in compiled.sweep(model, x, y, name, grid, params.get(name), seed, fit).items():
            advs[Cell(name, e)] = xa
        secs[name] = time.perf_counter() - t0
    for c, xa in advs.items():
        preds[c] = predict_logits(model, xa).argmax(1)
    return advs, preds, secs


def all_views(model, x, advs: dict, detectors: list[str], ctx: dict):
    """Views of the clean images and of every cell; seconds per view measured on the clean images."""
    names = views_for(detectors)
    clean, secs = V.compute(model, x, names, ctx)
    return clean, {c: V.compute(model, xa, names, ctx)[0] for c, xa in advs.items()}, secs


def evaluate(detectors: list[str], clean_views: dict, adv_views: dict, success: dict, ref, fold_of: np.ndarray,
             view_secs: dict, ctx: dict, n_boot: int = 1000, seed: int = 0, progress=print):
    """Cross-validated records of every detector, its out-of-fold scores and its cost in ms per image (the
    views it reads + its features + its scoring, measured on the clean images)."""
    recs, oofs, cost = [], {}, {}
    n = len(fold_of)
    for d in detectors:
        t0 = time.perf_counter()
        clean, secs = detect.timed_features(d, clean_views, ref)
        adv = {c: DETECTORS[d].features(v, ref) for c, v in adv_views.items()}
        oof = detect.cross_validate(d, clean, adv, success, fold_of, {**ctx, "seed": seed})
        recs += detect.records(d, oof, success, n_boot, seed)
        oofs[d] = oof
        score_secs = _score_seconds(d, clean, adv, success, fold_of, ctx, seed)
        cost[d] = 1000 * (sum(view_secs[v] for v in DETECTORS[d].views) + secs + score_secs) / n
        progress(f"{d}: {time.perf_counter() - t0:.1f} s")
    return recs, oofs, cost


def _score_seconds(d, clean, adv, success, fold_of, ctx, seed):
    """Seconds to score every clean image once with a detector fitted on the first cell's training folds."""
    from ..detect import fits

    c = next(iter(adv))
    train = fold_of != 0
    xs = np.concatenate([clean[train], adv[c][train & success[c]]])
    ys = np.r_[np.zeros(train.sum()), np.ones((train & success[c]).sum())]
    # the trained-network detectors (map CNN, ART's two) are fitted once more for this: a few seconds each, and
    # without it their cost left out the network that scores (it read as ~0 ms per image)
    score = fits.fit(DETECTORS[d].fit, xs, ys, {**ctx, "seed": seed})
    t0 = time.perf_counter()
    score(clean)
    return time.perf_counter() - t0


def roc_points(recs: list[dict], oofs: dict, success: dict, top: int = 4):
    """ROC curves of the ``top`` detectors (by AUROC) per held-out attack, from their out-of-fold scores: the clean
    images against that attack's successful adversarials, each scored by the detector fitted without the attack.
    Columns held_out, detector, auroc, fpr, tpr (the detection run's ``roc.csv``)."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    parts = []
    for c in dict.fromkeys(r["cell"] for r in recs if r["setting"] == "held_out"):
        best = sorted((r for r in recs if r["cell"] == c and r["setting"] == "held_out"), key=lambda r: -r["auroc"][0])
        for r in best[:top]:
            s = oofs[r["detector"]][f"without {c.attack}"]
            labels = np.r_[np.zeros(len(s["clean"])), np.ones(success[c].sum())]
            fpr, tpr, _ = roc_curve(labels, np.r_[s["clean"], s[c][success[c]]])
            parts.append(pd.DataFrame({"held_out": str(c), "detector": r["detector"], "auroc": r["auroc"][0],
                                       "fpr": fpr, "tpr": tpr}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["held_out", "detector", "auroc", "fpr", "tpr"])


def score_samples(recs: list[dict], oofs: dict, success: dict):
    """The out-of-fold scores behind each group's headline number: per detector group, the detector with the highest
    worst held-out AUROC, on its worst held-out attack — the clean images and that attack's successful adversarials,
    scored by the detector fitted without it. Columns group, detector, held_out, auroc, label (clean / adversarial),
    score (the detection run's ``scores.csv``, drawn as histograms)."""
    import pandas as pd

    held = [r for r in recs if r["setting"] == "held_out" and np.isfinite(r["auroc"][0])]
    worst: dict[str, dict] = {}
    for r in held:  # each detector's worst held-out cell
        if r["detector"] not in worst or r["auroc"][0] < worst[r["detector"]]["auroc"][0]:
            worst[r["detector"]] = r
    best: dict[str, dict] = {}
    for r in sorted(worst.values(), key=lambda r: -r["auroc"][0]):
        best.setdefault(DETECTORS[r["detector"]].family, r)
    parts = []
    for group, r in best.items():
        c = r["cell"]
        s = oofs[r["detector"]][f"without {c.attack}"]
        for label, v in (("clean", s["clean"]), ("adversarial", s[c][success[c]])):
            parts.append(pd.DataFrame({"group": group, "detector": r["detector"], "held_out": str(c),
                                       "auroc": r["auroc"][0], "label": label, "score": np.asarray(v, float)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["group", "detector", "held_out", "auroc", "label", "score"])


def save_curves(out, recs: list[dict], oofs: dict, success: dict):
    """The run's ``roc.csv`` (:func:`roc_points`) and ``scores.csv`` (:func:`score_samples`), each written atomically
    where it has rows; returns both tables."""
    from ..artefacts import atomic_path

    tables = roc_points(recs, oofs, success), score_samples(recs, oofs, success)
    for name, t in zip(("roc.csv", "scores.csv"), tables, strict=True):
        if len(t):
            with atomic_path(out / name) as tmp:
                t.to_csv(tmp, index=False)
    return tables


def _seen_means(recs: list[dict]) -> dict[str, float]:
    """Each detector's mean AUROC over the *seen* cells (fitted and tested on one attack and ε)."""
    seen: dict[str, list[float]] = {}
    for r in recs:
        if r["setting"] == "seen" and np.isfinite(r["auroc"][0]):
            seen.setdefault(r["detector"], []).append(r["auroc"][0])
    return {d: float(np.mean(v)) for d, v in seen.items()}


def attacked(recs: list[dict]) -> list[str]:
    """The detectors the adaptive attack goes to, by one rule fixed before any held-out number is read: every
    explanation-map detector of the run, and in each other group its detector with a TensorFlow port
    (:data:`advxai.detect.differentiable.PORTS`) with the highest mean AUROC on the seen cells, the rule
    :func:`chosen_pair` picks the answer's pair by. Every explanation-map detector has a port (a test checks)."""
    from ..detect.differentiable import PORTS

    mean = {d: m for d, m in _seen_means(recs).items() if d in PORTS.names()}
    maps = [d for d in mean if DETECTORS[d].family == MAP_GROUP]
    best: dict[str, str] = {}
    for d in sorted(mean, key=lambda k: -mean[k]):
        if DETECTORS[d].family != MAP_GROUP:
            best.setdefault(DETECTORS[d].family, d)
    return sorted(maps, key=lambda k: -mean[k]) + list(best.values())


def adaptive_attacks(model, x, y, advs: dict, cell: Cell, recs: list[dict], clean_views, adv_views, success, ref,
                     fold_of, ctx, adaptive: dict, n_boot: int = 1000, seed: int = 0,
                     keys: dict | None = None) -> tuple[dict, list]:
    """:func:`adaptive_study` on every detector :func:`attacked` names: ({detector: result}, the result rows,
    :func:`advxai.measure.evaluation.adaptive_rows` with the row ``keys``)."""
    from ..measure import evaluation as E

    shared: dict = {}  # plain PGD's and Square's images, attacked once for every detector
    res = {name: adaptive_study(model, x, y, advs, cell, name, clean_views, adv_views, success, ref, fold_of, ctx,
                                adaptive["weights"], adaptive["eps_curve"], int(adaptive["max_iter"]),
                                int(adaptive["n_images"]), n_boot, seed, shared)
           for name in attacked(recs)}
    return res, [r for one in res.values() for r in E.adaptive_rows(one, **(keys or {}))]


def _nest(curve: dict, images: dict) -> dict:
    """The ε curve nested (Carlini et al. 2019: a larger budget contains every smaller one): per image and key,
    the adversarial found at a smaller ε is kept at each larger ε where that ε's own run did worse (fooled and
    undetected beats fooled beats neither), so every rate is monotone in ε by construction. ``images``: the
    best-λ images per ε, nested the same way. Returns per ε the number of images a smaller ε supplied."""
    carried, prev, prev_x = {}, None, None
    for e in sorted(curve):
        per = curve[e]
        if prev is not None:
            f0, v0 = per["best"]
            take = (prev["best"][1] & ~v0) | (prev["best"][0] & ~f0)
            images[e] = np.where(take[:, None, None, None], prev_x, images[e])
            carried[e] = int(take.sum())
            for k, (f, v) in per.items():
                per[k] = (f | prev[k][0], v | prev[k][1])
        prev, prev_x = per, images[e]
    return carried


def adaptive_study(model, x, y, advs: dict, cell: Cell, detector: str, clean_views, adv_views, success, ref, fold_of,
                   ctx, weights=(1.0, 10.0, 100.0), eps_curve=(0.02, 0.05, 0.1, 0.3), max_iter: int = 100,
                   n_images: int = 100, n_boot: int = 1000, seed: int = 0, shared: dict | None = None) -> dict:
    """The adaptive attack on ``detector``, end to end (:mod:`advxai.detect.adaptive`), with checks that decide
    (Carlini et al. 2019, "On evaluating adversarial robustness"). Fold 0 is the test fold: the detector is fitted
    on the other folds (clean images + successful adversarials of ``cell``: the seen setting), its 5 %-FPR threshold
    read on the test fold's clean images, and up to ``n_images`` correctly classified test-fold images are attacked.

    * The evasion curve over ``eps_curve`` (plain PGD, each λ, the best λ per image) is ε-nested (:func:`_nest`).
    * At the cell's ε two stronger attacks check it: twice the steps from a random start at the λ that evaded most,
      and Square (black box, the classifier only). Every image either finds fooled and undetected is added to the
      reported best-λ result (``gained``: per check, the images it added), so a check that beats the attack
      *replaces* its number instead of sitting beside it; the nesting then carries them to larger ε.
    * AUROC of the detector on the test fold under the plain cell and under the reported attack at the cell's ε.

    ``shared``: plain PGD's and Square's images, shared between the detectors attacked on the same images
    (:func:`advxai.detect.adaptive.evade`; a later detector's ``seconds`` leave those attacks out)."""
    import tensorflow as tf

    from ..attacks import generate
    from ..detect import differentiable, fits
    from ..models.train import predict_logits

    spec = DETECTORS[detector]
    train, test = fold_of != 0, fold_of == 0
    clean = spec.features(clean_views, ref)
    adv = spec.features(adv_views[cell], ref)
    pos = train & success[cell]
    labels = np.r_[np.zeros(train.sum()), np.ones(pos.sum())]
    score = fits.fit(spec.fit, np.concatenate([clean[train], adv[pos]]), labels, {**ctx, "seed": seed})
    port = differentiable.port(detector, model, score, ref, ig_steps=int(ctx.get("ig_steps", 8)), surrogate=True)

    def score_np(images):
        views, _ = V.compute(model, images, list(spec.views), ctx)
        return score(spec.features(views, ref))

    s_clean = score(clean[test])
    threshold = float(np.quantile(s_clean, 0.95))
    # C&W's hinge: only the score above the threshold is penalised, in the port's units (a softplus twin's score is
    # not the real one), in clean-score standard deviations
    ported = np.concatenate([port(x[test][i:i + 128]).numpy() for i in range(0, int(test.sum()), 128)])
    cut, spread = float(np.quantile(ported, 0.95)), float(np.std(ported)) or 1.0
    score_tf = lambda xx: tf.nn.relu(port(xx) - cut) / spread  # noqa: E731
    pred_c = predict_logits(model, x[test]).argmax(1)
    pick = np.flatnonzero(pred_c == y[test])[:n_images]
    xt, yt = x[test][pick], y[test][pick]
    t0 = time.perf_counter()
    shared = {} if shared is None else shared
    curve, images = {}, {}
    for e in sorted({*map(float, eps_curve), cell.eps}):
        curve[e], images[e] = AD.evade(model, xt, yt, e, score_tf, score_np, threshold, [0.0, *weights], max_iter,
                                       seed, plain=shared)
    at = curve[cell.eps]
    best_w = max(weights, key=lambda w: (at[float(w)][1].sum(), w))  # the λ that evaded most at the cell's ε
    longer, x_long = AD.evade(model, xt, yt, cell.eps, score_tf, score_np, threshold, [best_w], 2 * max_iter,
                              seed + 1, random_start=True)
    if "square" not in shared:  # black box: the same images for every detector
        shared["square"] = generate(model, xt, yt, "square", cell.eps, seed=seed)[0]
    x_sq = shared["square"]
    sq_fooled = predict_logits(model, x_sq).argmax(1) != yt
    checks = {"2× steps + restart": (longer["best"], x_long), "square (black box)": ((sq_fooled, sq_fooled & (
        score_np(x_sq) <= threshold)), x_sq)}
    reported = {k: (np.asarray(f).copy(), np.asarray(v).copy()) for k, (f, v) in at.items()}  # before any check
    gained = {}
    for name, ((_, v), xa) in checks.items():
        fb, vb = at["best"]
        new = v & ~vb
        gained[name] = new
        images[cell.eps] = np.where(new[:, None, None, None], xa, images[cell.eps])
        at["best"] = (fb | new, vb | new)
    carried = _nest(curve, images)
    secs = time.perf_counter() - t0
    ok_ad = curve[cell.eps]["best"][0]
    s_ad = np.full(len(s_clean), np.nan)
    ad_pos = np.zeros(len(s_clean), bool)
    s_ad[pick], ad_pos[pick] = score_np(images[cell.eps]), ok_ad
    s_plain = score(adv[test])
    return {"detector": detector, "group": spec.family, "cell": cell, "seconds": secs, "threshold": threshold,
            "n_test": int(test.sum()), "n_attacked": len(pick), "weights": list(weights), "curve": curve,
            "before_checks": reported, "gained": gained, "carried": carried,
            "backward": differentiable.backward(detector),
            "plain": detect.pair_bootstrap(s_clean, s_plain, success[cell][test], n_boot, seed),
            "adaptive": detect.pair_bootstrap(s_clean, np.nan_to_num(s_ad), ad_pos, n_boot, seed),
            "more_steps": checks["2× steps + restart"][0], "square": checks["square (black box)"][0]}


VERSUS = "map_vs_other"  # the rows' `target`: the detection answer per setting


def chosen_pair(recs: list[dict]) -> tuple[str, str] | None:
    """The two detectors the answer compares, by a rule fixed before any held-out number is read: the
    explanation-map detector and the outputs or deep-feature detector with the highest mean AUROC on the *seen* cells
    (fitted and tested on one attack and ε). ``None`` when either side has none."""
    mean = _seen_means(recs)
    maps = [d for d in mean if DETECTORS[d].family == MAP_GROUP]
    others = [d for d in mean if DETECTORS[d].family in OTHER_GROUPS]
    return (max(maps, key=mean.get), max(others, key=mean.get)) if maps and others else None


def map_vs_other(recs: list[dict], oofs: dict, success: dict, n_boot: int, seed: int, out, keys: dict) -> list[dict]:
    """The detection answer of one setting: the paired held-out-family AUROC difference (:func:`advxai.detect.
    protocol.family_difference`) between the pair :func:`chosen_pair` picks; its bootstrap replicates are saved
    to ``family_diff.npz`` for the summary to pool over settings. One row (``auroc_diff``, target ``map_vs_other``,
    the pair in ``explainer``), none where the grid spans one attack family."""
    from pathlib import Path

    from ..artefacts import save_npz
    from ..detect.protocol import family_difference
    from ..measure.tables import row

    pair = chosen_pair(recs)
    diff = family_difference(oofs[pair[0]], oofs[pair[1]], success, n_boot, seed) if pair else None
    if diff is None:
        return []
    save_npz(Path(out) / "family_diff.npz", replicates=diff["replicates"], value=diff["value"],
             pair=np.array(pair))
    n = len(next(iter(success.values())))
    return [row("auroc_diff", diff["value"], (diff["ci_low"], diff["ci_high"]), n,
                **{**keys, "attack": "held-out families", "explainer": f"{pair[0]} vs {pair[1]}", "target": VERSUS,
                   "subset": "fooled"})]
