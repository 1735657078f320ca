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
from ..detect.detectors import DETECTORS, views_for
from ..errors import ParameterError


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


def best_explanation_detector(recs: list[dict]) -> str:
    """The explanation-map detector with the highest mean held-out AUROC (seen AUROC where nothing is held out)."""
    expl = [r for r in recs if DETECTORS[r["detector"]].explanation]
    held = [r for r in expl if r["setting"] == "held_out"] or [r for r in expl if r["setting"] == "seen"]
    if not held:
        raise ParameterError("no explanation-map detector in the grid: the adaptive attack needs one")
    means = {}
    for r in held:
        means.setdefault(r["detector"], []).append(r["auroc"][0])
    return max(means, key=lambda k: np.mean(means[k]))


def adaptive_study(model, x, y, advs: dict, cell: Cell, detector: str, clean_views, adv_views, success, ref, fold_of,
                   ctx,
                   weight: float = 1.0, max_iter: int = 20, n_boot: int = 1000, seed: int = 0) -> dict:
    """Fold 0 is the test fold. The detector is fitted on the other folds' clean images and successful
    adversarials of ``cell`` (the seen setting); a surrogate of its score is fitted on the same images; then the
    test fold's images are attacked adaptively at the cell's ε. Returns the detector's metrics on the test fold
    against the plain attack and against the adaptive one, and the attack success of each."""
    from ..detect import fits
    from ..models.train import predict_logits

    spec = DETECTORS[detector]
    train, test = fold_of != 0, fold_of == 0
    clean = spec.features(clean_views, ref)
    adv = spec.features(adv_views[cell], ref)
    pos = train & success[cell]
    labels = np.r_[np.zeros(train.sum()), np.ones(pos.sum())]
    score = fits.fit(spec.fit, np.concatenate([clean[train], adv[pos]]), labels, {**ctx, "seed": seed})
    x_fit = np.concatenate([x[train], advs[cell][pos]])
    s_fit = np.r_[score(clean[train]), score(adv[pos])]
    surrogate, fit_rho = AD.fit_surrogate(model, x_fit, s_fit, seed=seed)
    x_test, y_test = x[test], y[test]
    t0 = time.perf_counter()
    x_ad = AD.attack(model, x_test, y_test, cell.eps, surrogate, weight, max_iter, seed=seed)
    secs = time.perf_counter() - t0
    pred_c = predict_logits(model, x_test).argmax(1)
    pred_ad = predict_logits(model, x_ad).argmax(1)
    ok_ad = detect.successes(y_test, pred_c, pred_ad)
    v_ad, _ = V.compute(model, x_ad, list(spec.views), ctx)
    s_clean, s_plain, s_ad = score(clean[test]), score(adv[test]), score(spec.features(v_ad, ref))
    out = {"detector": detector, "cell": cell, "fit_spearman": fit_rho, "seconds": secs,
           "n_test": int(test.sum()), "n_correct": int((pred_c == y_test).sum()),
           "plain": detect.pair_bootstrap(s_clean, s_plain, success[cell][test], n_boot, seed),
           "adaptive": detect.pair_bootstrap(s_clean, s_ad, ok_ad, n_boot, seed),
           "success_plain": success[cell][test], "success_adaptive": ok_ad, "correct": pred_c == y_test,
           "threshold": np.quantile(s_clean, 0.95)}
    out["evaded_plain"] = success[cell][test] & (s_plain <= out["threshold"])
    out["evaded_adaptive"] = ok_ad & (s_ad <= out["threshold"])
    return out

