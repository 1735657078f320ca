"""Tramèr's bound: what a detector's robustness would imply for classification.

Tramèr (ICML 2022, "Detecting adversarial examples is (nearly) as hard as classifying them") shows that a
classifier f with a detector D that is robust at distance ε — for a clean input x, f(x) is right, x is not
flagged, and every x' within ε of x is either classified right or flagged — yields an (inefficient) classifier
robust at ε/2 with the same robust accuracy: given x, search the ε/2 ball for an input D does not flag and answer
f's label there. So a detection result implies a robust accuracy at ε/2, which can be set beside the best robust
accuracy any defence reaches at ε/2 on the same data: a detection claim that implies far more is more likely an
attack that failed than a defence that works.

The detector's robust accuracy at ε is estimated from what the book measures: the clean accuracy, the share of
clean images the detector lets through (1 − its false-positive rate, 0.95 at the 5 % threshold) and the share of
correctly classified images the adaptive attack did *not* turn into an undetected adversarial (1 − evasion).
Assumptions, stated with the table: being flagged on a clean image is independent of being evaded, and the
attack's evasion is taken at face value — a stronger attack can only raise evasion and lower the implied accuracy,
so the implied value is an upper bound on what the detector really delivers.
"""

from __future__ import annotations


def implied_robust_accuracy(clean_accuracy: float, evasion: float, fpr: float = 0.05) -> float:
    """Robust accuracy at ε/2 that a detector with this ``evasion`` rate at ε (over correctly classified images),
    at a threshold flagging ``fpr`` of clean images, implies for a classifier (Tramèr 2022):
    ``clean_accuracy · (1 − fpr) · (1 − evasion)``."""
    for name, v in (("clean_accuracy", clean_accuracy), ("evasion", evasion), ("fpr", fpr)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    return clean_accuracy * (1 - fpr) * (1 - evasion)


def implausible(implied_low: float, measured_high: float) -> bool:
    """Whether a detection claim is implausible under the bound: even the low end of the robust accuracy it implies
    at ε/2 exceeds the high end of the best robust accuracy measured there."""
    return implied_low > measured_high
