"""An adversarial-example detector that sees one input, as a deployed system would: its explanation map and
the model's own outputs (RADAR-MIX compared clean and attacked explanations of the *same* image, which a
defender never has). Evaluated leave-one-attack-out against an outputs-only baseline.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .errors import ParameterError
from .metrics import binary_auc, bootstrap_many, softmax

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
    """Standardised logistic regression on the features (clean = 0, adversarial = 1), classes weighted to
    balance (a training pool of several attacks holds more adversarial than clean examples)."""
    is_adv = np.asarray(is_adv).astype(int)
    if len(np.unique(is_adv)) < 2:
        raise ParameterError("the detector's training set must hold clean and adversarial examples; it has one kind")
    lr = LogisticRegression(max_iter=1000, random_state=seed, class_weight="balanced")
    return make_pipeline(StandardScaler(), lr).fit(x, is_adv)


def tpr_at_fpr(is_adv: np.ndarray, score: np.ndarray, fpr: float = 0.05) -> float:
    """Share of adversarial inputs caught when at most ``fpr`` of clean inputs are flagged (score ≥ threshold):
    the best threshold lets through the ⌊fpr·n_clean⌋ highest clean scores, so TPR = share of adversarial
    scores above the next clean score. Equals the ROC curve read at ``fpr`` (tests compare with scikit-learn)."""
    is_adv = np.asarray(is_adv).astype(bool)
    clean = np.sort(np.asarray(score)[~is_adv])[::-1]
    k = int(np.floor(fpr * len(clean) + 1e-9))
    if k >= len(clean):
        return 1.0
    return float(np.mean(np.asarray(score)[is_adv] > clean[k]))


def scores(is_adv: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC and TPR at 5 % FPR (fast closed forms: they run inside bootstrap loops)."""
    if len(np.unique(is_adv)) < 2:
        return {"auroc": np.nan, "tpr_at_5fpr": np.nan}
    return {"auroc": binary_auc(is_adv, score), "tpr_at_5fpr": tpr_at_fpr(is_adv, score)}


def _attack_of(key) -> str:
    return key[0] if isinstance(key, tuple) else key


def leave_one_attack_out(clean: dict[str, np.ndarray], attacked: dict, feature_set: str = "both",
                         n_boot: int = 1000, seed: int = 0, return_scores: bool = False) -> list[dict]:
    """Train on clean + every attack but one, test on clean + the held-out attack; one record per held-out
    (attack[, ε]) with AUROC and TPR at 5 % FPR and their bootstrap intervals.

    ``attacked`` maps an attack name, or an ``(attack, ε)`` pair, to the features of the attacked images
    (aligned with ``clean``). With pairs, the detector trains on every ε of the other attacks and is tested on
    each ε of the held-out one. The clean images are split in two halves (seeded): one for training, one for
    testing, so no image is seen on both sides; only adversarial images of the test half's originals are tested.
    ``return_scores`` adds the test labels and detector scores (for ROC curves) to each record.
    """
    names = list(dict.fromkeys(_attack_of(k) for k in attacked))
    if len(names) < 2:
        raise ParameterError("leave-one-attack-out needs at least two attacks")
    n = len(next(iter(clean.values())))
    rng = np.random.default_rng(seed)
    test_half = np.zeros(n, bool)
    test_half[rng.permutation(n)[: n // 2]] = True
    xc = matrix(clean, feature_set)
    test_y = np.r_[np.zeros(test_half.sum()), np.ones(test_half.sum())]  # clean half, then its attacked versions
    out = []
    for held in names:
        others = [matrix(f, feature_set)[~test_half] for k, f in attacked.items() if _attack_of(k) != held]
        train_y = np.r_[np.zeros((~test_half).sum()), np.ones(sum(len(o) for o in others))]
        det = fit(np.concatenate([xc[~test_half], *others]), train_y, seed)
        for key in [k for k in attacked if _attack_of(k) == held]:
            test_x = np.concatenate([xc[test_half], matrix(attacked[key], feature_set)[test_half]])
            score = det.predict_proba(test_x)[:, 1]
            point = scores(test_y, score)
            cis = bootstrap_many((test_y, score), scores, n_boot, seed=seed)
            rec = {"held_out": held, "eps": key[1] if isinstance(key, tuple) else None, "feature_set": feature_set,
                   "n": int(len(test_y)), **{m: (point[m], *cis[m]) for m in point}}
            if return_scores:
                rec.update(is_adv=test_y, score=score)
            out.append(rec)
    return out
