"""The Detection chapter's Tramèr check (:mod:`advxai.detect.bounds`): per attacked detector and ε where the adaptive
attack left evasion below one, the robust accuracy at ε/2 its detection would imply, beside the best robust accuracy
the book measured at ε/2 or below on the same dataset (the Robust models chapter's AutoAttack runs) and the verdict
their intervals give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..detect.bounds import implausible, implied_robust_accuracy
from .grammar import per_255
from .robust import ENSEMBLE
from .style import NOT_RUN, fmt, md_table

IMPLAUSIBLE = "implausible under Tramèr's bound: likely an attack failure"
CONSISTENT = "consistent with the bound"
UNMEASURED = "no robust accuracy measured at or below ε/2 on this dataset"
FEW = "too few images for an interval: no verdict"


def table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, attacked detector, ε) with evasion < 1: evasion, the implied robust accuracy at ε/2
    (interval from evasion's Wilson interval), the best measured robust accuracy at the largest measured radius
    ε_m ≤ ε/2 (any model on that dataset, under AutoAttack; robust accuracy falls with the radius, so this is
    an upper bound on the best at ε/2 and the check errs towards "consistent") and the verdict."""
    from .aggregate import standard_detection

    ad = standard_detection(df)
    ad = ad[(ad.stage == "detection") & (ad.attack == "adaptive") & (ad.metric == "evasion_rate")
            & (ad.target == "best λ")]
    acc = df[(df.stage == "train") & (df.metric == "accuracy") & (df.subset == "test")]
    acc = acc.drop_duplicates(["dataset", "model"]).set_index(["dataset", "model"]).value
    rb = df[(df.stage == "robust") & (df.metric == "robust_accuracy") & (df.attack == ENSEMBLE)]
    rows = []
    for r in ad.itertuples():
        if not (np.isfinite(r.value) and r.value < 1) or (r.dataset, r.model) not in acc.index:
            continue
        a = float(acc[(r.dataset, r.model)])
        imp = implied_robust_accuracy(a, r.value)
        has_ci = np.isfinite(r.ci_low) and np.isfinite(r.ci_high)
        low, high = (implied_robust_accuracy(a, e) for e in (r.ci_high, r.ci_low)) if has_ci else (np.nan, np.nan)
        measured = rb[(rb.dataset == r.dataset) & (rb.eps <= r.eps / 2 + 1e-12)]
        best = None if measured.empty else measured[measured.eps == measured.eps.max()].sort_values("value").iloc[-1]
        verdict = (UNMEASURED if best is None else FEW if not (has_ci and np.isfinite(best.ci_high))
                   else IMPLAUSIBLE if implausible(low, best.ci_high) else CONSISTENT)
        rows.append({"setting": f"{r.dataset} · {r.model}", "detector": r.explainer, "ε": r.eps,
                     "evasion": fmt(pd.Series({"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                               "n": r.n})),
                     "implied at ε/2": f"{imp:.2f} [{low:.2f}, {high:.2f}]" if has_ci else f"{imp:.2f}",
                     "best measured": "—" if best is None else f"{fmt(best)} ({best.model}, ε = {per_255(best.eps)})",
                     "verdict": verdict})
    return pd.DataFrame(rows)


def md(t: pd.DataFrame) -> str:
    """The table as the chapter shows it, or why there is none."""
    if t.empty:
        return NOT_RUN
    return md_table(t.assign(**{"ε": t["ε"].map(per_255)}).to_dict("records"))
