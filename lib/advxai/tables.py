"""The tidy long-format result schema shared by every stage, notebook and chapter.

One row per (dataset, model, attack, eps, explainer, metric): ``value`` with its 95 % bootstrap interval
``[ci_low, ci_high]`` over ``n`` images. Clean rows have attack ``none`` and eps 0; stages without an
explainer leave it ``none``. ``run`` names the run directory whose ``provenance.json`` produced the row.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import bootstrap_ci

COLUMNS = ["dataset", "model", "attack", "eps", "explainer", "metric", "value", "ci_low", "ci_high", "n", "run"]


def row(metric: str, value: float, ci: tuple[float, float] = (np.nan, np.nan), n: int = 0, **keys) -> dict:
    return {"attack": "none", "eps": 0.0, "explainer": "none", **keys, "metric": metric, "value": float(value),
            "ci_low": float(ci[0]), "ci_high": float(ci[1]), "n": int(n)}


def mean_row(metric: str, values: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> dict:
    """A row for the mean of per-image values, with its bootstrap interval (non-finite values dropped)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return row(metric, float(np.mean(v)) if len(v) else np.nan, bootstrap_ci(v, np.mean, n_boot, seed=seed),
               len(v), **keys)


def stat_row(metric: str, stat: Callable, arrays: tuple, n_boot: int = 1000, seed: int = 0, **keys) -> dict:
    """A row for any statistic of per-image arrays (e.g. AUC of labels and scores), bootstrapped jointly."""
    return row(metric, stat(*arrays), bootstrap_ci(arrays, stat, n_boot, seed=seed), len(arrays[0]), **keys)


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for c in COLUMNS:
        if c not in df:
            df[c] = "none" if c in ("attack", "explainer") else np.nan
    return df[COLUMNS]


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write through a temporary file and rename, so a reader never sees half a table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".csv.part")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
