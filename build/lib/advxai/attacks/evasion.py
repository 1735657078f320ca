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

from ..errors import ParameterError
from ..registry import Registry, check_params


@dataclass(frozen=True)
class AttackSpec:
    build: object  # (classifier, eps, **params) -> ART attack
    defaults: dict = field(default_factory=dict)
    eps_bounded: bool = True  # does ε bound ||δ||∞ ?
    eps_meaning: str = "L∞ budget"
    overshoot_only: bool = False  # ε only rescales the final step (DeepFool): one run serves every ε
    eps_free: bool = False  # ε plays no part (C&W-L2 minimises ‖δ‖₂): one run serves every ε
    stochastic: bool = False  # draws random numbers (random start, random search): seeded from the run's seed
    fits_perturbation: bool = False  # fits one perturbation (UAP) on other images than those it is scored on
    family: str = "L∞ gradient"  # what kind of attack it is (:data:`FAMILIES`): "unseen" in detection means unseen kind


# Attack families (the detection stage's leave-one-family-out): attacks of one family share how they search, so a
# detector fitted on one has in effect seen the others. FGSM, BIM and PGD are all L∞ sign-gradient steps.
FAMILIES = ("L∞ gradient", "minimal perturbation", "L2 optimisation", "query-based", "universal", "ensemble")


ATTACKS: Registry[AttackSpec] = Registry("attack")


def classifier(model: keras.Model, clip: bool = True):
    """ART TensorFlowV2Classifier over a logits model (from_logits cross-entropy, clip (0, 1) unless ``clip``
    is false: the σ-units faithful mode, where the seed attacked unclipped normalised tensors)."""
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(
        model=model, nb_classes=int(model.output.shape[-1]), input_shape=tuple(model.input.shape[1:]),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True), clip_values=(0.0, 1.0) if clip else None)


# ε units. ``pixel`` (default): ε bounds ‖δ‖∞ on [0, 1] pixels, results clipped to [0, 1]. ``sigma`` (faithful to
# the RADAR-MIX code, which attacked ImageNet-normalised tensors without clipping): ε is in units of the ImageNet
# s.d., i.e. ε·σ in pixel units, and nothing is clipped to [0, 1]. One σ for all channels, their mean (0.226; the
# three differ by under 2 %), because ART's random start takes a scalar L∞ radius.
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
UNITS = ("pixel", "sigma")
SIGMA_ATTACKS = ("fgsm", "bim", "pgd")  # the seed's ε-bounded gradient attacks; the others are ε-free or fitted


def eps_in_pixels(eps: float, units: str = "pixel") -> float:
    """ε as the attack sees it on [0, 1] pixels: the number itself, or ε·σ̄ (σ̄ the mean ImageNet s.d.)."""
    if units not in UNITS:
        raise ParameterError(f"unknown ε units {units!r}; known: {', '.join(UNITS)}")
    return float(eps) if units == "pixel" else float(eps * IMAGENET_STD.mean())


def check_units(name: str, units: str) -> None:
    if units not in UNITS:
        raise ParameterError(f"unknown ε units {units!r}; known: {', '.join(UNITS)}")
    if units == "sigma" and name not in SIGMA_ATTACKS:
        raise ParameterError(f"ε in σ units (faithful) applies to {', '.join(SIGMA_ATTACKS)}, not {name!r}; "
                             "drop it from the grid or use eps_units: pixel")


# Builders take every hyper-parameter explicitly; the defaults live once, in the registry entries below.


def _fgsm(clf, eps, batch_size):
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=batch_size)


def _step(eps, step_ratio, eps_step):
    """Step size: ``eps_step`` (pixel units) when given, else ``step_ratio`` · ε (one setting serves a grid)."""
    return float(eps_step) if eps_step is not None else step_ratio * eps


def _pgd(clf, eps, max_iter, step_ratio, eps_step, num_random_init, batch_size):
    # Madry et al.: a uniform random start in the ε-ball, then steps α = 2.5·ε / iterations (step_ratio 0.25 at
    # 10 iterations). The seed used ART's defaults (eps_step 0.1, 100 iterations, no random start): step_ratio
    # 0.1/ε or eps_step 0.1, max_iter 100, num_random_init 0.
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=_step(eps, step_ratio, eps_step),
                                    max_iter=max_iter, num_random_init=num_random_init, batch_size=batch_size,
                                    verbose=False)


def _deepfool(clf, eps, max_iter, nb_grads, batch_size):
    from art.attacks.evasion import DeepFool

    return DeepFool(clf, max_iter=max_iter, epsilon=eps, nb_grads=nb_grads, batch_size=batch_size, verbose=False)


def _bim(clf, eps, max_iter, step_ratio, eps_step, batch_size):
    # Kurakin et al.: iterative FGSM from the clean image (no random start) — PGD's no-start variant.
    from art.attacks.evasion import BasicIterativeMethod

    return BasicIterativeMethod(clf, eps=eps, eps_step=_step(eps, step_ratio, eps_step), max_iter=max_iter,
                                batch_size=batch_size, verbose=False)


def _cw(clf, eps, confidence, learning_rate, binary_search_steps, max_iter, initial_const, batch_size):
    # C&W-L2 minimises ‖δ‖₂ + c·margin: no ε. Needs logits (DESIGN.md: on softmax outputs it changed nothing).
    from art.attacks.evasion import CarliniL2Method

    return CarliniL2Method(clf, confidence=confidence, learning_rate=learning_rate,
                           binary_search_steps=binary_search_steps, max_iter=max_iter, initial_const=initial_const,
                           batch_size=batch_size, verbose=False)


def _uap(clf, eps, attacker, attacker_eps_ratio, delta, max_iter, batch_size):
    # One perturbation for all images, ‖v‖∞ ≤ ε, fitted on other images than those it is scored on (see
    # ``generate``). The default DeepFool inner attacker took 759 s for 100 images on a small CNN (DESIGN.md);
    # FGSM steps of attacker_eps_ratio·ε build v in seconds.
    from art.attacks.evasion import UniversalPerturbation

    return UniversalPerturbation(clf, attacker=attacker, attacker_params={"eps": attacker_eps_ratio * eps},
                                 delta=delta, max_iter=max_iter, eps=eps, norm=np.inf, batch_size=batch_size,
                                 verbose=False)


def _square(clf, eps, max_iter, p_init, nb_restarts, batch_size):
    # Andriushchenko et al. 2020: random search with square-shaped updates, L∞. It reads only the model's outputs
    # (no gradient): the query-based family. ``max_iter`` counts queries per image (AutoAttack runs 5,000).
    from art.attacks.evasion import SquareAttack

    return SquareAttack(clf, norm=np.inf, eps=eps, max_iter=max_iter, p_init=p_init, nb_restarts=nb_restarts,
                        batch_size=batch_size, verbose=False)


def _apgd_square(clf, eps, apgd_iter, square_iter, batch_size):
    # NOT AutoAttack (Croce & Hein 2020 run APGD-CE, APGD-T, FAB-T and Square with 5000 queries; ART has no FAB):
    # APGD-CE (+ APGD-DLR for ≥ 3 classes: its loss needs a third logit) and Square at reduced budgets, the
    # per-image worst case (ART keeps, per image, the first member that succeeds).
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack

    def apgd(loss):
        return AutoProjectedGradientDescent(clf, eps=eps, eps_step=eps / 4, max_iter=apgd_iter, nb_random_init=1,
                                            batch_size=batch_size, loss_type=loss, verbose=False)

    members = [apgd("cross_entropy")] + ([apgd("difference_logits_ratio")] if clf.nb_classes >= 3 else [])
    members.append(SquareAttack(clf, eps=eps, max_iter=square_iter, batch_size=batch_size, verbose=False))
    return AutoAttack(clf, eps=eps, eps_step=eps / 4, attacks=members, batch_size=batch_size)


class FirstSuccess:
    """An ensemble run the way AutoAttack runs one (Croce & Hein 2020): each member attacks only the images no
    earlier member has fooled, and each image keeps the first adversarial that fools it (else the last attempt).
    A member with ``targets`` k > 0 is run targeted at each image's k most likely other classes in turn (APGD-T)."""

    def __init__(self, clf, members: list[tuple[str, object, int]]):
        self.clf, self.members = clf, members
        self.first = None  # per image: the name of the member that fooled it first ("" where none did)

    def generate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        labels, k = y.argmax(1), y.shape[1]
        logits = self.clf.predict(x)
        robust = logits.argmax(1) == labels
        ranked = np.argsort(-np.where(np.eye(k, dtype=bool)[labels], -np.inf, logits), axis=1)  # other classes
        x_adv, self.first = x.copy(), np.full(len(x), "", dtype=object)
        for name, attack, targets in self.members:
            for t in range(targets) if targets else [None]:
                idx = np.flatnonzero(robust)
                if not len(idx):
                    return x_adv
                goal = y[idx] if t is None else np.eye(k, dtype=np.float32)[ranked[idx, t]]
                trial = attack.generate(x=x[idx], y=goal)
                fooled = self.clf.predict(trial).argmax(1) != labels[idx]
                x_adv[idx[fooled]] = trial[fooled]
                x_adv[idx[~fooled]] = trial[~fooled]  # the latest attempt where every member so far failed
                self.first[idx[fooled]] = name
                robust[idx[fooled]] = False
        return x_adv


def _autoattack_nofab(clf, eps, apgd_iter, n_targets, square_iter, p_init, batch_size):
    # AutoAttack's standard ensemble at its published budgets, less FAB-T (ART has none): APGD-CE (100 iterations,
    # first step 2ε), APGD-T (ART's DLR loss, targeted at each of the 9 most likely other classes; DLR needs a third
    # logit, so binary tasks skip it) and Square (5,000 queries, p_init 0.8). ART's own AutoAttack class would also
    # run every member untargeted and targeted: more than the standard ensemble, and slower.
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    def apgd(loss, targeted):
        return AutoProjectedGradientDescent(clf, eps=eps, eps_step=2 * eps, max_iter=apgd_iter, targeted=targeted,
                                            nb_random_init=1, batch_size=batch_size, loss_type=loss, verbose=False)

    members = [("apgd-ce", apgd("cross_entropy", False), 0)]
    if clf.nb_classes >= 3:
        members.append(("apgd-t", apgd("difference_logits_ratio", True), min(n_targets, clf.nb_classes - 1)))
    members.append(("square", SquareAttack(clf, eps=eps, max_iter=square_iter, p_init=p_init, nb_restarts=1,
                                           batch_size=batch_size, verbose=False), 0))
    return FirstSuccess(clf, members)


ATTACKS.register("fgsm")(AttackSpec(_fgsm, {"batch_size": 100}))
ATTACKS.register("pgd")(AttackSpec(_pgd, {"max_iter": 10, "step_ratio": 0.25, "eps_step": None, "num_random_init": 1,
                                         "batch_size": 100}, stochastic=True))
ATTACKS.register("deepfool")(AttackSpec(_deepfool, {"max_iter": 50, "nb_grads": 10, "batch_size": 100},
                                        eps_bounded=False, eps_meaning="overshoot", overshoot_only=True,
                                        family="minimal perturbation"))
ATTACKS.register("bim")(AttackSpec(_bim, {"max_iter": 10, "step_ratio": 0.1, "eps_step": None, "batch_size": 100}))
# C&W defaults measured on the default ISIC 28 px model, 60 images (fooling rate over correctly classified images,
# seconds): ART's lr 0.01 with c = 0.01 barely moves; lr 0.1, c = 1: 1 step × 10 it 0.75 (24 s), 2 × 10 0.92 (42 s),
# 4 × 20 1.00 (189 s). The CPU default takes 2 × 10; the paper config more.
_CW = AttackSpec(_cw, {"confidence": 0.0, "learning_rate": 0.1, "binary_search_steps": 2, "max_iter": 10,
                       "initial_const": 1.0, "batch_size": 100},
                 eps_bounded=False, eps_meaning="unused (minimal L2)", eps_free=True, family="L2 optimisation")
ATTACKS.register("cw")(_CW)  # run by the compiled port of ART's algorithm (COMPILED_PORTS)
ATTACKS.register("cw-art")(_CW)  # ART's CarliniL2Method itself: the reference the port is tested against
ATTACKS.register("uap")(AttackSpec(_uap, {"attacker": "fgsm", "attacker_eps_ratio": 0.5, "delta": 0.2,
                                          "max_iter": 10, "batch_size": 100}, stochastic=True, fits_perturbation=True,
                                          family="universal"))
# Square's defaults: 1,000 queries (a fifth of AutoAttack's 5,000: on the 28 px CNNs almost every image it will
# ever fool falls within them, measured in tests/test_attacks.py), ART's p_init 0.8, one restart.
ATTACKS.register("square")(AttackSpec(_square, {"max_iter": 1000, "p_init": 0.8, "nb_restarts": 1,
                                                "batch_size": 128}, stochastic=True, family="query-based"))
ATTACKS.register("apgd-square")(AttackSpec(_apgd_square, {"apgd_iter": 50, "square_iter": 200, "batch_size": 100},
                                           stochastic=True, family="ensemble"))
# Attacks run by a compiled port of ART's own algorithm (advxai.attacks.compiled), tested against ART's (the
# `-art` entry): same parameters, same result up to float rounding, several times faster.
COMPILED_PORTS = ("cw",)
ATTACKS.register("autoattack-nofab")(AttackSpec(_autoattack_nofab, {"apgd_iter": 100, "n_targets": 9,
                                                                     "square_iter": 5000, "p_init": 0.8,
                                                                     "batch_size": 500},
                                                stochastic=True, family="ensemble"))
RENAMED = {"autoattack": "autoattack-nofab (the standard ensemble at its published budgets without FAB-T, which ART "
                         "lacks) or apgd-square (APGD-CE[+DLR] + Square at reduced budgets); neither is the standard "
                         "AutoAttack ensemble"}


def check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise ParameterError(f"ε must be a number in [0, 1] (pixel scale), got {eps!r}; write it as a decimal, "
                             "e.g. 0.05")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0 or eps > 1:
        raise ParameterError(f"ε must lie in [0, 1] (pixel scale), got {eps}")
    return eps


def spec(name: str) -> AttackSpec:
    """The registry entry; a renamed attack fails with its new name and why."""
    if str(name).lower() in RENAMED:
        raise ParameterError(f"attack {name!r} is now {RENAMED[str(name).lower()]}; rename it in the config")
    return ATTACKS[name]


def params_for(name: str, overrides: dict | None = None) -> dict:
    """The attack's full parameter set: its defaults updated by ``overrides`` (unknown keys are errors)."""
    entry = spec(name)
    overrides = dict(overrides or {})
    check_params(f"attack {name!r}", overrides, entry.defaults)
    return {**entry.defaults, **overrides}


class BudgetError(ParameterError):
    """An ε-bounded attack returned a perturbation beyond its budget: the run fails rather than report it."""


def project_linf(x: np.ndarray, x_adv: np.ndarray, eps, clip: bool = True) -> np.ndarray:
    """x_adv clipped to [0, 1] (unless ``clip`` is false) and to the L∞ ball of radius ε (a number or a
    per-channel array) around x, exactly in float32: where rounding to float32 lands a pixel one ulp outside
    the ball, it is moved one ulp back towards x."""
    x64 = np.asarray(x, np.float64)
    eps = np.broadcast_to(np.asarray(eps, np.float64), x64.shape)
    out = np.clip(np.asarray(x_adv, np.float64), x64 - eps, x64 + eps)
    out = (np.clip(out, 0.0, 1.0) if clip else out).astype(np.float32)
    over = np.abs(out.astype(np.float64) - x64) > eps
    out[over] = np.nextafter(out[over], np.asarray(x, np.float32)[over])
    return out


def check_budget(x: np.ndarray, x_adv: np.ndarray, eps, name: str) -> float:
    """max ‖δ‖∞ over the images, asserted ≤ ε (1 + 1e-6) for an ε-bounded attack (ε per channel if an array)."""
    d = np.abs(np.asarray(x_adv, np.float64) - np.asarray(x, np.float64))
    bound = np.broadcast_to(np.asarray(eps, np.float64), d.shape) * (1 + 1e-6)
    if np.any(d > bound):
        raise BudgetError(f"{name} at ε = {np.max(eps):g} returned max ‖δ‖∞ = {d.max():.6g} > ε; report this as a bug")
    return float(d.max()) if d.size else 0.0


def generate(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps: float, params: dict | None = None,
             seed: int = 0, fit: tuple[np.ndarray, np.ndarray] | None = None,
             units: str = "pixel") -> tuple[np.ndarray, float]:
    """Adversarial images for (x, y) under attack ``name`` at ``eps``; returns (x_adv, seconds).

    Untargeted, using the true labels ``y`` (integers). For ε-bounded attacks ε = 0 returns x unchanged (the
    clean reference); for DeepFool ε = 0 is plain DeepFool without overshoot. Every random draw (PGD's start,
    Square's search, UAP's image order) comes from ``seed``: the same call gives the same bytes. A perturbation
    fitted across images (UAP) is fitted on ``fit`` = (images, labels), never on the images it is scored on.
    ε-bounded results are projected onto the ε-ball exactly and checked (:func:`check_budget`). ``units``:
    ``pixel``, or ``sigma`` (faithful to the RADAR-MIX code: :func:`eps_in_pixels`, nothing clipped).
    """
    entry = spec(name)
    eps = check_eps(eps)
    check_units(name, units)
    x = _check_images(model, x)
    if eps == 0 and entry.eps_bounded:
        return x.copy(), 0.0
    if entry.fits_perturbation and fit is None:
        raise ParameterError(f"attack {name!r} fits one perturbation across images: pass fit=(images, labels) "
                             "from another split than the attacked images")
    n_classes = int(model.output.shape[-1])
    budget = eps_in_pixels(eps, units)
    clip = units == "pixel"
    attack = None if name in COMPILED_PORTS else entry.build(classifier(model, clip), budget,
                                                             **params_for(name, params))
    keras.utils.set_random_seed(int(seed))  # Python, NumPy and TF generators: ART draws from all three
    t0 = time.perf_counter()
    if attack is None:
        from .compiled import FAST

        x_adv = FAST[name](model, x, np.asarray(y), budget, seed=seed, **params_for(name, params))
    elif entry.fits_perturbation:
        x_fit = _check_images(model, fit[0])
        attack.generate(x=x_fit, y=np.eye(n_classes, dtype=np.float32)[np.asarray(fit[1])])
        x_adv = x + np.asarray(attack.noise, np.float32)
    else:
        x_adv = attack.generate(x=x, y=np.eye(n_classes, dtype=np.float32)[np.asarray(y)])
    secs = time.perf_counter() - t0
    if entry.eps_bounded:
        x_adv = project_linf(x, x_adv, budget, clip)
        check_budget(x, x_adv, budget, name)
        return x_adv, secs
    return np.clip(np.asarray(x_adv, np.float32), 0.0, 1.0), secs


def _check_images(model: keras.Model, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input.shape[1:]):
        raise ParameterError(f"images must be (N, {', '.join(map(str, model.input.shape[1:]))}), got {x.shape}")
    if x.min() < 0 or x.max() > 1:
        raise ParameterError("images must be scaled to [0, 1] before attacking")
    return x


def sweep(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps_grid, params: dict | None = None,
          seed: int = 0, fit: tuple[np.ndarray, np.ndarray] | None = None, units: str = "pixel",
          progress: bool = True) -> dict[float, tuple[np.ndarray, float]]:
    """``generate`` for every ε of a grid: {ε: (x_adv, seconds)}.

    DeepFool's iterations do not depend on ε (ART applies the overshoot once, after its loop:
    x_adv = clip(x + (1 + ε)(x_boundary − x))), so it runs ART once at ε = 0 and applies each overshoot to
    that result; ``tests/test_attacks.py`` checks this equals ART run at each ε. Seconds are then shared.
    """
    from tqdm.auto import tqdm

    grid = [check_eps(e) for e in eps_grid]
    kw = {"params": params, "seed": seed, "fit": fit, "units": units}
    if spec(name).eps_free:
        x_adv, secs = generate(model, x, y, name, 1.0, **kw)
        return {e: (x_adv, secs) for e in grid}
    if spec(name).overshoot_only:
        x = np.asarray(x, np.float32)
        boundary, secs = generate(model, x, y, name, 0.0, **kw)  # ε = 0: the loop's own endpoint
        return {e: (np.clip(x + (1 + e) * (boundary - x), 0, 1).astype(np.float32), secs) for e in grid}
    return {e: generate(model, x, y, name, e, **kw) for e in tqdm(grid, desc=name, disable=not progress)}


def fit_images(ds, attacked_split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images to fit a universal perturbation on: a seeded, class-balanced draw of ``n`` images from a split
    other than the attacked one (validation when the test split is attacked, else training)."""
    from ..data import balanced_subset

    other = "val" if attacked_split != "val" else "train"
    x_o, y_o = ds.split(other)
    idx = balanced_subset(y_o, min(n, len(y_o)), seed)
    return x_o[idx], y_o[idx]
