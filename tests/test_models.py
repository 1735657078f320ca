import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from advxai import attacks, data, explain, models
from advxai.errors import DataError, ParameterError, UnknownNameError
from advxai.models import train


def cam_map(net) -> tuple[int, int]:
    """(H, W) of the Grad-CAM layer's output."""
    return tuple(net.get_layer(models.last_conv_layer(net)).output.shape[1:3])


def test_logits_output_and_save_load_roundtrip(trained, test_batch, tmp_path):
    x, _ = test_batch
    path = models.save(trained, tmp_path / "m.keras")
    loaded = models.load(path)  # safe mode
    np.testing.assert_allclose(train.predict_logits(loaded, x), train.predict_logits(trained, x), atol=1e-5)
    logits = train.predict_logits(trained, x)
    assert not np.allclose(logits.sum(1), 1.0)  # logits, not probabilities
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="not found; run the training stage"):
        models.load(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot load model .* delete it and retrain"):
        models.load(tmp_path / "bad.keras")


def test_build_errors_and_imagenet_nets_take_grey_inputs():
    with pytest.raises(UnknownNameError, match="unknown model 'alexnet'"):
        models.build("alexnet", (28, 28, 1), 2)
    with pytest.raises(ParameterError, match=r"\(H, W, C\)"):
        models.build("cnn", (28, 28), 2)
    with pytest.raises(ParameterError, match="at least 2 classes"):
        models.build("cnn", (28, 28, 1), 1)
    net = models.build("vgg16", (28, 28, 1), 2)  # grey -> RGB and upsampled to 32 px inside
    assert net.output.shape[-1] == 2 and net.get_layer("upsample") is not None
    assert cam_map(net) == (2, 2)


@pytest.mark.parametrize("name", ["resnet50", "resnet50v2", "inceptionv3", "densenet201", "efficientnetb0"])
def test_build_refuses_inputs_that_leave_a_1x1_gradcam_map(name):
    with pytest.raises(ParameterError, match=rf"^{name} at 16 px leaves a Grad-CAM map smaller than 2×2; "
                                             r"use ≥ \d+ px \(or the cnn model\)$") as err:
        models.build(name, (16, 16, 1), 2)
    smallest = int(re.search(r"≥ (\d+) px", str(err.value))[1])
    with pytest.raises(ParameterError, match=rf"at {smallest - 1}×224 px"):
        models.build(name, (smallest - 1, 224, 1), 2)
    assert cam_map(models.build(name, (smallest, smallest, 1), 2)) == (2, 2)  # the advertised minimum is tight


def test_cifar_resnet_has_he_et_al_s_shape_and_refuses_bad_depths_before_building():
    """ResNet-20 (He et al. 2016, CIFAR variant) has 0.27 M parameters at width 16; ResNet-8 its 7×7 Grad-CAM map
    at 28 px (8×8 at 64 px with a stride-2 stem); a depth that is not 6n + 2 fails in models.check."""
    r20 = models.build("resnet", (32, 32, 3), 10, depth=20)
    assert r20.name == "resnet20" and 0.26e6 < r20.count_params() < 0.28e6  # the paper's table 6: 0.27 M
    convs = [la for la in r20.layers if isinstance(la, keras.layers.Conv2D) and la.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # 19 weighted 3×3 layers + the classifier
    assert cam_map(models.build("resnet", (28, 28, 1), 2)) == (7, 7)
    assert cam_map(models.build("resnet", (64, 64, 1), 2, stem_stride=2)) == (8, 8)
    for bad in (9, 4):
        with pytest.raises(ParameterError, match="resnet depth must be 6n \\+ 2"):
            models.check("resnet", 28, {"depth": bad})
    with pytest.raises(ParameterError, match="^model 'resnet': depth must be an integer"):
        models.check("resnet", 28, {"depth": "8"})
    with pytest.raises(ParameterError, match="^resnet at 16 px with stem_stride 4"):
        models.check("resnet", 16, {"stem_stride": 4})


def test_training_reaches_better_than_chance(pneumonia, trained):
    m = train.evaluate(trained, *pneumonia.split("test"))
    assert m["auc"] > 0.85
    with pytest.raises(ParameterError, match="no training images"):
        train.class_weights(np.zeros(10, int), 2)


# --- the paper-scale path (224 px ImageNet nets, random weights: no download) on two real chest X-rays -------
# Grad-CAM layer and its map at 224 px per net.
PAPER_NETS = {"resnet50": ("conv5_block3_out", 7), "vgg16": ("block5_conv3", 14), "inceptionv3": ("mixed10", 5),
              "resnet50v2": ("post_relu", 7), "densenet201": ("relu", 7), "efficientnetb0": ("top_activation", 7)}


@pytest.fixture(scope="module")
def xrays(data_root):
    """The first NORMAL and the first PNEUMONIA Kaggle test X-ray at 224 px in [0, 1], and their labels."""
    folder = data_root / "raw" / "chest_xray" / "test"
    images = []
    for cls in ("NORMAL", "PNEUMONIA"):
        with Image.open(sorted((folder / cls).glob("*.jpeg"))[0]) as img:
            images.append(data.center_crop_resize(img, 224, 1))
    return np.stack(images).astype(np.float32) / 255.0, np.array([0, 1])


@pytest.fixture(scope="module", params=list(PAPER_NETS))
def paper_net(request):
    return models.build(request.param, (224, 224, 1), 2, weights=None, seed=0)


def test_paper_net_gradcam_layer_is_spatial(paper_net):
    layer, side = PAPER_NETS[paper_net.name]
    assert models.last_conv_layer(paper_net) == layer
    assert cam_map(paper_net) == (side, side)


@pytest.mark.slow
def test_paper_net_trains(paper_net, xrays):
    x, y = xrays
    # One eager SGD step on train.fit's loss: tracing train_on_batch took 25 s for DenseNet201, Adam's slots 4 s.
    opt = keras.optimizers.SGD(1e-4)
    with tf.GradientTape() as tape:
        logits = paper_net(x, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    grads = tape.gradient(loss, paper_net.trainable_variables)
    opt.apply(grads, paper_net.trainable_variables)
    assert np.isfinite(float(loss)) and np.isfinite(float(tf.linalg.global_norm(grads)))


@pytest.mark.slow
def test_paper_net_fgsm(paper_net, xrays):
    x, y = xrays
    adv, _ = attacks.generate(paper_net, x, y, "fgsm", 0.01)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert np.abs(adv - x).max() <= 0.01 * (1 + 1e-6)


@pytest.mark.slow
def test_paper_net_gradcam(paper_net, xrays):
    x, y = xrays
    maps = explain.explain("gradcam", paper_net, x, y, progress=False)
    assert maps.shape == (2, 224, 224) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
