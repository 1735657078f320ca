import numpy as np
import pytest

from advxai import explain, models, train
from advxai.errors import ParameterError, UnknownNameError


@pytest.mark.parametrize("name", ["gradcam", "gradcam++"])
def test_maps_shaped_normalised_and_deterministic(trained, test_batch, name):
    x, _ = test_batch
    maps = explain.explain(name, trained, x, batch_size=10, progress=False)
    assert maps.shape == (len(x), 28, 28) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert np.mean(maps.max(axis=(1, 2)) > 0.99) > 0.9  # per-image normalisation reaches 1
    assert np.array_equal(maps, explain.explain(name, trained, x, batch_size=10, progress=False))  # deterministic
    np.testing.assert_allclose(maps, explain.explain(name, trained, x, batch_size=7, progress=False), atol=1e-4)


def test_gradcam_follows_the_target_class(trained, test_batch):
    x, _ = test_batch
    pred = train.predict_logits(trained, x).argmax(1)
    own = explain.explain("gradcam", trained, x, pred, progress=False)
    other = explain.explain("gradcam", trained, x, 1 - pred, progress=False)
    assert not np.allclose(own, other)


def test_last_conv_layer_of_registry_models():
    assert models.last_conv_layer(models.build("cnn", (28, 28, 1), 2)) == "relu2_1"
    assert models.last_conv_layer(models.build("vgg16", (32, 32, 1), 2)) == "block5_conv3"
    assert models.last_conv_layer(models.build("resnet50", (32, 32, 3), 3)) == "conv5_block3_out"


def test_bad_explainer_inputs(trained, test_batch):
    x, _ = test_batch
    with pytest.raises(UnknownNameError, match="unknown explainer 'shap'"):
        explain.explain("shap", trained, x)
    with pytest.raises(ParameterError, match="images must be"):
        explain.explain("gradcam", trained, x[..., 0])
    with pytest.raises(ParameterError, match="targets for"):
        explain.explain("gradcam", trained, x, np.zeros(3, int))
