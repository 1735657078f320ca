import numpy as np
import pytest

from advxai import explain, models
from advxai.errors import ParameterError, UnknownNameError
from advxai.models import train


@pytest.mark.parametrize("name", ["gradcam", "gradcam++"])
def test_maps_shaped_normalised_and_deterministic(trained, test_batch, name):
    x, _ = test_batch
    maps = explain.explain(name, trained, x, batch_size=10, progress=False)
    assert maps.shape == (len(x), 28, 28) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert np.mean(maps.max(axis=(1, 2)) > 0.99) > 0.9  # per-image normalisation reaches 1
    assert np.array_equal(maps, explain.explain(name, trained, x, batch_size=10, progress=False))  # deterministic
    np.testing.assert_allclose(maps, explain.explain(name, trained, x, batch_size=7, progress=False), atol=1e-4)


def test_compiled_gradcam_agrees_with_tf_keras_vis(trained, test_batch):
    x, _ = test_batch
    ours = explain.explain("gradcam", trained, x, progress=False)
    reference = explain.explain("gradcam-tfkv", trained, x, progress=False)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_gradcam_follows_the_target_class(trained, test_batch):
    x, _ = test_batch
    pred = train.predict_logits(trained, x).argmax(1)
    own = explain.explain("gradcam", trained, x, pred, progress=False)
    other = explain.explain("gradcam", trained, x, 1 - pred, progress=False)
    assert not np.allclose(own, other)


def test_last_conv_layer_of_registry_models():
    assert models.last_conv_layer(models.build("cnn", (28, 28, 1), 2)) == "relu2_1"
    assert models.last_conv_layer(models.build("vgg16", (32, 32, 1), 2)) == "block5_conv3"
    assert models.last_conv_layer(models.build("resnet50", (64, 64, 3), 3)) == "conv5_block3_out"


def test_bad_explainer_inputs(trained, test_batch):
    x, _ = test_batch
    known = r"unknown explainer .occlusion.; known: gradcam, gradcam\+\+, gradcam-tfkv, lime"
    with pytest.raises(UnknownNameError, match=known):
        explain.explain("occlusion", trained, x)
    with pytest.raises(ParameterError, match="images must be"):
        explain.explain("gradcam", trained, x[..., 0])
    with pytest.raises(ParameterError, match="images must be"):
        explain.explain("lime", trained, x[:, :14, :14], progress=False)  # LIME on an image of the wrong shape
    with pytest.raises(ParameterError, match="targets for"):
        explain.explain("gradcam", trained, x, np.zeros(3, int))


@pytest.mark.parametrize("name, kw", [("shap", {"nsamples": 50, "n_background": 16}),
                                      ("lime", {"num_samples": 200})])
def test_shap_and_lime_maps(trained, test_batch, name, kw):
    x, _ = test_batch
    x = x[:6]
    maps = explain.explain(name, trained, x, progress=False, seed=1, **kw)
    assert maps.shape == (6, 28, 28) and maps.min() >= 0 and maps.max() <= 1
    assert np.all(maps.max(axis=(1, 2)) == 1.0)  # some evidence for the predicted class in every image
    assert np.array_equal(maps, explain.explain(name, trained, x, progress=False, seed=1, **kw))  # seeded


def test_lime_paints_at_most_the_top_superpixels(trained, test_batch):
    x, _ = test_batch
    maps = explain.explain("lime", trained, x[:4], progress=False, num_samples=200, num_features=5, n_segments=50)
    for m in maps:  # each painted superpixel carries its own LIME weight: at most 5 distinct positive values
        assert 1 <= len(np.unique(m[m > 0])) <= 5


def test_explainers_reject_wrong_channel_count(trained, test_batch):
    x, _ = test_batch
    with pytest.raises(ParameterError, match="images must be"):
        explain.explain("lime", trained, np.repeat(x, 2, axis=-1))


def test_explanation_targets_and_reuse(trained, test_batch, monkeypatch):
    """`clean` explains the clean class on both images; maps of the same image and class are computed once."""
    from advxai import attacks

    x, y = test_batch
    x_adv, _ = attacks.generate(trained, x, y, "fgsm", 0.1)
    pc = train.predict_logits(trained, x).argmax(1)
    pa = train.predict_logits(trained, x_adv).argmax(1)
    calls = []
    real = explain.explain
    monkeypatch.setattr(explain.base, "explain", lambda name, m, imgs, t, **kw: calls.append(len(imgs)) or
                        real(name, m, imgs, t, **kw))
    out = explain.explain_versions("gradcam", trained, x, y, {"fgsm": x_adv[None]}, {"clean": pc, "fgsm": pa[None]},
                                   ["predicted", "clean", "label"], progress=False)
    flipped = pa != pc
    assert 0 < flipped.sum() < len(x)
    # predicted: clean map (all) + attacked (all); clean target: only the flipped attacked images are new;
    # label: the clean images where the label differs from the prediction, and attacked ones likewise
    assert calls[:3] == [len(x), len(x), int(flipped.sum())]
    np.testing.assert_array_equal(out["clean"]["fgsm"][0][~flipped], out["predicted"]["fgsm"][0][~flipped])
    np.testing.assert_allclose(out["clean"]["fgsm"][0], real("gradcam", trained, x_adv, pc, progress=False), atol=1e-6)
    np.testing.assert_allclose(out["label"]["clean"], real("gradcam", trained, x, y, progress=False), atol=1e-6)
    with pytest.raises(UnknownNameError, match="unknown explanation target 'true'"):
        explain.explain_versions("gradcam", trained, x, y, {}, {"clean": pc}, ["true"])


def test_compiled_gradcam_is_keyed_by_the_model_object(trained, test_batch):
    x, _ = test_batch
    first = explain.explain("gradcam", trained, x, progress=False)
    other = models.build("cnn", (28, 28, 1), 2, width=8, seed=5)
    assert not np.allclose(explain.explain("gradcam", other, x, progress=False), first)
    np.testing.assert_allclose(explain.explain("gradcam", trained, x, progress=False), first, atol=1e-5)


def _shap_draws(rseed: int, n: int, nsamples: int, n_background: int):
    """shap's GradientExplainer draws: ``np.random.seed(rseed)``, then for each image in order and each sample a
    background index (``np.random.choice``) and an interpolation point (``np.random.uniform``)."""
    state = np.random.RandomState(rseed)
    index, t = np.zeros((n, nsamples), int), np.zeros((n, nsamples))
    for j in range(n):
        for k in range(nsamples):
            index[j, k], t[j, k] = state.choice(n_background), state.uniform()
    return index, t


def test_expected_gradients_equal_shap_on_the_same_draws(trained, test_batch, pneumonia):
    """The compiled expected gradients return shap's GradientExplainer values to 1e-5, for every class, given the
    same background images and the same (background index, t) draws; across batches of images too. Both batch the
    interpolated inputs differently, which changes float rounding: where two inputs of a max-pool window nearly
    tie, the gradient can take the other route (seen once in CI: 9 of 4,704 values, one pooled unit, off by
    3.5e-4). So at most 0.5 % of the values may differ beyond 1e-5, and none beyond 1e-3."""
    import shap

    from advxai.explain import attributions

    x, bg = test_batch[0][:6], pneumonia.split("train")[0][:16]
    reference = np.asarray(shap.GradientExplainer(trained, bg).shap_values(x, nsamples=50, rseed=3))  # (N,H,W,C,K)
    index, t = _shap_draws(3, len(x), 50, len(bg))
    for c in range(reference.shape[-1]):
        ours = attributions.expected_gradients_values(trained, x, np.full(len(x), c), bg, index, t, max_rows=100)
        assert np.abs(reference[..., c]).max() > 1e-3  # not trivially zero
        close = np.isclose(ours, reference[..., c], rtol=0, atol=1e-5)
        assert close.mean() >= 0.995, f"{(~close).sum()} of {close.size} values differ from shap's beyond 1e-5"
        np.testing.assert_allclose(ours, reference[..., c], atol=1e-3)


def test_batched_lime_equals_lime(trained, test_batch):
    """Same segmentation, same masks (lime's random state, in image order), lime's own regression: the batched
    LIME paints the maps lime paints, also when the images go in several rounds."""
    from advxai.explain import attributions

    x = test_batch[0][:6]
    pred = train.predict_logits(trained, x).argmax(1)
    kw = dict(num_samples=200, seed=2, progress=False)
    reference = explain.explain("lime-ref", trained, x, pred, **kw)
    np.testing.assert_allclose(explain.explain("lime", trained, x, pred, **kw), reference, atol=1e-6)
    np.testing.assert_allclose(attributions.lime_batched(trained, x, pred, max_rows=400, **kw), reference, atol=1e-6)
    assert (reference > 0).any(axis=(1, 2)).all()
