"""Which images a number is over. Every row of the result table names its ``subset``:

* ``test`` — the whole official test split (clean performance of a trained model);
* ``val`` — the patient/lesion-grouped validation split (held out when training keeps every epoch);
* ``attacked`` — the attacked sample, every image of it (the seeds' denominators);
* ``correct`` — the attacked images the clean model classifies correctly;
* ``fooled`` / ``not_fooled`` — of ``correct``, those whose prediction the attack changes / does not change.

Fooling rate is over ``correct`` (the standard definition); the seed's all-images share is ``flip_rate`` over
``attacked``. Explanation shift is split by ``fooled`` / ``not_fooled`` so that it does not re-measure the
fooling rate: on a fooled image the attacked map may explain another class.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

SUBSETS = {
    "test": "the whole official test split",
    "val": "the patient- or lesion-grouped validation split (held out when training keeps every epoch)",
    "attacked": "every attacked image",
    "correct": "attacked images the clean model classifies correctly",
    "fooled": "correct images whose prediction the attack changes",
    "not_fooled": "correct images whose prediction the attack leaves unchanged",
}
SHIFT_SUBSETS = ("attacked", "fooled", "not_fooled")  # explanation shift and heatmap distortion are split so


def masks(y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over the attacked images for ``attacked``, ``correct``, ``fooled`` and ``not_fooled``."""
    y, pc, pa = (np.asarray(a).reshape(-1) for a in (y, pred_clean, pred_adv))
    if not len(y) == len(pc) == len(pa):
        raise ParameterError(f"labels and predictions differ in length: {len(y)}, {len(pc)}, {len(pa)}")
    correct = pc == y
    return {"attacked": np.ones(len(y), bool), "correct": correct, "fooled": correct & (pa != pc),
            "not_fooled": correct & (pa == pc)}


def check(name: str) -> str:
    if name not in SUBSETS:
        raise ParameterError(f"unknown subset {name!r}; known: {', '.join(SUBSETS)}")
    return name
