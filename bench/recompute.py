"""Recompute the fooling rate over the correctly classified images, and the seeds' flip rate over all attacked
images, from the saved arrays, independently of `advxai.measure.evaluation`, and compare them with the result table.

    python bench/recompute.py [results]      # prints one line per (stage, dataset, attack, ε); exit 1 on a mismatch
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def cells(results: Path):
    """(stage, run folder, attack, ε, labels, clean predictions, attacked predictions) from the saved arrays."""
    for f in sorted((results / "runs" / "attack").glob("*/adv_*.npz")):
        d = np.load(f)
        for k, e in enumerate(d["eps"]):
            yield "attack", f.parent.name, f.stem[4:], float(e), d["y"], d["pred_clean"], d["pred_adv"][k]
    for f in sorted((results / "runs" / "radarmix").glob("*/logits.npz")):
        logits, adv = np.load(f), np.load(f.parent / "adversarial.npz")
        clean = logits["clean"].argmax(1)
        for a in (k for k in logits.files if k not in ("clean", "eps")):
            for k, e in enumerate(logits["eps"]):
                yield "radarmix", f.parent.name, a, float(e), adv["y"], clean, logits[a][k].argmax(1)


def main(results: Path) -> int:
    df = pd.read_csv(results / "tables" / "results.csv")
    bad = 0
    for stage, run, attack, eps, y, pc, pa in cells(results):
        if run not in set(df.run):  # a folder of an older grid, not in this table
            continue
        correct = pc == y
        mine = {"fooling_rate": np.mean(pa[correct] != pc[correct]), "flip_rate": np.mean(pa != pc)}
        for metric, value in mine.items():
            sel = df[(df.run == run) & (df.attack == attack) & np.isclose(df.eps, eps) & (df.metric == metric)]
            table = sel.value.iloc[0] if len(sel) == 1 else np.nan
            ok = np.isclose(table, value)
            bad += not ok
            print(f"{stage:<9} {run:<40} {attack:<12} ε {eps:<6g} {metric:<13} arrays {value:.4f} "
                  f"table {table:.4f} n {int(correct.sum()) if metric == 'fooling_rate' else len(y):>4} "
                  f"{'ok' if ok else 'MISMATCH'}")
    print(f"{bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
