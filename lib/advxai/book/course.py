"""Course mode: checks for the exercises of ``book/course``, its timing rule, the student copy (solutions and
answer key stripped) and the teacher's copy (solutions shown, the answer key and the rubric).

A course notebook pairs each exercise with a *stub* cell (tag ``exercise``: runs, does nothing useful), a
*solution* cell (tag ``solution``: hidden behind a toggle in the book) and a *check* cell calling a function of
this module, which says "not done yet" for a stub and compares a real answer with the library's reference. The
answer key to each part's discussion questions and the rubric are cells tagged ``answer`` (and ``remove-cell``:
the book does not show them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..artefacts import atomic_path
from ..errors import DataError
from . import labfigures


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


def check_pgd(my_pgd, model, x: np.ndarray, y: np.ndarray, eps: float, steps: int = 10) -> str:
    """Compare a hand-written PGD from the clean image (``steps`` signed steps of ε/4, each projected onto the
    ε-ball and [0, 1]) with the library's (ART's ``BasicIterativeMethod``, the same steps), and report its fooling
    rate over the correctly classified images beside FGSM's."""
    from .. import attacks
    from ..models.train import predict_logits

    mine = my_pgd(model, x, y, eps, steps)
    if (missing := _not_done(mine, "my_pgd")) is not None:
        return missing
    mine = np.asarray(mine, np.float32)
    reference, _ = attacks.generate(model, x, y, "bim", eps, {"max_iter": steps, "step_ratio": 0.25})
    agree = float(np.mean(np.isclose(mine, reference, atol=1e-5)))
    fgsm, _ = attacks.generate(model, x, y, "fgsm", eps)
    correct = predict_logits(model, x).argmax(1) == y
    rate = {k: float(np.mean(predict_logits(model, v).argmax(1)[correct] != y[correct])) for k, v in
            (("yours", mine), ("FGSM", fgsm))}
    verdict = "matches the library" if agree > 0.99 else "differs from the library"
    return (f"{verdict}: {100 * agree:.2f} % of pixels equal; fooling rate {rate['yours']:.2f} against FGSM's "
            f"{rate['FGSM']:.2f} at the same ε ({int(correct.sum())} correctly classified images)")


def check_prediction(prediction, ious: dict[str, np.ndarray]) -> str:
    """Compare a predicted name with the one whose maps moved most (lowest mean IoU), decided by 95 % bootstrap
    intervals over images: when the two intervals overlap these images cannot decide, and the check says so."""
    from ..measure.metrics import bootstrap_ci

    if prediction in (None, Ellipsis):
        return "no prediction yet: set prediction to a name"
    stats = {k: (float(np.mean(v)), *bootstrap_ci(np.asarray(v, float))) for k, v in ious.items()}
    (a, sa), (b, sb) = sorted(stats.items(), key=lambda kv: kv[1][0])[:2]  # the two that moved most
    shown = ", ".join(f"{k} IoU {m:.2f} [{lo:.2f}, {hi:.2f}]" for k, (m, lo, hi) in stats.items())
    if sa[2] >= sb[1]:
        return f"undecided: the intervals overlap ({shown}); these images cannot tell which moved more"
    return ("right" if prediction == a else "not this time") + f": {a} moved more ({shown}; n = {len(ious[a])})"


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
    labfigures.roc(np.asarray(neg, np.float64), np.asarray(pos, np.float64), float(auc))
    return f"{verdict}: AUROC {float(auc):.3f} (library: MSP detector {ref:.3f}; {len(neg)} clean, {len(pos)} attacked)"


def _wilson(k: int, n: int) -> str:
    from ..measure.metrics import wilson_ci

    lo, hi = wilson_ci(int(k), int(n))
    return f"{k / n:.2f} [{lo:.2f}, {hi:.2f}]" if n else "no images"


def confidence_band(model, x_clean: np.ndarray, fpr: float = 0.05) -> tuple[float, float]:
    """The two-sided confidence detector's acceptance band: the (fpr/2, 1 − fpr/2) quantiles of the largest logit
    on clean images (an image outside is flagged; ``max-logit-2s`` of the detection chapter). The largest logit,
    not the largest softmax probability: a trained model's probability saturates at 1.000 in float32 on most
    clean images, which leaves the band without an upper threshold and the attacker nothing to stay under."""
    from ..models.train import predict_logits

    top = predict_logits(model, x_clean).max(1)
    return float(np.quantile(top, fpr / 2)), float(np.quantile(top, 1 - fpr / 2))


def _evasion(model, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, band: tuple[float, float]) -> tuple[int, int]:
    """(fooled and inside the band, correctly classified): the images that beat both model and detector."""
    from ..models.train import predict_logits

    clean, adv = predict_logits(model, x).argmax(1), predict_logits(model, x_adv)
    correct = clean == y
    unflagged = (adv.max(1) >= band[0]) & (adv.max(1) <= band[1])
    return int(np.sum(correct & (adv.argmax(1) != y) & unflagged)), int(correct.sum())


def check_adaptive(my_attack, model, x_ref: np.ndarray, x: np.ndarray, y: np.ndarray, eps: float) -> str:
    """An attack that must fool the model *and* pass the two-sided confidence detector (band fitted on the clean
    images ``x_ref``, two finite thresholds with the clean images above the upper one: checked), against the
    library's PGD (40 steps) at the same ε: the share of correctly classified images that end fooled and
    unflagged, with Wilson intervals; ‖δ‖∞ ≤ ε is checked."""
    from .. import attacks
    from ..models.train import predict_logits

    band = confidence_band(model, x_ref)
    above = float(np.mean(predict_logits(model, x_ref).max(1) > band[1]))
    if not (np.all(np.isfinite(band)) and band[0] < band[1] and above > 0):
        return f"the detector's band {band} is degenerate: it needs a lower and an upper threshold"
    mine = my_attack(model, x, y, eps, band)
    if (missing := _not_done(mine, "my_adaptive_pgd")) is not None:
        return missing
    mine = np.asarray(mine, np.float32)
    if np.abs(mine - x).max() > eps + 1e-5:
        return f"out of budget: ‖δ‖∞ = {np.abs(mine - x).max():.4f} > ε = {eps}"
    plain, _ = attacks.generate(model, x, y, "pgd", eps, {"max_iter": 40})
    (k_m, n), (k_p, _) = _evasion(model, x, y, mine, band), _evasion(model, x, y, plain, band)
    from ..measure.metrics import wilson_ci

    apart = wilson_ci(k_m, n)[0] > wilson_ci(k_p, n)[1]
    verdict = "evades the detector better than plain PGD" if apart else "not better than plain PGD yet"
    labfigures.evasion({name: (k / n, *wilson_ci(k, n)) for name, k in (("plain PGD", k_p), ("yours", k_m))}, n)
    return (f"{verdict}: fooled and unflagged {_wilson(k_m, n)} against plain PGD's {_wilson(k_p, n)} (n = {n} "
            f"correctly classified; the detector accepts a largest logit in [{band[0]:.2f}, {band[1]:.2f}], "
            f"{above:.1%} of clean images above it)")


def corner_map(size: int, width: float = 0.15) -> np.ndarray:
    """A target saliency map far from any lesion or lung: a Gaussian blob in the top-left corner, in [0, 1]."""
    r = np.arange(size) / size
    return np.exp(-((r[:, None] - 0.1) ** 2 + (r[None, :] - 0.1) ** 2) / (2 * width ** 2))


def check_manipulation(my_manipulate, model, x: np.ndarray, eps: float, seed: int = 0) -> str:
    """An explanation-manipulation attack (Dombrowski et al. 2019): keep each image's label, move its Grad-CAM map
    towards :func:`corner_map`. Reported: the labels kept, the top-10 % IoU of the map with the target before,
    after, and after uniform noise of the same ε (so a change is not the noise), with bootstrap intervals."""
    from .. import explain
    from ..measure.metrics import bootstrap_ci, iou
    from ..models.train import predict_logits

    target = corner_map(x.shape[1])
    mine = my_manipulate(model, x, target, eps)
    if (missing := _not_done(mine, "my_manipulate")) is not None:
        return missing
    mine = np.asarray(mine, np.float32)
    if np.abs(mine - x).max() > eps + 1e-5:
        return f"out of budget: ‖δ‖∞ = {np.abs(mine - x).max():.4f} > ε = {eps}"
    noise = np.clip(x + np.random.default_rng(seed).uniform(-eps, eps, x.shape), 0, 1).astype(np.float32)
    pred = predict_logits(model, x).argmax(1)
    kept = int(np.sum(predict_logits(model, mine).argmax(1) == pred))
    scores = {}
    for name, v in [("clean", x), ("noise", noise), ("yours", mine)]:  # maps of the clean prediction
        maps = explain.explain("gradcam", model, v, pred, progress=False)
        scores[name] = np.array([iou(m, target) for m in maps])
    lo, hi = bootstrap_ci(scores["yours"])
    moved = lo > bootstrap_ci(scores["noise"])[1] and kept >= 0.9 * len(x)
    shown = ", ".join(f"{k} {v.mean():.2f}" for k, v in scores.items())
    return (("manipulated" if moved else "not manipulated yet") + f": labels kept on {kept} of {len(x)}; top-10 % "
            f"IoU with the target map {shown} (yours [{lo:.2f}, {hi:.2f}])")


def input_gradient(model, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """|∂ logit_c / ∂ x|, the largest over channels (Simonyan et al. 2014): the simplest gradient map."""
    import tensorflow as tf

    xt = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = tf.gather(model(xt, training=False), np.asarray(targets), axis=1, batch_dims=1)
    return np.abs(tape.gradient(score, xt).numpy()).max(-1)


def check_randomisation(my_randomize, model, x: np.ndarray, layers: list[str], seed: int = 0) -> str:
    """The model-randomisation sanity check (Adebayo et al. 2018), cascading from the logits down: after each step
    the Spearman correlation of every image's Grad-CAM and input-gradient map with the trained model's, mean and
    95 % bootstrap interval. A map that does not decorrelate does not depend on what the model learned. The
    student's ``my_randomize(model, names, seed)`` must re-draw exactly the named layers."""
    from .. import explain
    from ..measure.metrics import bootstrap_ci, spearman

    first = my_randomize(model, layers[:1], seed)
    if (missing := _not_done(first, "my_randomize")) is not None:
        return missing
    changed = [la.name for la, lb in zip(model.layers, first.layers, strict=True)
               if any(not np.allclose(a, b) for a, b in zip(la.get_weights(), lb.get_weights(), strict=True))]
    if changed != layers[:1]:
        return f"my_randomize re-drew {changed}, expected exactly {layers[:1]}"
    from ..models.train import predict_logits

    pred = predict_logits(model, x).argmax(1)  # every model explains the trained model's prediction
    maps = {"gradcam": lambda net: explain.explain("gradcam", net, x, pred, progress=False),
            "input gradient": lambda net: input_gradient(net, x, pred)}
    lines = []
    base = {m: fn(model) for m, fn in maps.items()}
    curve: dict[str, list] = {m: [] for m in maps}
    for k in range(1, len(layers) + 1):
        rnd = my_randomize(model, layers[:k], seed)
        cells = []
        for m, ref in base.items():
            rho = np.array([spearman(a, b) for a, b in zip(ref, maps[m](rnd), strict=True)])
            blank = int(np.isnan(rho).sum())  # a constant map ranks nothing: left out, and counted
            lo, hi = bootstrap_ci(rho[~np.isnan(rho)])
            curve[m].append((float(np.nanmean(rho)), lo, hi))
            cells.append(f"{m} {np.nanmean(rho):.2f} [{lo:.2f}, {hi:.2f}]" + (f" ({blank} blank)" if blank else ""))
        lines.append(f"randomised down to {layers[k - 1]}: Spearman with the trained model's map: " + ", ".join(cells))
    labfigures.cascade(list(layers), curve)
    return "\n".join(lines)


# The timing rule of the lab's plan: reading an exercise and its stub, then writing and debugging at five minutes
# per five lines of the solution (blank and comment lines not counted); the cells' own run time is measured
# (bench/lab.py) and added once. Part D is an optional extension.
READING_MIN = 3
MIN_PER_LINE = 1
OPTIONAL_PARTS = {"D"}
SETUP_MIN = 5


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def timing(nb: dict) -> list[dict]:
    """Per exercise of a course notebook: its part, the solution's lines, the minutes the rule gives, core or not."""
    rows, part = [], None
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            if m := re.search(r"^## Part ([A-Z])\b", text, re.M):
                part = m.group(1)
            if m := re.search(r"^## Exercise (\w+)\b", text, re.M):
                rows.append({"exercise": m.group(1), "part": part, "lines": 0})
        elif "solution" in _tags(cell) and rows:
            rows[-1]["lines"] += sum(1 for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
    for r in rows:
        r["minutes"] = READING_MIN + MIN_PER_LINE * r["lines"]
        r["core"] = r["part"] not in OPTIONAL_PARTS
    return rows


def timing_table(rows: list[dict]) -> str:
    """The plan's table (Markdown), as the lab's first cell shows it."""
    lines = ["| part | exercise | lines to write | minutes | in the 90 min |", "|---|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['exercise']} | {r['lines']} | {r['minutes']} | "
              + ("core |" if r["core"] else "optional |") for r in rows]
    core = sum(r["minutes"] for r in rows if r["core"])
    return "\n".join(lines) + f"\n\nCore exercises: {core} min of reading and writing, + {SETUP_MIN} min of set-up."


def _copy_notebooks(src: Path, dest: Path, keep) -> list[Path]:
    """Every notebook of ``src`` into ``dest``: the cells ``keep(cell)`` accepts (it may edit them), outputs cleared."""
    src, dest = Path(src), Path(dest)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise DataError(f"no notebooks in {src}; point at the course folder (book/course)")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        nb["cells"] = [c for c in nb["cells"] if keep(c)]
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        target = dest / nb_path.name
        with atomic_path(target) as tmp:
            Path(tmp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        out.append(target)
    return out


def student_copy(src: Path, dest: Path) -> list[Path]:
    """Copy every notebook of ``src`` into ``dest`` without its ``solution`` and ``answer`` cells, outputs cleared."""
    return _copy_notebooks(src, dest, lambda c: not {"solution", "answer"} & set(_tags(c)))


def teacher_copy(src: Path, dest: Path) -> list[Path]:
    """Every notebook of ``src`` with its solutions shown and its answer key, plus ``answer-key.md`` (the
    discussion answers and the rubric, for printing)."""
    keys = []

    def show(cell: dict) -> bool:
        tags = _tags(cell)
        if "answer" in tags:
            keys.append("".join(cell["source"]))
        if tags:
            cell["metadata"]["tags"] = [t for t in tags if t not in ("hide-cell", "remove-cell")]
        return True

    out = _copy_notebooks(src, dest, show)
    target = Path(dest) / "answer-key.md"
    with atomic_path(target) as tmp:
        Path(tmp).write_text("# Answer key and rubric\n\n" + "\n\n".join(keys) + "\n")
    return [*out, target]
