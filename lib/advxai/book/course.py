"""Course mode: checks for the exercises of ``book/course`` and the student copy (solutions stripped).

A course notebook pairs each exercise with a *stub* cell (tag ``exercise``: runs, does nothing useful), a
*solution* cell (tag ``solution``: hidden behind a toggle in the book) and a *check* cell calling a function of
this module, which says "not done yet" for a stub and compares a real answer with the library's reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..artefacts import atomic_path
from ..errors import DataError


def check_fgsm(my_fgsm, model, x: np.ndarray, y: np.ndarray, eps: float) -> str:
    """Compare a hand-written FGSM with ART's FastGradientMethod on the same images."""
    from .. import attacks

    mine = my_fgsm(model, x, y, eps)
    if mine is None:
        return "not implemented yet: fill in my_fgsm"
    mine = np.asarray(mine, np.float32)
    reference, _ = attacks.generate(model, x, y, "fgsm", eps)
    agree = float(np.mean(np.isclose(mine, reference, atol=1e-5)))
    linf = float(np.abs(mine - x).max())
    verdict = "matches ART" if agree > 0.999 else "differs from ART"
    return f"{verdict}: {100 * agree:.2f} % of pixels equal, ‖δ‖∞ = {linf:.4f} (ε = {eps})"


def check_prediction(prediction, moved: dict[str, float]) -> str:
    """Compare a predicted explainer name with the one whose maps moved most (lowest mean IoU)."""
    if prediction in (None, Ellipsis):
        return "no prediction yet: set prediction to an explainer name"
    truth = min(moved, key=moved.get)
    return ("right" if prediction == truth else "not this time") + f": {truth} moved most " + ", ".join(
        f"({k} IoU {v:.2f})" for k, v in moved.items())


def _not_done(answer, name: str) -> str | None:
    return f"not implemented yet: fill in {name}" if answer is None or answer is Ellipsis else None


def check_gradcam(my_gradcam, model, x: np.ndarray, layer: str = "last_conv") -> str:
    """Compare a hand-written Grad-CAM (the low-resolution map ReLU(Σ_k α_k A^k) at ``layer``, one per image,
    for the predicted class) with the library's, after the same up-sampling and min–max normalisation."""
    from scipy.ndimage import zoom
    from tf_keras_vis.utils import normalize

    from .. import explain
    from ..models.train import predict_logits

    targets = predict_logits(model, x).argmax(1)
    mine = my_gradcam(model, x, targets, layer)
    if (missing := _not_done(mine, "my_gradcam")) is not None:
        return missing
    mine = np.asarray(mine, np.float32)
    if mine.ndim != 3 or len(mine) != len(x):
        return f"expected one 2-D map per image, shape (N, h, w); got {mine.shape}"
    up = normalize(zoom(mine, (1.0, x.shape[1] / mine.shape[1], x.shape[2] / mine.shape[2]), order=1))
    reference = explain.explain("gradcam", model, x, targets, layer=layer, progress=False)
    gap = float(np.abs(np.clip(up, 0, 1) - reference).max())
    return ("matches the library" if gap < 1e-4 else "differs from the library") + f": largest difference {gap:.2g}"


def check_fooling_rate(my_fooling_rate, y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray) -> str:
    """Compare a hand-written fooling rate with :func:`advxai.measure.metrics.fooling_rate` (over correctly classified
    images) and show the seed's all-images flip rate beside it."""
    from ..measure import metrics

    mine = my_fooling_rate(y, pred_clean, pred_adv)
    if (missing := _not_done(mine, "my_fooling_rate")) is not None:
        return missing
    ref, flips = metrics.fooling_rate(y, pred_clean, pred_adv), metrics.flip_rate(pred_clean, pred_adv)
    n_correct = int(np.sum(np.asarray(pred_clean) == np.asarray(y)))
    verdict = "matches the library" if np.isclose(float(mine), ref) else "differs from the library"
    return (f"{verdict}: fooling rate {float(mine):.3f} (library {ref:.3f}, over {n_correct} correctly classified "
            f"of {len(y)}); the seed's flip rate over all {len(y)}: {flips:.3f}")


def check_shift(my_shift, clean_maps: np.ndarray, adv_maps: np.ndarray, fooled: np.ndarray, k: float = 0.1) -> str:
    """Compare hand-written mean top-``k`` IoUs of clean vs attacked maps, split fooled / not fooled, with the
    library's :func:`advxai.measure.metrics.iou`."""
    from ..measure import metrics

    mine = my_shift(clean_maps, adv_maps, fooled)
    if (missing := _not_done(mine, "my_shift")) is not None:
        return missing
    fooled = np.asarray(fooled, bool)
    ious = metrics.pairwise(metrics.iou, clean_maps, adv_maps, k=k)
    ref = {"fooled": float(np.mean(ious[fooled])) if fooled.any() else float("nan"),
           "not_fooled": float(np.mean(ious[~fooled])) if (~fooled).any() else float("nan")}
    same = all(np.isclose(float(mine[s]), ref[s], equal_nan=True) for s in ref)
    return ("matches the library" if same else "differs from the library") + ": mean IoU " + ", ".join(
        f"{s.replace('_', ' ')} {ref[s]:.2f} (n = {int(np.sum(fooled if s == 'fooled' else ~fooled))})" for s in ref)


def check_detector(my_score, my_auroc, model, x_clean: np.ndarray, x_adv: np.ndarray) -> str:
    """Compare a hand-written detector score (higher = more suspicious) and AUROC with the library's MSP
    detector (:mod:`advxai.detect.detectors`) and scikit-learn's ``roc_auc_score``."""
    from sklearn.metrics import roc_auc_score

    from ..detect.detectors import msp
    from ..models.train import predict_logits

    neg, pos = my_score(model, x_clean), my_score(model, x_adv)
    if (missing := _not_done(neg, "my_score")) is not None:
        return missing
    auc = my_auroc(np.asarray(neg, np.float64), np.asarray(pos, np.float64))
    if (missing := _not_done(auc, "my_auroc")) is not None:
        return missing
    ref_neg, ref_pos = (msp({"logits": predict_logits(model, v)}, None)[:, 0] for v in (x_clean, x_adv))
    ref = roc_auc_score(np.r_[np.zeros(len(ref_neg)), np.ones(len(ref_pos))], np.r_[ref_neg, ref_pos])
    same_order = np.isclose(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]), ref)
    verdict = "matches the library" if same_order and np.isclose(float(auc), ref) else "differs from the library"
    return f"{verdict}: AUROC {float(auc):.3f} (library: MSP detector {ref:.3f}; {len(neg)} clean, {len(pos)} attacked)"


def student_copy(src: Path, dest: Path) -> list[Path]:
    """Copy every notebook of ``src`` into ``dest`` without its ``solution`` cells and with outputs cleared."""
    src, dest = Path(src), Path(dest)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise DataError(f"no notebooks in {src}; point at the course folder (book/course)")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        cells = [c for c in nb["cells"] if "solution" not in c.get("metadata", {}).get("tags", [])]
        for c in cells:
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        nb["cells"] = cells
        target = dest / nb_path.name
        with atomic_path(target) as tmp:
            Path(tmp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        out.append(target)
    return out
