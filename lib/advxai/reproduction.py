"""The reproduction report: each claim of the two seed papers, our number with its interval, and a verdict
computed from them (never typed by hand).

A claim names the seed's value (a number or a range, as a share in [0, 1]) and how to find our number in
the tidy results table. Verdict: ``yes`` when the claim lies inside our 95 % interval (a range: when the
two overlap); ``partially`` when it misses by at most ``tolerance``; ``no`` beyond; ``not run`` when the
table has no such row (the data or model is not in the configuration that was run), with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Claim:
    study: str
    claim: str
    seed: tuple[float, float]  # (low, high); a single number has low == high
    select: dict  # column -> value of the row(s) holding our number
    pick: str = "value"  # "value": the one row; "max": the row with the largest value (e.g. "FR up to")
    caveat: str = ""  # what differs between the seed's setting and ours
    missing: str = "not in the configuration that was run"
    tolerance: float = 0.05


CLAIMS = [
    Claim("Grad-Attacks", "clean accuracy on chest X-ray (ResNet50/VGG16/InceptionV3)", (0.859, 0.889),
          {"dataset": "chest_xray_64", "metric": "accuracy", "attack": "none", "stage": "train"},
          caveat="compact CNN at 64 px, trained from scratch (seed: ImageNet nets at 224 px)"),
    Claim("Grad-Attacks", "fooling rate up to 93 % (DeepFool, chest X-ray)", (0.93, 0.93),
          {"dataset": "chest_xray_64", "metric": "fooling_rate", "attack": "deepfool"}, pick="max",
          caveat="FR counts label changes among all attacked images, as the seed's code"),
    Claim("Grad-Attacks", "fooling rate up to 96 % (PGD, OCT)", (0.96, 0.96),
          {"dataset": "oct2017_64", "metric": "fooling_rate", "attack": "pgd"}, pick="max",
          missing="OCT2017 train/test are not in the shared data (only its 32-image val split); a user download"),
    Claim("Grad-Attacks", "PneumoniaMNIST benchmark accuracy (MedMNIST v2, ResNet-18, 28 px)", (0.854, 0.854),
          {"dataset": "pneumoniamnist_28", "metric": "accuracy", "attack": "none", "stage": "train"},
          caveat="MedMNIST's benchmark, our sanity anchor for the 28 px pipeline"),
    Claim("RADAR-MIX", "clean test accuracy 75.0 % (ResNet50V2, ISIC 2018)", (0.75, 0.75),
          {"dataset": "isic2018_28", "metric": "accuracy", "attack": "none", "stage": "train"},
          caveat="compact CNN at 28 px with class-balanced loss (seed: ResNet50V2 at 224 px); balanced loss "
                 "trades accuracy for rare-class recall"),
    Claim("RADAR-MIX", "explanations give high attack-detection effectiveness (read: AUROC ≥ 0.9)", (0.9, 1.0),
          {"dataset": "isic2018_28", "metric": "auroc", "explainer": "outputs + gradcam"}, pick="max",
          caveat="ours: a single-input detector on an attack it never saw; the seed compared clean and attacked "
                 "maps of the same image", tolerance=0.0),
]


def _our_number(df: pd.DataFrame, c: Claim) -> pd.Series | None:
    sel = df
    for col, val in c.select.items():
        sel = sel[sel[col] == val]
    sel = sel.dropna(subset=["value"])
    if sel.empty:
        return None
    return sel.loc[sel.value.idxmax()] if c.pick == "max" else sel.iloc[0]


def verdict(seed: tuple[float, float], ci: tuple[float, float], tolerance: float) -> str:
    """``yes`` if the seed's range and our interval overlap, ``partially`` if they miss by ≤ tolerance, else
    ``no``; a miss says on which side our number lies (``no (ours higher)``)."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    gap = max(seed[0] - hi, lo - seed[1], 0.0)
    if gap == 0:
        return "yes"
    side = "ours higher" if lo > seed[1] else "ours lower"
    return f"{'partially' if gap <= tolerance else 'no'} ({side})"


def report(df: pd.DataFrame, stage_of_run: dict[str, str]) -> pd.DataFrame:
    """One row per claim: study, claim, seed, ours [95 % CI], reproduced, why. ``stage_of_run`` maps each
    run name of the table to its stage (clean accuracy is read from the training runs' test-split rows)."""
    df = df.assign(stage=df.run.map(stage_of_run))
    rows = []
    for c in CLAIMS:
        ours = _our_number(df, c)
        seed = f"{100 * c.seed[0]:.1f} %" if c.seed[0] == c.seed[1] else \
            f"{100 * c.seed[0]:.1f}–{100 * c.seed[1]:.1f} %"
        if ours is None:
            rows.append({"study": c.study, "claim": c.claim, "seed": seed, "ours [95 % CI]": "—",
                         "reproduced": "not run", "why": c.missing})
            continue
        ci = (float(ours.ci_low), float(ours.ci_high))
        where = f" ({ours.attack}, ε {ours.eps:g})" if c.pick == "max" else ""
        rows.append({"study": c.study, "claim": c.claim, "seed": seed,
                     "ours [95 % CI]": f"{100 * ours.value:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]{where}",
                     "reproduced": verdict(c.seed, ci, c.tolerance), "why": c.caveat})
    return pd.DataFrame(rows)
