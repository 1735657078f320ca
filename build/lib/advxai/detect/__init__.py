"""Detection layer: can a detector that sees one input tell a clean image from an adversarial one?

``protocol``: folds over images, the seen / held-out / transfer settings, AUROC and TPR at fixed FPR with a pair
bootstrap (its names are this package's API: ``detect.cross_validate``, ``detect.records``); ``detectors``: the
detector registry; ``views``: what each detector reads (outputs, activations, maps); ``fits``: the models a
detector fits on those views; ``differentiable``: detectors' scores as TensorFlow functions of the image;
``adaptive``: the end-to-end attack on a detector.

May import: the core, ``advxai.data``, ``advxai.models``, ``advxai.attacks``, ``advxai.explain``,
``advxai.measure``; never ``advxai.studies``, ``advxai.book`` or ``advxai.runner``."""

from __future__ import annotations

from .protocol import (
    CLEAN_ONLY_FITS,
    FPRS,
    Cell,
    cross_validate,
    folds,
    pair_bootstrap,
    records,
    scores,
    sources,
    successes,
    timed_features,
    tpr_at_fpr,
)

__all__ = [
    "FPRS", "CLEAN_ONLY_FITS", "Cell", "folds", "successes", "sources", "cross_validate", "tpr_at_fpr",
    "pair_bootstrap", "scores", "records", "timed_features",
]
