"""An adversarial-example detector that sees one input, as a deployed system would: its explanation map and
the model's own outputs (RADAR-MIX compared clean and attacked explanations of the *same* image, which a
defender never has). Evaluated leave-one-attack-out against an outputs-only baseline.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .errors import ParameterError
from .metrics import bootstrap_many, softmax

OUTPUT_FEATURES = ["confidence", "margin", "entropy"]
MAP_FEATURES = ["map_mean", "map_std", "map_entropy", "top10_mass", "spread"]
FEATURE_SETS = {"outputs": OUTPUT_FEATURES, "explanation": MAP_FEATURES, "both": OUTPUT_FEATURES + MAP_FEATURES}


def features(logits: np.ndarray, maps: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image features. Outputs: max softmax, top-1 − top-2 logit margin, softmax entropy. Map (normalised
    to a distribution p over pixels): mean, s.d., entropy −Σ p log p, mass of the top 10 % pixels, and the
    spatial spread (s.d. of pixel coordinates weighted by p, in units of the image side)."""
    logits = np.asarray(logits, np.float64)
    p = softmax(logits)
    top2 = np.sort(logits, axis=1)[:, -2:]
    m = np.asarray(maps, np.float64).reshape(len(maps), -1)
    mass = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
    side = np.asarray(maps).shape[1]
    yy, xx = np.divmod(np.arange(m.shape[1]), side)
    cy, cx = mass @ yy, mass @ xx
    spread = np.sqrt(mass @ (yy**2) - cy**2 + mass @ (xx**2) - cx**2) / side
    k = max(1, m.shape[1] // 10)
    return {
        "confidence": p.max(1), "margin": top2[:, 1] - top2[:, 0],
        "entropy": -(p * np.log(np.clip(p, 1e-12, 1))).sum(1),
        "map_mean": m.mean(1), "map_std": m.std(1),
        "map_entropy": -(mass * np.log(np.clip(mass, 1e-12, 1))).sum(1),
        "top10_mass": np.sort(mass, axis=1)[:, -k:].sum(1), "spread": spread,
    }


def matrix(feats: dict[str, np.ndarray], feature_set: str = "both") -> np.ndarray:
    if feature_set not in FEATURE_SETS:
        raise ParameterError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return np.column_stack([feats[name] for name in FEATURE_SETS[feature_set]])


def fit(x: np.ndarray, is_adv: np.ndarray, seed: int = 0):
    """Standardised logistic regression on the features (clean = 0, adversarial = 1)."""
    is_adv = np.asarray(is_adv).astype(int)
    if len(np.unique(is_adv)) < 2:
        raise ParameterError("the detector's training set must hold clean and adversarial examples; it has one kind")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)).fit(x, is_adv)


def tpr_at_fpr(is_adv: np.ndarray, score: np.ndarray, fpr: float = 0.05) -> float:
    """Share of adversarial inputs caught when at most ``fpr`` of clean inputs are flagged."""
    f, t, _ = roc_curve(is_adv, score)
    return float(t[np.searchsorted(f, fpr, side="right") - 1])


def scores(is_adv: np.ndarray, score: np.ndarray) -> dict[str, float]:
    if len(np.unique(is_adv)) < 2:
        return {"auroc": np.nan, "tpr_at_5fpr": np.nan}
    return {"auroc": float(roc_auc_score(is_adv, score)), "tpr_at_5fpr": tpr_at_fpr(is_adv, score)}


def leave_one_attack_out(clean: dict[str, np.ndarray], attacked: dict[str, dict[str, np.ndarray]],
                         feature_set: str = "both", n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Train on clean + every attack but one, test on clean + the held-out attack; one record per held-out
    attack with AUROC and TPR at 5 % FPR and their bootstrap intervals.

    The clean images are split in two halves (seeded): one for training, one for testing, so no image is
    seen on both sides; adversarial images of the test half's originals are the only ones tested.
    """
    if len(attacked) < 2:
        raise ParameterError("leave-one-attack-out needs at least two attacks")
    n = len(next(iter(clean.values())))
    rng = np.random.default_rng(seed)
    test_half = np.zeros(n, bool)
    test_half[rng.permutation(n)[: n // 2]] = True
    xc = matrix(clean, feature_set)
    out = []
    for held in attacked:
        train_x = [xc[~test_half]] + [matrix(f, feature_set)[~test_half] for a, f in attacked.items() if a != held]
        train_y = [np.zeros((~test_half).sum())] + [np.ones((~test_half).sum())] * (len(attacked) - 1)
        det = fit(np.concatenate(train_x), np.concatenate(train_y), seed)
        test_x = np.concatenate([xc[test_half], matrix(attacked[held], feature_set)[test_half]])
        test_y = np.r_[np.zeros(test_half.sum()), np.ones(test_half.sum())]
        score = det.predict_proba(test_x)[:, 1]
        point = scores(test_y, score)
        cis = bootstrap_many((test_y, score), scores, n_boot, seed=seed)
        out.append({"held_out": held, "feature_set": feature_set, "n": int(len(test_y)),
                    **{m: (point[m], *cis[m]) for m in point}})
    return out
