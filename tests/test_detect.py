"""The detection study's formulas and protocol: hand-computed values on tiny arrays, and the splits."""

import numpy as np
import pytest

from advxai import detect
from advxai.detect import detectors, fits, protocol
from advxai.errors import AdvXAIError, ParameterError
from advxai.measure import metrics


def test_kernel_density_hand_computed():
    ref = np.array([[0.0, 0.0], [1.0, 0.0]])
    # distances² from (0, 0): 0 and 1 -> mean(exp(0), exp(-1/σ²)) with σ = 1
    assert detectors.kernel_density(np.array([[0.0, 0.0]]), ref, 1.0)[0] == pytest.approx((1 + np.exp(-1)) / 2)
    assert detectors.kernel_density(np.array([[0.0, 2.0]]), ref, 2.0)[0] == pytest.approx(
        (np.exp(-4 / 4) + np.exp(-5 / 4)) / 2)


def test_bayesian_uncertainty_hand_computed():
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two dropout samples that disagree completely
    # mean of ŷᵀŷ = 1; mean ŷ = (0.5, 0.5) -> its square norm 0.5; U = 0.5
    assert detectors.bayesian_uncertainty(samples)[0] == pytest.approx(0.5)
    assert detectors.bayesian_uncertainty(np.array([[[0.3, 0.7]]] * 4))[0] == pytest.approx(0.0)


def test_lid_hand_computed():
    ref = np.array([[1.0], [2.0], [4.0]])
    # from 0: r = 1, 2, 4 (k = 3): mean log(r_i / r_k) = (log 1/4 + log 2/4 + 0) / 3
    expected = -1 / ((np.log(0.25) + np.log(0.5)) / 3)
    assert detectors.lid(np.array([[0.0]]), ref, k=3)[0] == pytest.approx(expected)
    assert detectors.lid(np.array([[1.0]]), ref, k=2)[0] == pytest.approx(-1 / (np.log(1 / 3) / 2))  # skips itself
    with pytest.raises(ParameterError, match="at least k"):
        detectors.lid(np.array([[0.0]]), ref, k=5)


def test_lid_reference_code_drops_the_nearest_neighbour_for_every_query():
    """Ma et al.'s mle_batch drops the first neighbour of every query: for a query in the reference batch that is
    itself (same value as eq. 3); for a query outside it, a real neighbour, which raises its LID."""
    ref = np.array([[1.0], [2.0], [4.0], [7.0]])
    # query 0 (not in the batch): neighbours 1, 2, 4, 7; the reference code keeps 2, 4 (k = 2)
    assert detectors.lid(np.array([[0.0]]), ref, k=2, drop_nearest=True)[0] == pytest.approx(-1 / (np.log(2 / 4) / 2))
    assert detectors.lid(np.array([[0.0]]), ref, k=2)[0] == pytest.approx(-1 / (np.log(1 / 2) / 2))
    # query 1 (in the batch): its zero distance is what is dropped, so both give the same value
    assert detectors.lid(np.array([[1.0]]), ref, k=2, drop_nearest=True)[0] == pytest.approx(
        detectors.lid(np.array([[1.0]]), ref, k=2)[0])
    rng = np.random.default_rng(0)
    ref, outside = rng.normal(size=(100, 8)), rng.normal(size=(200, 8))
    ratio = detectors.lid(outside, ref, drop_nearest=True).mean() / detectors.lid(outside, ref).mean()
    assert 1.05 < ratio < 1.5  # the asymmetry that favours detection (+15–25 % reported on random data)


def test_two_sided_scores_flag_both_tails_and_never_see_an_attack():
    """Fitted on clean confidences only: an over-confident and an under-confident example both score high, a typical
    one low; the adversarial rows offered to the fit change nothing."""
    clean = np.linspace(0.6, 0.9, 31)[:, None]
    x = np.concatenate([clean, [[0.99], [0.2]]])
    is_adv = np.r_[np.zeros(31), 1, 1]
    score = fits.fit("two-sided", x, is_adv)
    over, under, typical = score(np.array([[0.999], [0.3], [0.75]]))
    assert over == under == 1.0 and typical == pytest.approx(0.0, abs=1e-9)
    other = fits.fit("two-sided", np.concatenate([clean, [[0.5], [0.5]]]), is_adv)
    probe = np.linspace(0, 1, 11)[:, None]
    np.testing.assert_array_equal(score(probe), other(probe))


@pytest.mark.parametrize("kind", ["two-sided", "clean-density"])
def test_clean_only_fits_ignore_the_adversarial_rows(kind, rng):
    clean = rng.normal(size=(60, 3))
    first = fits.fit(kind, np.concatenate([clean, rng.normal(5, 1, (20, 3))]), np.r_[np.zeros(60), np.ones(20)])
    second = fits.fit(kind, np.concatenate([clean, rng.normal(-9, 3, (7, 3))]), np.r_[np.zeros(60), np.ones(7)])
    probe = rng.normal(size=(10, 3))
    np.testing.assert_array_equal(first(probe), second(probe))


def test_detectors_are_grouped_by_what_they_read():
    groups = {n: detectors.DETECTORS[n].family for n in detectors.DETECTORS.names()}
    assert set(groups.values()) == set(detectors.FAMILIES)
    assert groups["signature"] == "deep features"  # W(h − h̄): activations, not a map of the image
    explanation = {n for n in groups if detectors.DETECTORS[n].explanation}
    assert explanation == {"gradcam-summary", "map-cnn", "dispersion", "clean-density", "map-consistency",
                           "class-map-survival"}


def test_clean_only_detectors_are_fitted_without_an_adversarial_image():
    """The attack-agnostic detectors use a clean-only fit (or none) on the folds; their references are clean
    training images."""
    clean_only = {"msp-2s", "max-logit-2s", "energy-2s", "feature-squeezing", "subset-scanning", "nic",
                  "clean-density", "map-consistency", "class-map-survival"}
    assert {n for n in clean_only if detectors.DETECTORS[n].fit not in detect.CLEAN_ONLY_FITS} == set()


def test_leave_one_family_out_groups_the_sign_gradient_attacks():
    """FGSM and PGD are one family: leaving the family out trains on DeepFool alone and tests on both; DeepFool,
    a family of one, reuses its held-out fit (one fit per fold per distinct training set)."""
    cells = [detect.Cell("fgsm", 0.05), detect.Cell("pgd", 0.05), detect.Cell("deepfool", 0.02)]
    src = detect.sources(cells)
    assert src["without family L∞ gradient"] == [cells[2]]
    assert src["without family minimal perturbation"] == src["without deepfool"] == cells[:2]
    assert protocol.tested("without family L∞ gradient", cells) == cells[:2]
    assert protocol.setting("without family universal", cells[0]) == "held_out_family"
    assert "without family L∞ gradient" not in detect.sources(cells[:2])  # one family: nothing to leave out


def test_feature_squeezing_and_map_consistency_hand_computed():
    """Xu et al.'s score: the largest L1 distance between the softmax of the image and of each squeezed image;
    ART's bit-depth squeezer rounds to 2^b − 1 levels; the map score is 1 − Pearson correlation."""
    from advxai.detect import views

    logits = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    squeezed = {"a": np.log(np.array([[0.6, 0.4], [0.9, 0.1]])), "b": np.log(np.array([[0.5, 0.5], [0.6, 0.4]]))}
    np.testing.assert_allclose(detectors.squeeze_distance(logits, squeezed), [0.2, 0.6])
    x = np.array([0.0, 0.1, 0.5, 0.97, 1.0], np.float32).reshape(1, 5, 1, 1)
    bits = views.squeezers()[f"bit-depth-{views.BIT_DEPTH}"](x)
    np.testing.assert_allclose(bits.ravel(), np.round(x.ravel() * 31) / 31, atol=1e-6)
    m = np.arange(4.0).reshape(1, 2, 2)
    np.testing.assert_allclose(detectors.map_inconsistency(m, 2 * m + 1), [0.0], atol=1e-12)
    np.testing.assert_allclose(detectors.map_inconsistency(m, -m), [2.0], atol=1e-12)
    assert detectors.map_inconsistency(m, np.zeros_like(m))[0] == 1.0  # a blank map is uncorrelated


def test_mahalanobis_hand_computed():
    feats = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    y = np.array([0, 0, 1, 1])
    means, prec = detectors.fit_gaussians(feats, y)
    np.testing.assert_allclose(means, [[1, 0], [1, 2]])
    # tied covariance: deviations (±1, 0) in every class -> Σ = diag(1, 0); pseudo-inverse diag(1, 0)
    np.testing.assert_allclose(prec, [[1, 0], [0, 0]], atol=1e-12)
    assert detectors.mahalanobis(np.array([[3.0, 5.0]]), means, prec)[0] == pytest.approx(4.0)  # (3-1)² · 1
    sigma_inv = np.linalg.inv(np.array([[2.0, 0.5], [0.5, 1.0]]))
    d = detectors.mahalanobis(np.array([[1.0, 1.0]]), np.array([[0.0, 0.0], [5.0, 5.0]]), sigma_inv)[0]
    assert d == pytest.approx(np.array([1, 1]) @ sigma_inv @ np.array([1, 1]))


def test_lee_preprocessing_hand_computed():
    """A one-block 'network' whose pooled activations are (mean x, −mean x): with one class at the origin and
    precision I, M(x) = 2·mean(x)², whose gradient has the sign of mean(x) in every pixel, so Lee et al.'s step
    moves every pixel by −ε and M(x̂) = 2·(mean(x) − ε)² (and by +ε below zero, clipped at 0)."""
    import keras

    inp = keras.Input((2, 2, 1))
    out = keras.layers.Conv2D(2, 1, use_bias=False, name="relu0_1",
                              kernel_initializer=keras.initializers.Constant(np.array([[[[1.0, -1.0]]]])))(inp)
    model = keras.Model(inp, out)
    lee = detectors.lee_features(model, {"relu0_1": (np.zeros((1, 2)), np.eye(2))}, magnitude=0.01)
    x = np.stack([np.full((2, 2, 1), 0.5), np.full((2, 2, 1), 0.005)]).astype(np.float32)
    np.testing.assert_allclose(lee(x)[:, 0], [2 * 0.49**2, 0.0], rtol=1e-5, atol=1e-7)


def test_nic_features_are_its_invariants_anomaly_scores():
    """NIC (a variant, named so in the chapter): per block, the value invariant's anomaly (−decision function of a
    one-class SVM on the block's activations); per pair of consecutive blocks, the provenance invariant's (the same
    on the two linear probes' class probabilities side by side), recomputed here from scikit-learn by hand."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    rng = np.random.default_rng(0)
    acts = {"b1": rng.normal(size=(60, 3)), "b2": rng.normal(size=(60, 4))}
    pred = (acts["b1"][:, 0] + acts["b2"][:, 1] > 0).astype(int)
    m = detectors.nic_models(acts, pred, seed=0)
    ref = detectors.Reference(layers={}, kd={}, bandwidth=1.0, lid={}, baseline=np.zeros(1), head=np.zeros((1, 1)),
                              nic=m)
    feats = detectors.nic({"layers": acts}, ref)
    assert feats.shape == (60, 3)  # two value invariants, one provenance invariant
    svm = make_pipeline(StandardScaler(), OneClassSVM(nu=0.1, gamma="scale")).fit(acts["b2"])
    np.testing.assert_allclose(feats[:, 1], -svm.decision_function(acts["b2"]))
    probes = {k: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(acts[k], pred) for k in acts}
    both = np.hstack([probes["b1"].predict_proba(acts["b1"]), probes["b2"].predict_proba(acts["b2"])])
    prov = make_pipeline(StandardScaler(), OneClassSVM(nu=0.1, gamma="scale")).fit(both)
    np.testing.assert_allclose(feats[:, 2], -prov.decision_function(both))
    assert ((feats[:, 0] > 0).mean()) == pytest.approx(0.1, abs=0.05)  # ν = 0.1: about a tenth flagged anomalous


def test_energy_and_output_scores():
    z = np.array([[0.0, np.log(3.0)]])
    assert detectors.energy(z)[0] == pytest.approx(-np.log(4.0))
    assert detectors.output_features(z)[0, 0] == pytest.approx(0.75)


def test_folds_never_split_an_image_from_its_twins(monkeypatch):
    """A spy fit sees the image ids of its training rows; no test image (clean or adversarial) is among them."""
    n = 60
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    fold_of = detect.folds(y, 5, seed=1)
    ids = np.arange(n, dtype=float)[:, None]
    cells = [detect.Cell("fgsm", 0.05), detect.Cell("pgd", 0.05)]
    success = {cells[0]: np.arange(n) % 3 != 0, cells[1]: np.ones(n, bool)}
    seen = []

    def spy(x, is_adv, ctx):
        train_ids = set(x[:, 0].astype(int))
        seen.append(train_ids)
        return lambda xx: np.where(np.isin(xx[:, 0].astype(int), list(train_ids)), np.nan, 1.0)

    monkeypatch.setitem(fits.FITS._items, "spy", spy)
    monkeypatch.setitem(detectors.DETECTORS._items, "spy", detectors.DetectorSpec(None, (), "outputs", "spy"))
    oof = detect.cross_validate("spy", ids, {c: ids for c in cells}, success, fold_of)
    for src, per in oof.items():  # a NaN would mean a test image was among the training rows
        assert all(np.isfinite(per[c]).all() for c in ["clean", *protocol.tested(src, cells)])
    # one fit per fold for each distinct training set ("without fgsm" trains on the pgd cell, as "pgd@0.05" does)
    assert len(seen) == 5 * len({tuple(map(str, v)) for v in detect.sources(cells).values()}) == 10
    recs = detect.records("spy", {"fgsm@0.05": oof["fgsm@0.05"]}, success, n_boot=10)
    assert {r["n_adv"] for r in recs if r["cell"] == cells[0]} == {int(success[cells[0]].sum())}  # failures excluded


def test_failed_attacks_are_not_training_positives(monkeypatch):
    got = {}

    def spy(x, is_adv, ctx):
        got.setdefault("pos", []).append(set(x[is_adv == 1, 0].astype(int)))
        return lambda xx: np.zeros(len(xx))

    monkeypatch.setitem(fits.FITS._items, "spy", spy)
    monkeypatch.setitem(detectors.DETECTORS._items, "spy", detectors.DetectorSpec(None, (), "outputs", "spy"))
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    ok = np.arange(20) < 12
    ids = np.arange(20, dtype=float)[:, None]
    detect.cross_validate("spy", ids, {detect.Cell("pgd", 0.1): ids}, {detect.Cell("pgd", 0.1): ok}, detect.folds(y))
    assert all(p <= set(range(12)) for p in got["pos"])


def test_pair_bootstrap_resamples_images_with_their_twins():
    rng = np.random.default_rng(0)
    n = 40
    clean, adv = rng.normal(size=n), rng.normal(1, 1, n)
    pos = rng.random(n) < 0.7
    res = detect.pair_bootstrap(clean, adv, pos, n_boot=200, seed=3)
    lab = np.r_[np.zeros(n), np.ones(pos.sum())]
    assert res["auroc"][0] == pytest.approx(metrics.binary_auc(lab, np.r_[clean, adv[pos]]))
    assert res["tpr_at_5fpr"][0] == pytest.approx(detect.tpr_at_fpr(lab, np.r_[clean, adv[pos]], 0.05))
    counts = detect.protocol._counts(n, 200, 3)
    w = detect.protocol._weighted(clean, adv[pos], counts, counts[:, pos])
    for b in range(5):  # replicate b = the images drawn, each bringing its clean score and its adversarial twin
        idx = np.repeat(np.arange(n), counts[b].astype(int))
        neg, p = clean[idx], adv[idx][pos[idx]]
        lab_b = np.r_[np.zeros(len(neg)), np.ones(len(p))]
        assert w["auroc"][b] == pytest.approx(metrics.binary_auc(lab_b, np.r_[neg, p]))
        assert w["tpr_at_5fpr"][b] == pytest.approx(detect.tpr_at_fpr(lab_b, np.r_[neg, p], 0.05))


def test_perfect_separation_gets_a_wilson_interval_not_zero_width():
    """30 clean scores below 20 adversarial ones: every replicate gives AUROC 1 and TPR 1. Wilson for 20/20:
    lower = n / (n + z²) = 20 / 23.84 = 0.839 (AUROC over min(30, 20) = 20 comparisons; TPR over the 20
    adversarials). Scores that overlap keep the percentile interval."""
    clean, adv = np.zeros(30), np.r_[np.ones(20), np.zeros(10)]
    res = detect.pair_bootstrap(clean, adv, np.arange(30) < 20, n_boot=200, seed=0)
    for m in ("auroc", "tpr_at_1fpr", "tpr_at_5fpr"):
        assert res[m][0] == 1.0 and res[m][1] == pytest.approx(20 / (20 + 1.959964 ** 2), abs=1e-4)
        assert res[m][2] == 1.0
    flipped = detect.pair_bootstrap(np.ones(30), np.zeros(30), np.arange(30) < 20, n_boot=200, seed=0)
    assert flipped["auroc"][:2] == (0.0, 0.0)  # upper = z² / (n + z²) = 3.84 / 23.84
    assert flipped["auroc"][2] == pytest.approx(1.959964 ** 2 / (20 + 1.959964 ** 2), abs=1e-4)
    rng = np.random.default_rng(0)
    mixed = detect.pair_bootstrap(rng.normal(size=30), rng.normal(2, 1, 30), np.ones(30, bool), n_boot=200, seed=0)
    assert 0.5 < mixed["auroc"][1] < mixed["auroc"][0] < mixed["auroc"][2] < 1.0  # the percentile interval


def test_tpr_at_fpr_hand_computed():
    is_adv = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.5, 0.8, 0.95])
    assert detect.tpr_at_fpr(is_adv, score, 0.0) == 0.25  # only 0.95 is above every clean score
    assert detect.tpr_at_fpr(is_adv, score, 0.25) == 1.0


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


def test_a_detector_fitted_on_one_kind_of_example_fails_in_one_line():
    for kind in fits.FITS.names():
        with pytest.raises(ParameterError, match="must hold clean and adversarial examples"):
            fits.fit(kind, np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ParameterError, match="folds need"):
        detect.folds(np.r_[np.zeros(3, int), np.ones(3, int)], 5)


def test_bad_detection_config_fails_in_one_line(tmp_path):
    from advxai.runner import config

    def load(section):
        p = tmp_path / "c.yaml"
        import yaml

        p.write_text(yaml.safe_dump({"detection": {"datasets": [{"name": "pneumoniamnist", "size": 28}], **section}}))
        return config.load_config(p)

    assert load({})["detection"][0]["folds"] == 5
    for section, message in [({"foldz": 5}, "did you mean 'folds'"), ({"detectors": ["lidd"]}, "unknown detector"),
                             ({"folds": 3}, "must be ≥ 5"), ({"attack": {"eps": {"cw2": [0.1]}}}, "not in the grid"),
                             ({"attack": {"names": ["fgsm"], "eps": {"fgsm": [2.0]}}}, "fgsm.0. must be at most 1"),
                             ({"adaptive": {"weigths": [1]}}, "did you mean 'weights'")]:
        with pytest.raises(AdvXAIError, match=message) as err:
            load(section)
        assert "\n" not in str(err.value)


def test_the_worked_settings_facts_follow_the_numbers():
    import pandas as pd

    from advxai.book import detfacts
    from advxai.book.abstract import NOT_IN_BUILD
    from advxai.measure import tables

    def rows(auroc, tpr, base_auroc):
        k = dict(stage="detection", dataset="d_28", model="cnn", attack="pgd", eps=0.05, subset="fooled", run="r")
        out = [tables.row("n_adversarial", 500, n=600, **k), tables.row("fooling_rate", 0.9, (0.88, 0.92), 550,
                                                                        **{**k, "subset": "correct"})]
        for det, a, t in [("dispersion", auroc, tpr), ("mahalanobis", base_auroc, 0.5)]:
            out += [tables.row("auroc", a, (a - 0.005, min(a + 0.005, 1)), 1100, **k, explainer=det, target="held_out"),
                    tables.row("tpr_at_5fpr", t, (t - 0.02, min(t + 0.02, 1)), 1100, **k, explainer=det,
                               target="held_out")]
        return tables.frame(out)

    met = detfacts.worked(rows(0.99, 0.95, 0.8))
    assert met["det-w-goal"] == "met" and met["det-w-compare"] == "higher than"
    assert met["det-w-answer"].startswith("yes, for attacks it never saw") and met["det-w-setting"] == "d_28 · cnn"
    missed = detfacts.worked(rows(0.9, 0.5, 0.95))
    assert missed["det-w-goal"] == "not met"
    assert missed["det-w-distance"] == "AUROC 0.080, TPR 0.400, not above mahalanobis"
    assert missed["det-w-answer"].startswith("partly")
    none = detfacts.worked(pd.DataFrame(columns=tables.COLUMNS))
    assert none["det-w-setting"] == NOT_IN_BUILD and none["det-w-goal"] == "—"
    assert detfacts.settings_table(rows(0.9, 0.5, 0.95)).iloc[0]["goal"] == "not met"


def _oof(scores_by_source: dict) -> dict:
    return {src: {k: np.asarray(v, float) for k, v in per.items()} for src, per in scores_by_source.items()}


def test_family_difference_is_the_paired_auroc_difference_on_the_left_out_families_cells():
    """Hand-computed: 4 clean images, every adversarial twin a success. Detector a ranks the left-out family's
    adversarials above every clean image (AUROC 1); b interleaves them (clean 0, 2, 4, 6 vs adversarial 1, 3, 5, 7:
    AUROC (1 + 2 + 3 + 4) / 16 = 10/16). Difference 1 − 0.625 = 0.375; a seen source is ignored."""
    from advxai.detect.protocol import FAMILY_PREFIX, family_difference

    c = detect.Cell("deepfool", 0.02)
    ok = {c: np.ones(4, bool)}
    src = f"{FAMILY_PREFIX}minimal"
    a = _oof({src: {"clean": [0, 1, 2, 3], c: [10, 11, 12, 13]}, str(c): {"clean": [9, 9, 9, 9], c: [0, 0, 0, 0]}})
    b = _oof({src: {"clean": [0, 2, 4, 6], c: [1, 3, 5, 7]}, str(c): {"clean": [0, 0, 0, 0], c: [9, 9, 9, 9]}})
    d = family_difference(a, b, ok, n_boot=200, seed=0)
    assert d["value"] == pytest.approx(0.375) and d["cells"] == 1 and d["replicates"].shape == (200,)
    assert d["ci_low"] <= 0.375 <= d["ci_high"] and d["ci_high"] <= 1.0
    assert family_difference(_oof({str(c): a[str(c)]}), _oof({str(c): b[str(c)]}), ok) is None  # one family


def test_pooled_over_settings_is_the_mean_with_a_hierarchical_interval():
    """Two settings on one dataset whose replicates are constant (0.1 and 0.3): the estimate is 0.2 and a replicate
    draws both settings with replacement, so it is 0.1, 0.2 or 0.3 — the interval is [0.1, 0.3]. One setting alone:
    its own replicates' percentile interval."""
    from advxai.detect.protocol import pooled_over_settings

    reps = {("d", "cnn"): np.full(50, 0.1), ("d", "resnet"): np.full(50, 0.3)}
    v, lo, hi = pooled_over_settings(reps, {("d", "cnn"): 0.1, ("d", "resnet"): 0.3}, n_boot=400, seed=1)
    assert (v, lo, hi) == pytest.approx((0.2, 0.1, 0.3))
    with_nan = {("d", "cnn"): np.r_[np.full(50, 0.1), np.nan], ("d", "resnet"): np.full(50, 0.3)}
    assert pooled_over_settings(with_nan, {("d", "cnn"): 0.1, ("d", "resnet"): 0.3}, n_boot=400, seed=1) == \
        pytest.approx((0.2, 0.1, 0.3))  # a replicate without an AUROC is dropped, never averaged in
    one = {("d", "cnn"): np.linspace(-1, 1, 401)}
    v, lo, hi = pooled_over_settings(one, {("d", "cnn"): 0.0}, n_boot=4000, seed=0)
    assert v == 0.0 and lo == pytest.approx(-0.95, abs=0.03) and hi == pytest.approx(0.95, abs=0.03)


def test_the_compared_pair_is_chosen_on_the_seen_cells_only():
    """The best map detector and the best other by mean seen AUROC, whatever their held-out numbers say."""
    from advxai.studies.detection import chosen_pair

    c = detect.Cell("pgd", 0.05)
    recs = [{"detector": d, "cell": c, "setting": setting, "auroc": (v, v, v)}
            for d, setting, v in [("gradcam-summary", "seen", 0.90), ("dispersion", "seen", 0.80),
                                  ("dispersion", "held_out", 0.99), ("mahalanobis", "seen", 0.95),
                                  ("msp", "seen", 0.70), ("msp", "held_out", 0.99)]]
    assert chosen_pair(recs) == ("gradcam-summary", "mahalanobis")
    combo = recs + [{"detector": "outputs+explanations", "cell": c, "setting": "seen", "auroc": (0.99,) * 3}]
    assert chosen_pair(combo) == ("gradcam-summary", "mahalanobis")  # a combination reads maps: not "other"
    assert chosen_pair([r for r in recs if r["detector"] in ("msp", "mahalanobis")]) is None  # no map detector


def test_tramers_bound_by_hand():
    """Clean accuracy 0.9, 5 % of clean images flagged, 40 % of correctly classified images evaded: the classifier
    Tramèr's reduction builds is robust at ε/2 on 0.9 · 0.95 · 0.6 = 0.513 of the images."""
    from advxai.detect.bounds import implausible, implied_robust_accuracy

    assert implied_robust_accuracy(0.9, 0.4) == pytest.approx(0.513)
    assert implied_robust_accuracy(0.9, 1.0) == 0.0 and implied_robust_accuracy(1.0, 0.0, fpr=0.0) == 1.0
    assert implausible(0.45, 0.40) and not implausible(0.45, 0.50)
    with pytest.raises(ValueError, match="evasion must lie in"):
        implied_robust_accuracy(0.9, 1.2)


def test_the_tramer_table_sets_each_evasion_beside_the_best_robust_accuracy_at_half_the_radius():
    """Evasion 0.2 [0.1, 0.35] at ε = 8/255 on a model of clean accuracy 0.9: implied 0.684 [0.556, 0.770] at 4/255.
    Measured under AutoAttack on that dataset: 0.30 [0.25, 0.35] at 4/255 (the largest radius ≤ 4/255; 8/255 is
    past it) → implausible. Evasion 1 is no claim: no row."""
    import pandas as pd

    from advxai.book import tramer

    def r(**kw):
        return {"stage": "detection", "dataset": "pneumoniamnist_28", "model": "cnn", "attack": "adaptive",
                "explainer": "gradcam-summary", "target": "best λ", "subset": "fooled", "metric": "evasion_rate",
                "eps": 8 / 255, "value": 0.2, "ci_low": 0.1, "ci_high": 0.35, "n": 40, **kw}

    df = pd.DataFrame([
        r(), r(eps=16 / 255, value=1.0, ci_low=0.9, ci_high=1.0),
        r(stage="train", attack="none", explainer="none", target="none", subset="test", metric="accuracy", eps=0,
          value=0.9, ci_low=0.88, ci_high=0.92, n=624),
        r(stage="robust", model="cnn-at2", attack="autoattack-nofab", explainer="none", target="none",
          subset="test", metric="robust_accuracy", eps=4 / 255, value=0.30, ci_low=0.25, ci_high=0.35, n=500),
        r(stage="robust", model="cnn-at2", attack="autoattack-nofab", explainer="none", target="none",
          subset="test", metric="robust_accuracy", eps=8 / 255, value=0.10, ci_low=0.07, ci_high=0.13, n=500),
    ])
    t = tramer.table(df)
    assert len(t) == 1
    row = t.iloc[0]
    assert row["implied at ε/2"] == "0.68 [0.56, 0.77]" and row.verdict == tramer.IMPLAUSIBLE
    assert row["best measured"].startswith("0.30 [0.25, 0.35] (cnn-at2, ε = 4/255)")
    far = df.assign(value=np.where(df.metric == "robust_accuracy", 0.9, df.value),
                    ci_high=np.where(df.metric == "robust_accuracy", 0.95, df.ci_high))
    assert tramer.table(far).iloc[0].verdict == tramer.CONSISTENT
    few = df.assign(ci_low=np.where(df.metric == "evasion_rate", np.nan, df.ci_low),
                    ci_high=np.where(df.metric == "evasion_rate", np.nan, df.ci_high))
    row = tramer.table(few).iloc[0]  # under ten images: a point, no interval, no verdict (and no crash)
    assert row.verdict == tramer.FEW and row["implied at ε/2"] == "0.68"
