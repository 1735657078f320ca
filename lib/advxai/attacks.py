"""Attack registry: name -> ART evasion attack on a logits model, in pixel space with ``clip_values=(0, 1)``.

Each entry declares its defaults (every hyper-parameter, documented) and whether ε bounds its L∞ norm.
DeepFool is *not* ε-bounded: ART's ``epsilon`` is its overshoot (the step past the decision boundary is
(1 + ε) times the linearised distance), so for DeepFool the grid value is recorded as the overshoot and the
achieved L2 / L∞ are what describe the perturbation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

from .errors import ParameterError
from .registry import Registry


@dataclass(frozen=True)
class AttackSpec:
    build: object  # (classifier, eps, **params) -> ART attack
    defaults: dict = field(default_factory=dict)
    eps_bounded: bool = True  # does ε bound ||δ||∞ ?
    eps_meaning: str = "L∞ budget"
    overshoot_only: bool = False  # ε only rescales the final step (DeepFool): one run serves every ε


ATTACKS: Registry[AttackSpec] = Registry("attack")


def classifier(model: keras.Model, batch_size: int = 100):
    """ART TensorFlowV2Classifier over a logits model (from_logits cross-entropy, clip (0, 1))."""
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(
        model=model, nb_classes=int(model.output.shape[-1]), input_shape=tuple(model.input.shape[1:]),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True), clip_values=(0.0, 1.0))


def _fgsm(clf, eps, batch_size=100):
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=batch_size)


def _pgd(clf, eps, max_iter=10, step_ratio=0.25, num_random_init=0, batch_size=100):
    # Madry et al.'s step α = 2.5·ε / iterations is step_ratio 0.25 at 10 iterations. The seed used ART's
    # defaults (eps_step 0.1, 100 iterations), reachable with step_ratio = 0.1/ε, max_iter 100.
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=step_ratio * eps, max_iter=max_iter,
                                    num_random_init=num_random_init, batch_size=batch_size, verbose=False)


def _deepfool(clf, eps, max_iter=100, nb_grads=10, batch_size=100):
    from art.attacks.evasion import DeepFool

    return DeepFool(clf, max_iter=max_iter, epsilon=eps, nb_grads=nb_grads, batch_size=batch_size, verbose=False)


ATTACKS.register("fgsm")(AttackSpec(_fgsm, {"batch_size": 100}))
ATTACKS.register("pgd")(AttackSpec(_pgd, {"max_iter": 10, "step_ratio": 0.25, "num_random_init": 0,
                                         "batch_size": 100}))
ATTACKS.register("deepfool")(AttackSpec(_deepfool, {"max_iter": 50, "nb_grads": 10, "batch_size": 100},
                                        eps_bounded=False, eps_meaning="overshoot", overshoot_only=True))


def check_eps(eps: float) -> float:
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0 or eps > 1:
        raise ParameterError(f"ε must lie in [0, 1] (pixel scale), got {eps}")
    return eps


def params_for(name: str, overrides: dict | None = None) -> dict:
    """The attack's full parameter set: its defaults updated by ``overrides`` (unknown keys are errors)."""
    spec = ATTACKS[name]
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(spec.defaults)
    if unknown:
        raise ParameterError(f"attack {name!r} has no parameter(s) {sorted(unknown)}; known: {sorted(spec.defaults)}")
    return {**spec.defaults, **overrides}


def generate(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps: float,
             params: dict | None = None) -> tuple[np.ndarray, float]:
    """Adversarial images for (x, y) under attack ``name`` at ``eps``; returns (x_adv, seconds).

    Untargeted, using the true labels ``y`` (integers). For ε-bounded attacks ε = 0 returns x unchanged (the
    clean reference); for DeepFool ε = 0 is plain DeepFool without overshoot.
    """
    spec = ATTACKS[name]
    eps = check_eps(eps)
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input.shape[1:]):
        raise ParameterError(f"images must be (N, {', '.join(map(str, model.input.shape[1:]))}), got {x.shape}")
    if x.min() < 0 or x.max() > 1:
        raise ParameterError("images must be scaled to [0, 1] before attacking")
    if eps == 0 and spec.eps_bounded:
        return x.copy(), 0.0
    n_classes = int(model.output.shape[-1])
    clf = classifier(model)
    attack = spec.build(clf, eps, **params_for(name, params))
    t0 = time.perf_counter()
    x_adv = attack.generate(x=x, y=np.eye(n_classes, dtype=np.float32)[np.asarray(y)])
    return np.clip(x_adv.astype(np.float32), 0.0, 1.0), time.perf_counter() - t0


def sweep(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps_grid, params: dict | None = None,
          progress: bool = True) -> dict[float, tuple[np.ndarray, float]]:
    """``generate`` for every ε of a grid: {ε: (x_adv, seconds)}.

    DeepFool's iterations do not depend on ε (ART applies the overshoot once, after its loop:
    x_adv = clip(x + (1 + ε)(x_boundary − x))), so it runs ART once at ε = 0 and applies each overshoot to
    that result; ``tests/test_attacks.py`` checks this equals ART run at each ε. Seconds are then shared.
    """
    from tqdm.auto import tqdm

    grid = [check_eps(e) for e in eps_grid]
    if ATTACKS[name].overshoot_only:
        x = np.asarray(x, np.float32)
        boundary, secs = generate(model, x, y, name, 0.0, params)  # ε = 0: the loop's own endpoint
        return {e: (np.clip(x + (1 + e) * (boundary - x), 0, 1).astype(np.float32), secs) for e in grid}
    return {e: generate(model, x, y, name, e, params) for e in tqdm(grid, desc=name, disable=not progress)}
