"""Attack layer: how adversarial images are made.

``evasion``: the registry of ART evasion attacks (FGSM, BIM, PGD, DeepFool, C&W-L2, UAP, Square, APGD+Square, and
AutoAttack's standard ensemble without FAB-T, run member by member as AutoAttack runs it), in pixel
space on logits models, ε checked and projected; its names are this package's API (``attacks.generate``,
``attacks.sweep``). ``compiled``: the same attacks as compiled TensorFlow functions, tested equal to ART's.
``autoattack``: AutoAttack's members (APGD-CE, APGD-T with the DLR loss, Square) and PGD with restarts as compiled
ports of the published algorithms, the robustness stage's attacks (``robust_generate``), tested against ART's.

May import: ``advxai.errors``, ``advxai.registry``, ``advxai.data``, ``advxai.models``."""

from __future__ import annotations

from .evasion import (
    ATTACKS,
    FAMILIES,
    IMAGENET_STD,
    RENAMED,
    SIGMA_ATTACKS,
    UNITS,
    AttackSpec,
    BudgetError,
    check_budget,
    check_eps,
    check_units,
    classifier,
    eps_in_pixels,
    fit_images,
    generate,
    params_for,
    project_linf,
    spec,
    sweep,
)

__all__ = [
    "AttackSpec", "ATTACKS", "FAMILIES", "classifier", "IMAGENET_STD", "UNITS", "SIGMA_ATTACKS", "eps_in_pixels",
    "check_units", "RENAMED", "check_eps", "spec", "params_for", "BudgetError", "project_linf", "check_budget",
    "generate", "sweep", "fit_images",
]
