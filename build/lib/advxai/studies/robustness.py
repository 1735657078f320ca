"""The robustness study, one function per step of notebook 09: accuracy under attack against ε in RobustBench's
style (Croce et al. 2021) — AutoAttack's standard ensemble without FAB-T and PGD-50 with restarts — on a
class-balanced test sample, and how well the input gradient lines up with the image (Etmann et al. 2019), for
standard and adversarially trained models alike; and what the attacks do to the Grad-CAM map a user would see."""

from __future__ import annotations

import numpy as np

from ..attacks.autoattack import robust_generate
from ..explain.gradients import input_gradient
from ..measure import tables
from ..models import train


def robust_rows(net, x, y, attack_params: dict[str, dict], eps: list[float], seed: int, base: dict,
                log=print) -> tuple[list[dict], dict, dict]:
    """Clean accuracy, then the accuracy under each attack at each ε (a share with its Wilson interval; an image
    counts as robust when it is classified correctly after the attack), and each attack's seconds. Returns the rows,
    {(attack, ε): per-image robust flags} and {(attack, ε): adversarial images}. AutoAttack's members and PGD with
    restarts run compiled (:mod:`advxai.attacks.autoattack`; ART's are the references its tests hold them to).

    The ε run ascending and nested: a correctly classified image fooled at one ε keeps that adversarial at every
    larger ε (it lies inside the larger ball too) and only the others are attacked again, so robust accuracy never
    rises with ε and each ε's run is at least as strong as a separate one; ``seconds`` and its ``n`` count the
    images attacked at that ε."""
    ok = train.predict_logits(net, x).argmax(1) == y
    rows = [tables.proportion_row("clean_accuracy", ok, subset="attacked", **base)]
    robust, advs = {}, {}
    for name, params in attack_params.items():
        x_adv, broken = x.copy(), np.zeros(len(x), bool)  # broken: correct before, fooled at a smaller ε
        for e in sorted(eps):
            idx, secs = np.flatnonzero(~broken), 0.0
            if len(idx):  # every image fooled at a smaller ε: nothing left to attack
                x_adv[idx], secs = robust_generate(net, x[idx], y[idx], name, e, params, seed=seed)
            robust[name, e] = (train.predict_logits(net, x_adv).argmax(1) == y) & ok  # wrong before: not robust
            broken = ok & ~robust[name, e]
            advs[name, e] = x_adv.copy()
            keys = dict(base, attack=name, eps=float(e), subset="attacked")
            rows += [tables.proportion_row("robust_accuracy", robust[name, e], **keys),
                     tables.row("seconds", secs, n=len(idx), **keys)]
            log(f"{name} ε = {e:.4f}: robust accuracy {robust[name, e].mean():.3f} "
                f"({len(idx)} attacked, {secs:.0f} s)")
    return rows, robust, advs


def shift_rows(net, x, y, advs: dict, n_boot: int, seed: int, base: dict, target: str = "predicted") -> list[dict]:
    """Grad-CAM's shift under each attack and ε (:func:`advxai.measure.evaluation.shift_rows`: IoU, SSIM, Spearman,
    top-k intersection of the clean and the attacked map, split fooled / not fooled), each map explaining its own
    image's prediction by default (``target``, :data:`advxai.explain.base.TARGETS`): the map a user would see."""
    from ..explain.base import TARGETS
    from ..explain.cams import gradcam
    from ..measure import evaluation as E

    pred = train.predict_logits(net, x).argmax(1)
    rows = []
    for (name, e), xa in advs.items():
        pred_a = train.predict_logits(net, xa).argmax(1)
        t_clean, t_adv = TARGETS[target](y, pred, pred_a)
        maps = gradcam(net, x, t_clean, progress=False), gradcam(net, xa, t_adv, progress=False)
        rows += E.shift_rows(*maps, E.split_masks(y, pred, pred_a), n_boot=n_boot, seed=seed,
                             **dict(base, attack=name, eps=float(e), explainer="gradcam", target=target))
    return rows


def alignment(grads: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Etmann et al. 2019's alignment of the saliency map with the image, per image: |⟨g, x⟩| / (‖g‖ ‖x‖), the
    absolute cosine between the input gradient and the image (0: orthogonal; robust models are reported higher)."""
    g, v = grads.reshape(len(grads), -1).astype(np.float64), x.reshape(len(x), -1).astype(np.float64)
    den = np.linalg.norm(g, axis=1) * np.linalg.norm(v, axis=1)
    return np.abs(np.sum(g * v, axis=1)) / np.where(den > 0, den, np.inf)


def alignment_rows(net, x, y, n_boot: int, seed: int, base: dict) -> tuple[list[dict], np.ndarray]:
    """The mean alignment over the sample with its bootstrap interval; returns the rows and the gradients."""
    grads = input_gradient(net, x, y)  # ∇ₓ z_y: the true class's logit (compiled once per model)
    return [tables.mean_row("gradient_alignment", alignment(grads, x), n_boot, seed, subset="attacked", **base)], grads

