"""Is a clean model worth attacking? The published benchmarks and the bars the book holds each model to, each
checked on the split it is defined on (``test``: the official test split; ``val``: the patient/lesion-grouped
validation split, held out when training keeps every epoch).

MedMNIST v2 (Yang et al. 2023, ResNet-18 at 28 px, test ACC / AUC) anchors the 28 px MedMNIST sets. For ISIC 2018
/ HAM10000 the DermaMNIST benchmark is an optimistic anchor (DermaMNIST's split is not lesion-grouped), so it is
checked on our lesion-grouped held-out split; on the official ISIC 2018 test set (other sources, another class
mix) the bars are the majority-class baseline for accuracy, 0.50 balanced accuracy and 0.90 macro AUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MEDMNIST = "MedMNIST v2 ResNet-18 (28 px)"
OURS = "this book's bar for a model worth attacking"


@dataclass(frozen=True)
class Bar:
    metric: str
    value: float | str  # a number, or "majority": the share of the split's largest class
    subset: str
    source: str
    size: int | None = None  # the image size the bar is for (None: any)


def _medmnist(acc: float, auc: float) -> list[Bar]:
    return [Bar("accuracy", acc, "test", MEDMNIST, 28), Bar("auc", auc, "test", MEDMNIST, 28)]


BARS: dict[str, list[Bar]] = {
    "pneumoniamnist": _medmnist(0.854, 0.944),
    "breastmnist": _medmnist(0.863, 0.901),
    "dermamnist": _medmnist(0.735, 0.917),
    "retinamnist": _medmnist(0.524, 0.717),
    "octmnist": _medmnist(0.743, 0.943),
    "isic2018": [
        Bar("accuracy", 0.735, "val", "DermaMNIST benchmark, " + MEDMNIST + "; optimistic: not lesion-grouped"),
        Bar("auc", 0.917, "val", "DermaMNIST benchmark, " + MEDMNIST + "; optimistic: not lesion-grouped"),
        Bar("accuracy", "majority", "test", "majority-class baseline (predict naevus for every image)"),
        Bar("balanced_accuracy", 0.50, "test", OURS),
        Bar("auc", 0.90, "test", OURS),
    ],
    "chest_xray": [Bar("accuracy", 0.85, "test", OURS + " (the seed's ImageNet nets at 224 px: 0.859–0.889)")],
}


def check(dataset: str, size: int, metrics: pd.DataFrame, majority: dict[str, float]) -> pd.DataFrame:
    """One row per bar of ``dataset`` at ``size``: our value with its interval, the bar, and whether it is met
    (``yes``: value ≥ bar; ``within interval``: below, but the bar lies inside our 95 % interval; ``no``).

    ``metrics``: the training stage's rows (columns metric, subset, value, ci_low, ci_high); ``majority``:
    subset -> share of its largest class."""
    out = []
    for bar in BARS.get(dataset, []):
        if bar.size is not None and bar.size != size:
            continue
        sel = metrics[(metrics.metric == bar.metric) & (metrics.subset == bar.subset)]
        if sel.empty:
            continue
        r = sel.iloc[0]
        if bar.value == "majority" and bar.subset not in majority:
            continue
        target = majority[bar.subset] if bar.value == "majority" else float(bar.value)
        met = ("yes" if r.value >= target else
               "within interval" if np.isfinite(r.ci_high) and r.ci_high >= target else "no")
        out.append({"metric": bar.metric, "split": bar.subset, "ours": r.value, "ci_low": r.ci_low,
                    "ci_high": r.ci_high, "bar": target, "met": met, "source": bar.source})
    return pd.DataFrame(out, columns=["metric", "split", "ours", "ci_low", "ci_high", "bar", "met", "source"])


def majority_share(y: np.ndarray) -> float:
    """Accuracy of always predicting the split's largest class (the baseline a useful model must beat)."""
    y = np.asarray(y)
    return float(np.bincount(y).max() / len(y)) if len(y) else float("nan")


def majority(rows: pd.DataFrame) -> dict[str, float]:
    """subset -> majority share, from the training stage's ``majority_baseline`` rows."""
    sel = rows[rows.metric == "majority_baseline"]
    return dict(zip(sel.subset, sel.value, strict=True))
