"""RobustBench's leaderboard table of the robust runs: the robustness run page's table and the chapter's. Kept
apart from the chapter's prose (:mod:`advxai.book.robust`) so that editing the chapter does not rerun the robust
stage (a run's cache key covers the modules its notebook imports)."""

from __future__ import annotations

import pandas as pd

from .narrative import NOT_RUN, collapsed, fmt, fmt_n, md_table


def k255(eps: float) -> str:
    """ε in pixel units as k/255, RobustBench's notation."""
    return f"{eps * 255:.3g}/255"


def robustbench_md(df: pd.DataFrame) -> str:
    """RobustBench's leaderboard columns, one row per (dataset, model, attack, ε), collapsed under one sentence."""
    rb = df[df.stage == "robust"]
    if rb.empty:
        return NOT_RUN
    clean = {(r.dataset, r.model): fmt_n(r) for r in rb[rb.metric == "clean_accuracy"].itertuples()}
    rows = [{"dataset": r.dataset, "model": r.model, "clean accuracy": clean.get((r.dataset, r.model), "—"),
             "attack": r.attack, "ε": k255(r.eps), "robust accuracy": fmt(r), "threat model": "L∞", "n": int(r.n)}
            for r in rb[rb.metric == "robust_accuracy"].sort_values(["dataset", "model", "attack", "eps"]).itertuples()]
    n = rb.groupby(["dataset", "model"]).ngroups
    return (f"Accuracy under attack of {n} model{'s' * (n > 1)} on a class-balanced sample of each test split, "
            f"in RobustBench's columns:\n\n" + collapsed(f"robust accuracy, {len(rows)} rows", md_table(rows)))
