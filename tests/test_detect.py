"""The single-input detector and the feature manifolds, on real PneumoniaMNIST attacked by ART."""

import numpy as np
import pytest

from advxai import attacks, data, detect, explain, manifold, metrics, train
from advxai.errors import ParameterError, UnknownNameError


@pytest.fixture(scope="module")
def detection_set(trained, pneumonia):
    x, y = pneumonia.split("test")
    idx = data.balanced_subset(y, 80, seed=0)
    x, y = x[idx], y[idx]

    def feats(xx):
        maps = explain.explain("gradcam", trained, xx, progress=False)
        return detect.features(train.predict_logits(trained, xx), maps)

    attacked = {}
    for name, eps, params in [("fgsm", 0.05, None), ("pgd", 0.05, None), ("deepfool", 0.02, {"max_iter": 20})]:
        attacked[name] = feats(attacks.generate(trained, x, y, name, eps, params)[0])
    return feats(x), attacked


def test_detector_beats_chance_on_a_held_out_attack(detection_set):
    clean, attacked = detection_set
    rows = {r["held_out"]: r for r in detect.leave_one_attack_out(clean, attacked, "both", n_boot=200)}
    auroc, lo, hi = rows["fgsm"]["auroc"]
    assert lo > 0.5 and lo <= auroc <= hi  # trained on PGD + DeepFool only, FGSM detected above chance
    assert rows["fgsm"]["n"] == 80  # 40 clean + 40 attacked test images, disjoint from the training half
    for r in rows.values():
        assert 0 <= r["tpr_at_5fpr"][0] <= 1


def test_baseline_without_explanations_runs_on_the_same_split(detection_set):
    clean, attacked = detection_set
    rows = detect.leave_one_attack_out(clean, attacked, "outputs", n_boot=100)
    assert [r["held_out"] for r in rows] == ["fgsm", "pgd", "deepfool"]
    assert all(r["feature_set"] == "outputs" for r in rows)


def test_detector_refuses_a_single_class_training_set(detection_set):
    clean, _ = detection_set
    with pytest.raises(ParameterError, match="must hold clean and adversarial examples"):
        detect.fit(detect.matrix(clean), np.zeros(len(clean["confidence"])))
    with pytest.raises(ParameterError, match="at least two attacks"):
        detect.leave_one_attack_out(clean, {"fgsm": clean})
    with pytest.raises(ParameterError, match="unknown feature set"):
        detect.matrix(clean, "pixels")


def test_tpr_at_fpr_hand_computed():
    is_adv = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.5, 0.8, 0.95])
    assert detect.tpr_at_fpr(is_adv, score, 0.0) == 0.25  # only 0.95 is above every clean score
    assert detect.tpr_at_fpr(is_adv, score, 0.25) == 1.0


def test_penultimate_features_and_embeddings(trained, test_batch):
    x, _ = test_batch
    f = manifold.penultimate(trained, x)
    assert f.shape == (len(x), 32)  # width 8 × 4 channels after global average pooling
    for method in ("tsne", "umap"):
        e = manifold.embed(f, method, seed=0)
        assert e.shape == (len(x), 2) and np.isfinite(e).all()
    np.testing.assert_allclose(manifold.embed(f, "tsne", seed=0), manifold.embed(f, "tsne", seed=0))
    with pytest.raises(UnknownNameError, match="unknown embedding 'pca'"):
        manifold.embed(f, "pca")
    with pytest.raises(ParameterError, match="need features"):
        manifold.embed(f[:3], "tsne")


def test_fast_scores_equal_scikit_learn():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = rng.integers(6, 40)
        is_adv = rng.integers(0, 2, n)
        is_adv[:2] = [0, 1]
        score = rng.integers(0, 6, n) / 5.0  # ties included
        assert np.isclose(metrics.binary_auc(is_adv, score), roc_auc_score(is_adv, score))
        for fpr in (0.0, 0.05, 0.25, 0.5):
            f, t, _ = roc_curve(is_adv, score, drop_intermediate=False)
            assert detect.tpr_at_fpr(is_adv, score, fpr) == t[f <= fpr + 1e-12].max()
