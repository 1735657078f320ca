"""An adaptive attack on a detector, end to end (Carlini & Wagner 2017, "Adversarial examples are not easily
detected"; Athalye et al. 2018; Tramèr et al. 2020): white-box PGD on the classifier *and* the real detector,

    maximise  min(CE(f(x'), y), 2) − λ · max(s(x') − t, 0) / σ_s   subject to ‖x' − x‖∞ ≤ ε,

where s is the detector's score as a TensorFlow function of the image (:mod:`advxai.detect.differentiable`: the
fitted detector's own parameters; gradients pass through the explanation where the detector reads one), t its
5 %-FPR threshold on clean images and σ_s the spread of its clean scores (λ in clean-score standard deviations).
The hinge (C&W's form) penalises only the score above the threshold and the cross-entropy is capped once the image
is fooled with margin, so the steps trade the two only while one of them is unmet. Each image keeps its best
iterate (:func:`advxai.attacks.compiled.pgd`). λ is swept and each image keeps the
first λ that evades (λ = 0, plain PGD, among them); the attack is judged by the real detector in NumPy, at its
5 %-FPR threshold on clean images.
"""

from __future__ import annotations

import keras
import numpy as np

from ..attacks import compiled


def attack(model: keras.Model, x: np.ndarray, y: np.ndarray, eps: float, score=None, weight: float = 0.0,
           max_iter: int = 100, seed: int = 0, random_start: bool = False) -> np.ndarray:
    """PGD, ``max_iter`` steps of 2.5·ε/``max_iter`` (Madry et al.), maximising the capped cross-entropy minus
    ``weight`` · ``score`` (``weight`` 0: plain PGD). It starts from the image itself, where the detector's score
    is a clean one (a random start in a large ε-ball lands far from every clean image, and measured on the
    default build, 100 steps did not bring NIC's score back: evasion fell from 1.00 at ε 0.05 to 0.40 at ε 0.3);
    ``random_start`` draws a uniform start in the ball (the sanity check's restart)."""
    return compiled.pgd(model, x, y, eps, max_iter=max_iter, step_ratio=2.5 / max_iter,
                        num_random_init=int(random_start), seed=seed, penalty=score if weight else None,
                        weight=float(weight))


def evade(model, x, y, eps: float, score_tf, score_np, threshold: float, weights, max_iter: int = 100,
          seed: int = 0, random_start: bool = False, plain: dict | None = None) -> tuple[dict, np.ndarray]:
    """Each λ of ``weights`` (0 = plain PGD) at ``eps``: ({λ: (fooled (N,), evaded (N,))}, images) over images
    ``x`` that the model classifies correctly, with the per-image best over every λ (plain PGD included: the
    attacker may choose it) under key ``"best"``; the images are that best's (the first evading λ's image, else
    the first λ's). Evaded = fooled and scored ≤ ``threshold``. ``plain``: a dict shared between calls on the same
    images that keeps plain PGD's images (λ = 0 does not read the detector, so each detector reuses them)."""
    from ..models.train import predict_logits

    out, best_x = {}, None
    best_ok = np.zeros(len(x), bool)
    best_fool = np.zeros(len(x), bool)
    for w in weights:
        key = (float(eps), max_iter, seed, random_start)
        if w == 0 and plain is not None and key in plain:
            xa = plain[key]
        else:
            xa = attack(model, x, y, eps, score_tf, w, max_iter, seed, random_start)
            if w == 0 and plain is not None:
                plain[key] = xa
        fooled = predict_logits(model, xa).argmax(1) != np.asarray(y)
        evaded = fooled & (score_np(xa) <= threshold)
        out[float(w)] = (fooled, evaded)
        take = evaded & ~best_ok | (best_x is None)
        best_x = xa.copy() if best_x is None else np.where(take[:, None, None, None], xa, best_x)
        best_fool = np.where(take, fooled, best_fool)
        best_ok |= evaded
    out["best"] = (best_fool, best_ok)
    return out, best_x
