"""The tidy long-format result schema shared by every stage, notebook and chapter.

One row per (stage, dataset, model, attack, eps, explainer, target, subset, metric): ``value`` with its 95 %
interval ``[ci_low, ci_high]`` over ``n`` images. Proportions (accuracy, fooling rate, ASR, pointing game,
...) get a Wilson interval; continuous means and other statistics a bootstrap over images; below
:data:`MIN_N` images no interval is given (``n`` says why). Clean rows have attack ``none`` and eps 0; rows
without an explainer have explainer and target ``none``. ``subset`` says which images (:mod:`advxai.measure.subsets`).
``run`` names the run directory whose ``provenance.json`` produced the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..artefacts import atomic_path
from ..errors import ParameterError
from .metrics import bootstrap_ci, wilson_ci
from .subsets import SUBSETS

COLUMNS = ["stage", "dataset", "model", "attack", "eps", "explainer", "target", "subset", "metric", "value",
           "ci_low", "ci_high", "n", "run"]
KEYS = COLUMNS[:9]  # one row per combination of these, in every table
MIN_N = 10  # below this many images an interval is not worth printing: the row gives n and no interval
NO_CI = (np.nan, np.nan)


def row(metric: str, value: float, ci: tuple[float, float] = NO_CI, n: int = 0, **keys) -> dict:
    return {"attack": "none", "eps": 0.0, "explainer": "none", "target": "none", **keys, "metric": metric,
            "value": float(value), "ci_low": float(ci[0]), "ci_high": float(ci[1]), "n": int(n)}


def proportion_row(metric: str, hits: np.ndarray, **keys) -> dict:
    """A row for the share of images where ``hits`` is true, with its Wilson interval."""
    h = np.asarray(hits, bool).reshape(-1)
    n = len(h)
    ci = wilson_ci(int(h.sum()), n) if n >= MIN_N else NO_CI
    return row(metric, h.mean() if n else np.nan, ci, n, **keys)


def mean_row(metric: str, values: np.ndarray, n_boot: int = 1000, seed: int = 0, **keys) -> dict:
    """A row for the mean of per-image values with its bootstrap interval. Values must be finite: callers
    leave out what is undefined explicitly (and count it), nothing is dropped silently here."""
    v = np.asarray(values, np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise ParameterError(f"{metric}: {int((~np.isfinite(v)).sum())} non-finite values; exclude them explicitly")
    ci = bootstrap_ci(v, np.mean, n_boot, seed=seed) if len(v) >= MIN_N else NO_CI
    return row(metric, float(np.mean(v)) if len(v) else np.nan, ci, len(v), **keys)


def stat_row(metric: str, stat: Callable, arrays: tuple, n_boot: int = 1000, seed: int = 0, **keys) -> dict:
    """A row for any statistic of per-image arrays (e.g. AUC of labels and scores), bootstrapped jointly."""
    n = len(arrays[0])
    ci = bootstrap_ci(arrays, stat, n_boot, seed=seed) if n >= MIN_N else NO_CI
    return row(metric, stat(*arrays), ci, n, **keys)


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows -> a table with the schema's columns. Every row must name its stage and a known subset."""
    df = pd.DataFrame(list(rows))
    for c in COLUMNS:
        if c not in df:
            df[c] = "none" if c in ("attack", "explainer", "target") else np.nan
    if len(df):
        if df.stage.isna().any():
            raise ParameterError("every result row needs its stage")
        unknown = set(df.subset) - set(SUBSETS)
        if unknown:
            raise ParameterError(f"rows with unknown subset(s) {sorted(map(str, unknown))}; "
                                 f"known: {', '.join(SUBSETS)}")
    return df[COLUMNS]


def duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that share every key column with another row (there must be none: each number has one meaning)."""
    return df[df.duplicated(KEYS, keep=False)]


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write through a temporary file and rename, so a reader never sees half a table."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def fmt_cell(r) -> str:
    """A row's value with its interval for a table cell, or with its n where it has none (fewer than 10 images)."""
    return f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else f"{r.value:.3f} (n {r.n})"


def load_runs(dirs: list) -> tuple[pd.DataFrame, dict]:
    """The rows (``metrics.csv``) and provenance (``provenance.json``) of finished run folders: ``(df, prov)``,
    ``prov`` keyed by the folder's name. Rows that share every key column are refused (two runs wrote one cell)."""
    import json

    df = pd.concat([pd.read_csv(Path(d) / "metrics.csv") for d in dirs if (Path(d) / "metrics.csv").exists()],
                   ignore_index=True)
    dup = duplicates(df)
    if not dup.empty:
        raise AssertionError(f"{len(dup)} rows share all key columns:\n{dup.head()}")
    prov = {Path(d).name: json.loads((Path(d) / "provenance.json").read_text()) for d in dirs
            if (Path(d) / "provenance.json").exists()}
    return df, prov


def provenance_frame(prov: dict) -> pd.DataFrame:
    """One row per run: label, stage, cache key, git commit, data MD5, lock hash, seconds, TensorFlow and ART."""
    return pd.DataFrame([{"run": p["label"], "stage": p["stage"], "key": p["key"], "git": p["git_commit"][:12],
                          "data_md5": (p["data_md5"] or "")[:12], "lock": p.get("lock", ""), "seconds": p["seconds"],
                          "tensorflow": p["versions"].get("tensorflow-cpu", p["versions"].get("tensorflow")),
                          "art": p["versions"].get("adversarial-robustness-toolbox")} for p in prov.values()])
