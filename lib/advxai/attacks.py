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
    eps_free: bool = False  # ε plays no part (C&W-L2 minimises ‖δ‖₂): one run serves every ε


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


def _bim(clf, eps, max_iter=10, step_ratio=0.1, batch_size=100):
    # Kurakin et al.: α = 1/255 for ε·255 + 4 steps; here a fixed ratio, i.e. PGD without the random start.
    from art.attacks.evasion import BasicIterativeMethod

    return BasicIterativeMethod(clf, eps=eps, eps_step=step_ratio * eps, max_iter=max_iter, batch_size=batch_size,
                                verbose=False)


def _cw(clf, eps, confidence=0.0, learning_rate=0.01, binary_search_steps=5, max_iter=10, initial_const=0.01,
        batch_size=100):
    # C&W-L2 minimises ‖δ‖₂ + c·margin: no ε. Needs logits (DESIGN.md: on softmax outputs it changed nothing).
    from art.attacks.evasion import CarliniL2Method

    return CarliniL2Method(clf, confidence=confidence, learning_rate=learning_rate,
                           binary_search_steps=binary_search_steps, max_iter=max_iter, initial_const=initial_const,
                           batch_size=batch_size, verbose=False)


def _uap(clf, eps, attacker="fgsm", attacker_eps_ratio=0.5, delta=0.2, max_iter=10, batch_size=100):
    # One perturbation for all images, ‖v‖∞ ≤ ε. The default DeepFool inner attacker took 759 s for 100 images
    # on a small CNN (DESIGN.md); FGSM steps of attacker_eps_ratio·ε build v in seconds.
    from art.attacks.evasion import UniversalPerturbation

    return UniversalPerturbation(clf, attacker=attacker, attacker_params={"eps": attacker_eps_ratio * eps},
                                 delta=delta, max_iter=max_iter, eps=eps, norm=np.inf, batch_size=batch_size,
                                 verbose=False)


def _autoattack(clf, eps, apgd_iter=50, square_iter=200, batch_size=100):
    # The per-image worst case over its members (ART keeps, per image, the first member that succeeds).
    # APGD-DLR needs ≥ 3 classes (its loss uses the third-largest logit): binary tasks run APGD-CE + Square.
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack

    members = [AutoProjectedGradientDescent(clf, eps=eps, eps_step=eps / 4, max_iter=apgd_iter, nb_random_init=1,
                                            batch_size=batch_size, loss_type="cross_entropy", verbose=False)]
    if clf.nb_classes >= 3:
        members.append(AutoProjectedGradientDescent(clf, eps=eps, eps_step=eps / 4, max_iter=apgd_iter,
                                                    nb_random_init=1, batch_size=batch_size,
                                                    loss_type="difference_logits_ratio", verbose=False))
    members.append(SquareAttack(clf, eps=eps, max_iter=square_iter, batch_size=batch_size, verbose=False))
    return AutoAttack(clf, eps=eps, eps_step=eps / 4, attacks=members, batch_size=batch_size)


ATTACKS.register("bim")(AttackSpec(_bim, {"max_iter": 10, "step_ratio": 0.1, "batch_size": 100}))
ATTACKS.register("cw")(AttackSpec(_cw, {"confidence": 0.0, "learning_rate": 0.01, "binary_search_steps": 5,
                                        "max_iter": 10, "initial_const": 0.01, "batch_size": 100},
                                  eps_bounded=False, eps_meaning="unused (minimal L2)", eps_free=True))
ATTACKS.register("uap")(AttackSpec(_uap, {"attacker": "fgsm", "attacker_eps_ratio": 0.5, "delta": 0.2,
                                          "max_iter": 10, "batch_size": 100}))
ATTACKS.register("autoattack")(AttackSpec(_autoattack, {"apgd_iter": 50, "square_iter": 200, "batch_size": 100}))


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
    if ATTACKS[name].eps_free:
        x_adv, secs = generate(model, x, y, name, 1.0, params)
        return {e: (x_adv, secs) for e in grid}
    if ATTACKS[name].overshoot_only:
        x = np.asarray(x, np.float32)
        boundary, secs = generate(model, x, y, name, 0.0, params)  # ε = 0: the loop's own endpoint
        return {e: (np.clip(x + (1 + e) * (boundary - x), 0, 1).astype(np.float32), secs) for e in grid}
    return {e: generate(model, x, y, name, e, params) for e in tqdm(grid, desc=name, disable=not progress)}
