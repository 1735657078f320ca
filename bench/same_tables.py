"""Whether two builds computed the same numbers: their result tables compared row by row, wall-clock columns and
run folder names left out (a run's folder holds its key, which changes with the code even when its numbers do
not).

    python bench/same_tables.py OLD/tables/results.csv NEW/tables/results.csv   # exit 1 on any difference
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

CLOCK = {"seconds", "ms_per_image"}  # wall-clock metrics: differ between any two runs
KEYS = ["stage", "dataset", "model", "attack", "eps", "explainer", "target", "subset", "metric"]


def rows(path: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    df = df[~df.metric.isin(CLOCK)]
    keys = [k for k in KEYS if k in df.columns]
    return df.sort_values(keys).reset_index(drop=True)[keys + ["value", "ci_low", "ci_high", "n"]]


def main(old: str, new: str) -> int:
    """Every row of the old table is in the new one with the same value, interval and n; rows the new build adds
    (a new measurement) are listed, not counted as a difference."""
    a, b = rows(old), rows(new)
    keys = [c for c in a.columns if c not in ("value", "ci_low", "ci_high", "n")]
    m = a.astype({k: str for k in keys}).merge(b.astype({k: str for k in keys}), on=keys, how="outer",
                                                 suffixes=("_old", "_new"), indicator=True)
    gone, added, both = m[m._merge == "left_only"], m[m._merge == "right_only"], m[m._merge == "both"]
    diff = {c: int((~np.isclose(both[f"{c}_old"], both[f"{c}_new"], rtol=0, atol=0, equal_nan=True)).sum())
            for c in ("value", "ci_low", "ci_high", "n")}
    print(f"{len(both)} rows in both (wall-clock left out); differing: {diff}; only in the old: {len(gone)}; "
          f"added: {len(added)}" + (f" ({', '.join(sorted(set(added.metric)))})" if len(added) else ""))
    return int(any(diff.values()) or len(gone) > 0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
