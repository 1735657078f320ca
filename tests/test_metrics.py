import numpy as np
import pytest
from sklearn import metrics as skm

from advxai.errors import ParameterError
from advxai.measure import metrics as M


def test_psnr_hand_computed():
    a = np.zeros((8, 8))
    assert M.psnr(a, a + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1/0.01)
    assert M.psnr(a, a) == float("inf")


def test_ssim_matches_the_formula_on_one_window(rng):
    a, b = rng.random((7, 7)), rng.random((7, 7))
    c1, c2 = 0.01**2, 0.03**2
    ma, mb = a.mean(), b.mean()
    va, vb = a.var(ddof=1), b.var(ddof=1)
    cov = ((a - ma) * (b - mb)).sum() / 48
    hand = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    assert M.ssim(a, b) == pytest.approx(hand, rel=1e-9)
    assert M.nissim(a, b) == pytest.approx((1 - hand) / 2)
    assert M.nissim(a, a) == 0.0


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ParameterError, match="shapes differ"):
        M.ssim(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ParameterError, match="too small"):
        M.ssim(np.zeros((2, 2)), np.zeros((2, 2)))


def test_classification_metrics_hand_computed():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = M.classification_metrics(y, probs)
    assert m["accuracy"] == 0.75
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(0.8)
    assert m["specificity"] == 0.5
    assert m["mcc"] == pytest.approx(2 / np.sqrt(12))
    assert m["auc"] == 1.0  # every positive scores above every negative


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_agree_with_sklearn(rng, k):
    y = rng.integers(0, k, 300)
    probs = rng.dirichlet(np.ones(k), 300)
    probs[np.arange(300), y] += 0.3 * rng.random(300)  # better than chance
    probs /= probs.sum(1, keepdims=True)
    pred = probs.argmax(1)
    avg = "binary" if k == 2 else "macro"
    m = M.classification_metrics(y, probs)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average=avg))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average=avg))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))


def test_attack_outcomes():
    y = np.array([0, 1, 1, 0])
    clean = np.array([0, 1, 0, 0])
    adv = np.array([1, 1, 1, 0])
    # images 0, 1, 3 are correct; of those, image 0 changes: FR = 1/3. Over all four, 0 and 2 change.
    assert M.fooling_rate(y, clean, adv) == pytest.approx(1 / 3)
    assert M.flip_rate(clean, adv) == 0.5  # counts image 2, wrong before and flipped back to its true class
    assert M.attack_success_rate(y, adv) == 0.25
    x = np.zeros((2, 2, 2, 1))
    d = M.perturbation_norms(x, x + np.array([0.1, 0.3]).reshape(2, 1, 1, 1))
    assert d["linf"] == pytest.approx([0.1, 0.3]) and d["l2"] == pytest.approx([0.2, 0.6])


def test_mod_vid_and_the_seeds_vid():
    v = np.array([0.1, 0.2, 0.3])
    assert M.mod(v) == pytest.approx(0.2)
    assert M.vid(v) == pytest.approx(np.sqrt(0.02 / 3))
    # seed: mh = 0.6 / 0.1 = 6; (sum(v - 6))^2 / 0.1 = 17.4^2 / 0.1
    assert M.vid_seed(v, 0.1) == pytest.approx(np.sqrt(17.4**2 / 0.1))
    with pytest.raises(ParameterError):
        M.vid_seed(v, 0.0)


def test_faithful_heatmap_nissim_uses_overlays(rng):
    maps = rng.random((2, 16, 16))
    imgs = rng.random((2, 16, 16, 1))
    same = M.heatmap_nissim(maps, maps, imgs, imgs, faithful=True)
    assert same == pytest.approx([0, 0], abs=1e-12)
    ov = M.jet_overlay(imgs[0], maps[0])
    assert ov.shape == (224, 224, 3) and ov.dtype == np.uint8
    assert ov.max() > 240 and ov.min() < 15  # min–max rescaled to the full 0–255 range before resizing
    moved = M.heatmap_nissim(maps, maps[::-1], imgs, imgs, faithful=True)
    assert np.all(moved > 0)
    with pytest.raises(ParameterError, match="needs the clean and attacked images"):
        M.heatmap_nissim(maps, maps, faithful=True)


def test_bootstrap_interval(rng):
    v = rng.normal(0.5, 0.1, 400)
    lo, hi = M.bootstrap_ci(v, seed=1)
    assert lo < v.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / 20, rel=0.2)  # ≈ normal-theory width
    assert M.bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))
    many = M.bootstrap_many((np.array([0, 1] * 20), rng.dirichlet([1, 1], 40)), M.classification_metrics, 200)
    assert set(many) >= {"accuracy", "auc", "mcc"} and all(a <= b for a, b in many.values())


def test_explanation_shift_metrics_hand_computed():
    a = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.3, 0.0, 0.0]])
    b = np.array([[0.9, 0.0, 0.8, 0.0], [0.2, 0.3, 0.0, 0.0]])
    # top 25 % = 2 of 8 pixels: a -> {(0,0), (0,1)}, b -> {(0,0), (0,2)}: ∩ 1, ∪ 3
    assert M.iou(a, b, k=0.25) == pytest.approx(1 / 3)
    assert M.topk_intersection(a, b, k=0.25) == pytest.approx(1 / 2)
    # > 0 (the seed's binarisation): a has 5 positive pixels, b 4, all shared -> 4 / 5
    assert M.iou(a, b, faithful=True) == pytest.approx(4 / 5)
    assert M.iou(a, a, k=0.5) == 1.0 and M.topk_intersection(a, a) == 1.0
    assert M.spearman(a, a) == pytest.approx(1.0) and M.spearman(a, -a) == pytest.approx(-1.0)
    assert M.is_blank(np.zeros_like(a)) and M.is_blank(np.full_like(a, 0.3)) and not M.is_blank(a)
    assert np.isnan(M.spearman(a, np.zeros_like(a)))
    with pytest.raises(ParameterError, match="top-k fraction"):
        M.topk_mask(a, 0)


def test_faithful_iou_saturates_on_gradcam_like_maps(rng):
    a, b = rng.random((16, 16)) + 0.01, rng.random((16, 16)) + 0.01  # positive everywhere, unrelated
    assert M.iou(a, b, faithful=True) == 1.0  # the seed's > 0 IoU cannot see any change
    assert M.iou(a, b, k=0.1) < 0.3


def test_localisation_hand_computed():
    s = np.array([[0.0, 0.5], [0.3, 0.2]])
    m = np.array([[0, 1], [0, 1]])
    assert M.mask_energy(s, m) == pytest.approx(0.7)
    assert M.pointing_hit(s, m) == 1.0
    assert M.pointing_hit(s, 1 - m) == 0.0
    assert np.isnan(M.mask_energy(np.zeros((2, 2)), m))


def test_auc_equals_scikit_learn_binary_and_multiclass(rng):
    from sklearn.metrics import roc_auc_score

    y2 = rng.integers(0, 2, 80)
    p2 = rng.dirichlet(np.ones(2), 80).round(1)  # rounded: ties included
    assert np.isclose(M.auc(y2, p2), roc_auc_score(y2, p2[:, 1]))
    y7 = rng.integers(0, 7, 200)
    p7 = rng.dirichlet(np.ones(7), 200)
    assert np.isclose(M.auc(y7, p7), roc_auc_score(y7, p7, multi_class="ovr", average="macro", labels=np.arange(7)))


def test_reproduction_verdicts_follow_the_interval():
    from advxai.book.reproduction import verdict

    assert verdict((0.93, 0.93), (0.90, 0.95), 0.05) == "yes"
    assert verdict((0.859, 0.889), (0.76, 0.83), 0.05) == "partially (ours lower)"  # misses by 0.029
    assert verdict((0.75, 0.75), (0.46, 0.52), 0.05) == "no (ours lower)"
    assert verdict((0.93, 0.93), (1.0, 1.0), 0.05) == "no (ours higher)"
    assert verdict((0.9, 1.0), (0.5, 0.89), 0.0) == "no (ours lower)"


def test_topk_keeps_every_tie_at_the_threshold():
    flat = np.zeros((4, 4))
    assert M.topk_mask(flat, 0.1).all()  # no position wins a tie: the whole flat map is "top"
    s = np.array([[0.9, 0.5, 0.5], [0.5, 0.1, 0.0], [0.0, 0.0, 0.0]])
    # top 2 of 9: 0.9 and then a three-way tie at 0.5 -> all four kept, none chosen by position
    assert M.topk_mask(s, 2 / 9).sum() == 4
    shifted = np.roll(s, 1, axis=1)
    assert M.topk_mask(shifted, 2 / 9).sum() == 4


def test_wilson_interval_hand_computed():
    lo, hi = M.wilson_ci(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.963, abs=5e-4)  # not [1, 1]
    lo, hi = M.wilson_ci(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.037, abs=5e-4)
    # p̂ = 0.5, n = 10, z = 1.95996: centre 0.5, half = z·sqrt(0.025 + z²/400)/(1 + z²/10)
    z = 1.959963984540054
    half = z * np.sqrt(0.025 + z * z / 400) / (1 + z * z / 10)
    assert M.wilson_ci(5, 10) == pytest.approx((0.5 - half, 0.5 + half))
    assert all(np.isnan(M.wilson_ci(0, 0)))


def test_rows_intervals_and_subsets():
    from advxai.errors import ParameterError as PE
    from advxai.measure import tables

    r = tables.proportion_row("fooling_rate", np.ones(100, bool), stage="attack", subset="correct")
    assert r["value"] == 1.0 and r["ci_high"] - r["ci_low"] > 0.03 and r["n"] == 100
    few = tables.mean_row("iou", np.full(6, 0.5), stage="radarmix", subset="fooled")
    assert few["n"] == 6 and np.isnan(few["ci_low"]) and np.isnan(few["ci_high"])  # too few: no interval
    with pytest.raises(PE, match="non-finite"):
        tables.mean_row("spearman", np.array([0.1, np.nan]), stage="radarmix", subset="attacked")
    with pytest.raises(PE, match="unknown subset"):
        tables.frame([tables.row("accuracy", 0.5, stage="attack", subset="everything")])
    df = tables.frame([tables.row("accuracy", 0.5, stage="attack", subset="attacked")] * 2)
    assert len(tables.duplicates(df)) == 2


def test_subset_masks_hand_computed():
    from advxai.measure.subsets import masks

    y = np.array([0, 1, 1, 0, 1])
    clean = np.array([0, 1, 0, 0, 1])
    adv = np.array([1, 1, 1, 0, 0])
    m = masks(y, clean, adv)
    assert m["correct"].tolist() == [True, True, False, True, True]
    assert m["fooled"].tolist() == [True, False, False, False, True]
    assert m["not_fooled"].tolist() == [False, True, False, True, False]


def test_shift_rows_count_blank_maps_and_split_by_fooling(rng):
    from advxai.measure import evaluation as E

    clean = rng.random((12, 8, 8))
    adv = clean.copy()
    adv[:4] = rng.random((4, 8, 8))
    adv[4] = 0.0  # a blank attacked map
    y = np.zeros(12, int)
    pred_adv = np.r_[np.ones(4, int), np.zeros(8, int)]  # the four moved maps are the fooled images
    split = E.split_masks(y, np.zeros(12, int), pred_adv)
    rows = {(r["subset"], r["metric"]): r for r in E.shift_rows(clean, adv, split, stage="radarmix")}
    assert rows[("attacked", "blank_pairs")]["value"] == 1 and rows[("attacked", "iou")]["n"] == 11
    assert rows[("fooled", "iou")]["n"] == 4 and rows[("not_fooled", "iou")]["n"] == 7
    assert rows[("not_fooled", "iou")]["value"] == 1.0 > rows[("fooled", "iou")]["value"]


def test_shift_and_localisation_rows_of_one_cell_never_share_keys(rng):
    """Both count blank maps of the same (attack, ε, explainer, target) cell: under different metric names."""
    from advxai.measure import evaluation as E
    from advxai.measure import tables

    clean, adv = rng.random((12, 8, 8)), rng.random((12, 8, 8))
    masks = rng.random((12, 8, 8)) > 0.5
    split = E.split_masks(np.zeros(12, int), np.zeros(12, int), np.r_[np.ones(6, int), np.zeros(6, int)])
    keys = dict(stage="radarmix", dataset="d", model="m", attack="pgd", eps=0.05, explainer="gradcam",
                target="predicted")
    rows = E.shift_rows(clean, adv, split, **keys) + E.localisation_rows(adv, masks, **keys)
    assert tables.duplicates(tables.frame(rows)).empty
