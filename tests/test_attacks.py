import subprocess
import sys

import numpy as np
import pytest

from advxai import attacks
from advxai.errors import ParameterError, UnknownNameError
from advxai.models import train


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_bounded_attacks_change_predictions_within_eps(trained, test_batch, name):
    x, y = test_batch
    x_adv, secs = attacks.generate(trained, x, y, name, 0.1)
    assert x_adv.shape == x.shape and x_adv.min() >= 0 and x_adv.max() <= 1
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6  # ε bounds L∞
    before = train.predict_logits(trained, x).argmax(1)
    after = train.predict_logits(trained, x_adv).argmax(1)
    assert np.mean(before != after) >= 0.25  # it really fools the model
    assert np.mean(after == y) < np.mean(before == y)


def test_eps_zero_is_the_clean_reference(trained, test_batch):
    x, y = test_batch
    assert np.array_equal(attacks.generate(trained, x, y, "fgsm", 0.0)[0], x)


def test_deepfool_sweep_equals_art_at_each_overshoot(trained, test_batch):
    x, y = test_batch
    params = {"max_iter": 20}
    swept = attacks.sweep(trained, x, y, "deepfool", [0.02, 0.1], params, progress=False)
    for eps in (0.02, 0.1):
        direct, _ = attacks.generate(trained, x, y, "deepfool", eps, params)
        np.testing.assert_allclose(swept[eps][0], direct, atol=1e-5)
    fooled = train.predict_logits(trained, swept[0.1][0]).argmax(1) != train.predict_logits(trained, x).argmax(1)
    assert fooled.mean() >= 0.5
    assert not attacks.spec("deepfool").eps_bounded


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan")])
def test_eps_out_of_range(trained, test_batch, eps):
    x, y = test_batch
    with pytest.raises(ParameterError, match=r"ε must lie in \[0, 1\]"):
        attacks.generate(trained, x, y, "fgsm", eps)


def test_bad_names_shapes_and_params(trained, test_batch):
    x, y = test_batch
    with pytest.raises(UnknownNameError, match="unknown attack .jsma.; known: apgd-square, autoattack-nofab, bim, cw"):
        attacks.generate(trained, x, y, "jsma", 0.1)
    with pytest.raises(ParameterError, match="'autoattack' is now autoattack-nofab .*without FAB-T.* or apgd-square"):
        attacks.params_for("autoattack")
    with pytest.raises(ParameterError, match=r"images must be \(N, 28, 28, 1\)"):
        attacks.generate(trained, x[:, :20], y, "fgsm", 0.1)
    with pytest.raises(ParameterError, match="scaled to"):
        attacks.generate(trained, x * 255, y, "fgsm", 0.1)
    with pytest.raises(ParameterError, match="has no parameter"):
        attacks.params_for("pgd", {"steps": 3})


@pytest.mark.parametrize("name, params", [
    ("bim", {}),
    ("uap", {"max_iter": 5}),
    ("apgd-square", {"apgd_iter": 10, "square_iter": 20}),
    ("square", {"max_iter": 200}),
])
@pytest.mark.slow
def test_radarmix_bounded_attacks(trained, pneumonia, test_batch, name, params):
    x, y = test_batch
    fit = attacks.fit_images(pneumonia, "test", 24, seed=1)
    x_adv, _ = attacks.generate(trained, x, y, name, 0.1, params, fit=fit)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    before = train.predict_logits(trained, x).argmax(1)
    after = train.predict_logits(trained, x_adv).argmax(1)
    assert np.mean(before != after) >= 0.25


def test_every_attack_has_a_family():
    """Leave-one-family-out needs each attack's kind; FGSM, BIM and PGD are one family."""
    fams = {n: attacks.spec(n).family for n in attacks.ATTACKS.names()}
    assert set(fams.values()) <= set(attacks.FAMILIES)
    assert fams["fgsm"] == fams["bim"] == fams["pgd"] == "L∞ gradient"
    assert len({fams[n] for n in ("pgd", "deepfool", "cw", "square", "uap")}) == 5


def test_uap_is_one_perturbation_fitted_on_other_images(trained, pneumonia, test_batch):
    x, y = test_batch
    with pytest.raises(ParameterError, match="pass fit=.*another split"):
        attacks.generate(trained, x, y, "uap", 0.05, {"max_iter": 3})
    x_fit, _ = fit = attacks.fit_images(pneumonia, "test", 24, seed=0)
    x_val = pneumonia.split("val")[0]
    assert all(np.abs(x_val - f).reshape(len(x_val), -1).max(1).min() == 0 for f in x_fit[:3])  # from val
    assert not any(np.abs(x - f).reshape(len(x), -1).max(1).min() == 0 for f in x_fit)  # not the scored ones
    x_adv, _ = attacks.generate(trained, x, y, "uap", 0.05, {"max_iter": 3}, fit=fit)
    inside = (x > 0.06) & (x < 0.94)  # away from the clip bounds the same δ must appear everywhere
    deltas = (x_adv - x)[:, inside.all(axis=0)]
    np.testing.assert_allclose(deltas, np.broadcast_to(deltas[0], deltas.shape), atol=1e-5)


def test_cw_changes_predictions_with_small_l2_and_ignores_eps(trained, test_batch):
    x, y = test_batch
    swept = attacks.sweep(trained, x, y, "cw", [0.01, 0.1], {"max_iter": 10, "binary_search_steps": 3},
                          progress=False)
    assert np.array_equal(swept[0.01][0], swept[0.1][0])
    x_adv = swept[0.1][0]
    fooled = train.predict_logits(trained, x_adv).argmax(1) != train.predict_logits(trained, x).argmax(1)
    assert fooled.mean() >= 0.25
    l2 = np.sqrt(((x_adv - x) ** 2).reshape(len(x), -1).sum(1))
    assert np.median(l2[fooled]) < 2.0  # minimal perturbations: far below FGSM-0.1's ≈ 2.8


def test_pgd_starts_at_random_and_bim_does_not(trained, test_batch):
    x, y = test_batch
    one = {"max_iter": 1, "step_ratio": 1e-6}  # one tiny step: what is left is the start
    pgd, _ = attacks.generate(trained, x, y, "pgd", 0.05, one, seed=0)
    bim, _ = attacks.generate(trained, x, y, "bim", 0.05, one, seed=0)
    assert np.abs(pgd - x).mean() > 0.01 > np.abs(bim - x).max()
    other, _ = attacks.generate(trained, x, y, "pgd", 0.05, one, seed=1)
    assert not np.array_equal(pgd, other)
    assert attacks.params_for("pgd", {"eps_step": 0.01})["eps_step"] == 0.01


def test_linf_projection_is_exact_in_float32(rng):
    x = rng.random((50, 8, 8, 1)).astype(np.float32)
    far = x + rng.choice([-1, 1], x.shape).astype(np.float32) * 0.0300001
    for eps in (0.01, 0.03, 0.075):
        out = attacks.project_linf(x, far, eps)
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        assert attacks.check_budget(x, out, eps, "test") <= eps * (1 + 1e-6)
    with pytest.raises(attacks.BudgetError, match=r"max ‖δ‖∞ = 0\.0300\d* > ε"):
        attacks.check_budget(x, far, 0.03, "test")


_FRESH = """
import hashlib, sys, numpy as np
from advxai import attacks, data, models
ds = data.load("pneumoniamnist", 28)
x, y = ds.split("test"); idx = data.balanced_subset(y, 16, 0)
net = models.build("cnn", ds.input_shape, 2, width=8, seed=0)
np.random.seed(int(sys.argv[2]))  # a different global state in each process: only the run's seed may matter
x_adv, _ = attacks.generate(net, x[idx], y[idx], sys.argv[1], 0.05, {"uap": {"max_iter": 2},
                            "apgd-square": {"apgd_iter": 5, "square_iter": 10}}[sys.argv[1]],
                            seed=7, fit=attacks.fit_images(ds, "test", 16, 0))
print(hashlib.sha256(x_adv.tobytes()).hexdigest())
"""


@pytest.mark.parametrize("name", ["uap", "apgd-square"])  # apgd-square runs ART's Square: the same seeding
@pytest.mark.slow
def test_stochastic_attacks_are_byte_identical_across_fresh_processes(data_root, name):
    digests = {subprocess.run([sys.executable, "-c", _FRESH, name, str(k)], capture_output=True, text=True,
                              check=True).stdout.strip() for k in (1, 2)}
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_sigma_units_are_the_seeds_normalised_budget_unclipped(trained, test_batch):
    """Faithful RADAR-MIX: ε in ImageNet-σ units (ε·σ_c on pixels, about a quarter of ε) with no [0, 1] clip."""
    x, y = test_batch
    x_adv, _ = attacks.generate(trained, x, y, "pgd", 0.1, seed=0, units="sigma")
    budget = 0.1 * 0.226  # the mean ImageNet σ
    d = np.abs(x_adv.astype(np.float64) - x)
    assert d.max() <= budget * (1 + 1e-5) and d.max() > 0.9 * budget
    assert x_adv.min() < 0 or x_adv.max() > 1  # nothing clipped to the image range
    assert attacks.eps_in_pixels(0.1, "sigma") == pytest.approx(0.0226) and attacks.eps_in_pixels(0.1) == 0.1
    with pytest.raises(ParameterError, match="σ units .* not 'deepfool'"):
        attacks.generate(trained, x, y, "deepfool", 0.1, units="sigma")
    with pytest.raises(ParameterError, match="unknown ε units 'bits'"):
        attacks.generate(trained, x, y, "fgsm", 0.1, units="bits")


def test_compiled_cw_equals_arts(trained, test_batch):
    """The compiled C&W-L2 is ART's CarliniL2Method (``cw-art``) step for step: the same images fooled and the
    same adversarial images to float rounding (tolerance 1e-4 per pixel), at the registry's defaults."""
    x, y = test_batch
    ours, _ = attacks.generate(trained, x, y, "cw", 0.0)
    reference, _ = attacks.generate(trained, x, y, "cw-art", 0.0)
    fooled = lambda xa: train.predict_logits(trained, xa).argmax(1) != y  # noqa: E731
    assert fooled(reference).sum() >= len(x) // 2  # a real attack, not a no-op
    assert np.array_equal(fooled(ours), fooled(reference))
    np.testing.assert_allclose(ours, reference, atol=1e-4)


@pytest.mark.slow
def test_autoattack_nofab_is_no_weaker_than_pgd_100(trained, test_batch):
    """On a real trained model at an ε where ART's PGD-100 fools some images and not all: the ensemble's robust
    accuracy is no higher than PGD's, every image it fools is attributed to the member that fooled it first, and
    the budget holds (binary task: APGD-CE and Square, no APGD-T)."""
    x, y = test_batch
    eps = 0.01
    clean = train.predict_logits(trained, x).argmax(1) == y
    x_pgd, _ = attacks.generate(trained, x, y, "pgd", eps, {"max_iter": 100, "step_ratio": 0.025}, seed=0)
    x_aa, _ = attacks.generate(trained, x, y, "autoattack-nofab", eps, {"square_iter": 100}, seed=0)
    pgd_ok = train.predict_logits(trained, x_pgd).argmax(1) == y
    aa_ok = train.predict_logits(trained, x_aa).argmax(1) == y
    assert 0 < pgd_ok.sum() < clean.sum(), "pick an ε where PGD-100 fools some images and not all"
    assert aa_ok.sum() <= pgd_ok.sum() and not np.any(aa_ok & ~clean)
    assert np.abs(x_aa - x).max() <= eps + 1e-6


def test_first_success_keeps_each_images_first_fooling_member_and_targets_other_classes():
    """The ensemble runner's bookkeeping, with a stand-in classifier (image i holds its index; adding 100 marks it
    attacked, which moves its top logit to another class): a member sees only the images still classified
    correctly, an image keeps the first member that fooled it, and a targeted member is asked for each image's
    most likely other class, then its second (never its own)."""
    logits = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 3], [3, 2, 0], [0, 1, 4], [2, 5, 1]], np.float32)

    class Stand:
        nb_classes = 3

        def predict(self, x):
            v = x.reshape(len(x), -1)[:, 0]
            out = logits[(v % 100).astype(int)].copy()
            out[v >= 100] = np.roll(out[v >= 100], 1, axis=1)
            return out

    calls = []

    class Member:
        def __init__(self, *fool):
            self.fool = list(fool)

        def generate(self, x, y):
            ids = x.reshape(len(x), -1)[:, 0].astype(int)
            calls.append((ids.tolist(), y.argmax(1).tolist()))
            hit = np.isin(ids, list(self.fool.pop(0)))
            return x + 100 * hit[:, None, None, None]

    x = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1)
    y = np.eye(3, dtype=np.float32)[logits.argmax(1)]
    ens = attacks.evasion.FirstSuccess(Stand(), [("a", Member({0, 1, 2}), 0), ("b", Member({2, 3}, {4}), 2)])
    x_adv = ens.generate(x, y)
    assert ens.first.tolist() == ["a", "a", "a", "b", "b", ""]
    assert calls[0][0] == [0, 1, 2, 3, 4, 5] and calls[1][0] == [3, 4, 5] and calls[2][0] == [4, 5]
    assert calls[1][1] == [1, 1, 0] and calls[2][1] == [0, 2]  # most likely other class, then the second
    assert (x_adv[:5, 0, 0, 0] >= 100).all() and x_adv[5, 0, 0, 0] == 5


@pytest.mark.slow
def test_compiled_autoattack_is_no_weaker_than_art_pgd_100_nor_arts_ensemble(trained, test_batch):
    """The robustness stage's compiled ensemble (advxai.attacks.autoattack) on the same real model and ε as the ART
    test above: its robust accuracy is no higher than ART's PGD-100 or ART's own ensemble at the same budgets, and
    the budget holds."""
    from advxai.attacks import autoattack

    x, y = test_batch
    eps = 0.01
    ok = lambda xa: train.predict_logits(trained, xa).argmax(1) == y  # noqa: E731
    x_pgd, _ = attacks.generate(trained, x, y, "pgd", eps, {"max_iter": 100, "step_ratio": 0.025}, seed=0)
    x_art, _ = attacks.generate(trained, x, y, "autoattack-nofab", eps, {"square_iter": 100}, seed=0)
    x_aa, _ = autoattack.robust_generate(trained, x, y, "autoattack-nofab", eps, {"square_iter": 100}, seed=0)
    assert 0 < ok(x_pgd).sum() < ok(x).sum(), "pick an ε where PGD-100 fools some images and not all"
    assert ok(x_aa).sum() <= min(ok(x_pgd).sum(), ok(x_art).sum()) and not np.any(ok(x_aa) & ~ok(x))
    assert np.abs(x_aa - x).max() <= eps + 1e-6
    again, _ = autoattack.robust_generate(trained, x, y, "autoattack-nofab", eps, {"square_iter": 100}, seed=0)
    assert np.array_equal(again, x_aa)  # seeded: the same call gives the same bytes
    clean, secs = autoattack.robust_generate(trained, x, y, "autoattack-nofab", 0.0, seed=0)
    assert np.array_equal(clean, x) and secs == 0.0  # ε = 0 is the clean reference, as in attacks.generate


@pytest.mark.slow
def test_compiled_square_and_apgd_each_fool_where_arts_do(trained, pneumonia):
    """Each compiled member alone, against ART's member at the same budget on 60 real test images at an ε where
    neither fools every image: the authors' Square (per-image signs) fools at least as many images as ART's Square
    minus two (a random search: a small tolerance), and APGD-CE at least as many as ART's APGD-CE minus one."""
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    from advxai import data
    from advxai.attacks import autoattack

    x, y = pneumonia.split("test")
    idx = data.balanced_subset(y, 60, seed=1)
    x, y = x[idx], y[idx]
    eps = 0.01
    clf = attacks.classifier(trained)
    onehot = np.eye(2, dtype=np.float32)[y]
    fooled = lambda xa: int((train.predict_logits(trained, xa).argmax(1) != y).sum())  # noqa: E731
    np.random.seed(0)
    art_sq = SquareAttack(clf, eps=eps, max_iter=200, p_init=0.8, nb_restarts=1, verbose=False).generate(x, onehot)
    ours_sq = autoattack.square(trained, x, y, eps, n_iter=200, seed=0)
    art_apgd = AutoProjectedGradientDescent(clf, eps=eps, eps_step=2 * eps, max_iter=50, nb_random_init=1,
                                            loss_type="cross_entropy", verbose=False).generate(x, onehot)
    ours_apgd = autoattack.apgd(trained, x, y, eps, n_iter=50, seed=0)
    assert 0 < fooled(art_sq) < len(x) and fooled(ours_sq) >= fooled(art_sq) - 2
    assert fooled(ours_apgd) >= fooled(art_apgd) - 1
    for xa in (ours_sq, ours_apgd):
        assert np.abs(xa - x).max() <= eps + 1e-6 and xa.min() >= 0 and xa.max() <= 1


def test_pgd_restarts_fool_the_union_of_their_starts(trained, test_batch):
    """PGD with restarts attacks, from each fresh start, only the images no earlier start fooled: it fools every
    image its first start fools, and at least as many in all."""
    from advxai.attacks import autoattack, compiled

    x, y = test_batch
    eps = 0.006
    first = compiled.pgd(trained, x, y, eps, 20, 0.1, None, 1, np.random.SeedSequence([0, 0]))
    multi = autoattack.pgd_restarts(trained, x, y, eps, seed=0, max_iter=20, num_random_init=4)
    fooled = lambda xa: train.predict_logits(trained, xa).argmax(1) != y  # noqa: E731
    assert np.all(fooled(multi) >= fooled(first)) and fooled(multi).sum() >= fooled(first).sum()


def test_robust_accuracy_is_nested_in_eps(trained, test_batch):
    """The robustness stage runs ε ascending and nested: an image fooled at a smaller ε keeps that adversarial (and
    is not attacked again), so robust accuracy never rises with ε; each ε's seconds row counts the images attacked."""
    from advxai.studies import robustness

    x, y = test_batch
    eps = [0.004, 0.002, 0.008]  # given unsorted: the stage sorts them
    rows, robust, advs = robustness.robust_rows(trained, x, y, {"pgd": {"max_iter": 10, "num_random_init": 1}},
                                                eps, seed=0, base={}, log=lambda _: None)
    ok = train.predict_logits(trained, x).argmax(1) == y
    small, mid, big = (robust["pgd", e] for e in sorted(eps))
    assert np.all(mid <= small) and np.all(big <= mid) and (small & ~big).any()
    broken = ok & ~small
    assert np.array_equal(advs["pgd", 0.004][broken], advs["pgd", 0.002][broken])
    attacked = {r["eps"]: r["n"] for r in rows if r["metric"] == "seconds"}
    assert attacked == {0.002: len(x), 0.004: len(x) - broken.sum(), 0.008: len(x) - (ok & ~mid).sum()}
    assert np.abs(advs["pgd", 0.008] - x).max() <= 0.008 + 1e-6


def test_robust_rows_attack_nothing_once_every_image_is_fooled(trained, test_batch, monkeypatch):
    """When every correctly classified image is fooled at the smallest ε, the larger ε keep those adversarials and
    attack no image (no empty batch reaches an attack): robust accuracy 0 and 0 images attacked. The 'attack' here
    swaps each image for a real test image the model puts in another class (a control-flow test of the nesting)."""
    from advxai.studies import robustness

    x, y = test_batch
    pred = train.predict_logits(trained, x).argmax(1)
    keep = np.flatnonzero(pred == y)
    x, y, pred = x[keep], y[keep], pred[keep]
    assert len(set(y)) == 2  # both classes among the correct images
    calls = []

    def swap(net, xb, yb, name, e, params, seed):
        calls.append(len(xb))
        other = np.array([np.flatnonzero(pred != c)[0] for c in yb])  # an image the model puts in another class
        return x[other], 1.0

    monkeypatch.setattr(robustness, "robust_generate", swap)
    rows, robust, _ = robustness.robust_rows(trained, x, y, {"pgd": {}}, [0.002, 0.004], seed=0, base={},
                                             log=lambda _: None)
    assert calls == [len(x)] and not robust["pgd", 0.002].any() and not robust["pgd", 0.004].any()
    assert {r["eps"]: (r["n"], r["value"]) for r in rows if r["metric"] == "seconds"} == {0.002: (len(x), 1.0),
                                                                                         0.004: (0, 0.0)}


def test_apgd_schedule_and_targeted_dlr_by_hand():
    """APGD's step-size checks (Croce & Hein 2020: after 22 % of the budget, then 3 % less each time, at least 6 %)
    and the targeted DLR ratio on hand-computed logits."""
    import tensorflow as tf

    from advxai.attacks import autoattack

    assert list(np.cumsum(autoattack.checkpoint_lengths(100))) == [22, 41, 57, 70, 80, 87, 93, 99]
    z = tf.constant([[4.0, 1.0, 3.0, 0.0, 2.0]])  # sorted: 4, 3, 2, 1, 0 → π1 = 4, π3 = 2, π4 = 1
    value = autoattack.dlr_targeted(z, tf.constant([0]), tf.constant([2])).numpy()
    assert np.isclose(value[0], -(4.0 - 3.0) / (4.0 - (2.0 + 1.0) / 2))
