"""The training step's fast parts equal what they replaced: the fused batch normalisation equals Keras' (and the
formula by hand), the one-pass dermoscopy augmentation equals Keras' preprocessing layers on the same draws and
draws every symmetry of the square."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from advxai import data
from advxai.errors import ParameterError
from advxai.models import augment, train
from advxai.models.batchnorm import BatchNormalization


@pytest.fixture(scope="module")
def isic_batch(data_root):
    x, _ = data.load("isic2018", 28).split("train")
    return x[:64]


def test_fused_batchnorm_equals_keras_and_the_formula_in_training_and_inference(isic_batch):
    conv = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=keras.initializers.GlorotUniform(0))
    feats = conv(isic_batch).numpy()  # a real feature map: 64 × 28 × 28 × 8
    ours, ref = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, 8), rng.normal(size=8), rng.normal(size=8), rng.uniform(0.5, 2.0, 8)]
    for layer in (ours, ref):
        layer.build(feats.shape)
        layer.set_weights([w.astype("float32") for w in weights])
    x = tf.constant(feats)
    assert ours._fused(x, True, None)  # the fused kernel runs (else this would test Keras against itself)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours, y_ref = ours(x, training=True), ref(x, training=True)
        loss_ours, loss_ref = tf.reduce_sum(y_ours * feats), tf.reduce_sum(y_ref * feats)
    gamma, beta, moving_mean, moving_var = weights
    mean, var = feats.mean((0, 1, 2)), feats.var((0, 1, 2))  # the biased batch variance, as Keras
    by_hand = gamma * (feats - mean) / np.sqrt(var + 1e-3) + beta
    np.testing.assert_allclose(y_ours.numpy(), by_hand, atol=2e-4)  # float32 sums over 50k values
    np.testing.assert_allclose(y_ours.numpy(), y_ref.numpy(), atol=2e-4)
    np.testing.assert_allclose(ours.moving_mean.numpy(), 0.9 * moving_mean + 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), 0.9 * moving_var + 0.1 * var, rtol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-5)
    for a, b in zip(tape.gradient(loss_ours, [x, *ours.trainable_weights]),
                    tape.gradient(loss_ref, [x, *ref.trainable_weights]), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3 * float(np.abs(b).max()))
    np.testing.assert_allclose(ours(x, training=False).numpy(), ref(x, training=False).numpy(), atol=1e-5)
    ours.trainable = False  # a frozen layer normalises with its moving statistics, as Keras'
    assert not ours._fused(x, True, None)
    np.testing.assert_allclose(ours(x, training=True).numpy(), ref(x, training=False).numpy(), atol=1e-5)


def keras_chain(x, p):
    """Keras' preprocessing layers applied with the parameters ``p`` of one Dermoscopy draw (the reference)."""
    def per_image(v):
        return tf.reshape(v, (-1, 1, 1, 1))

    shape = tf.shape(x)
    x = keras.layers.RandomFlip("horizontal").transform_images(x, {"flips": per_image(p["flip_h"]),
                                                                   "input_shape": shape})
    x = keras.layers.RandomFlip("vertical").transform_images(x, {"flips": per_image(p["flip_v"]), "input_shape": shape})
    x = tf.where(per_image(p["transpose"]), tf.transpose(x, [0, 2, 1, 3]), x)
    zoom = tf.reshape(p["zoom"], (-1, 1))
    x = keras.layers.RandomZoom(0.1, fill_mode="reflect").transform_images(
        x, {"height_zoom": zoom, "width_zoom": zoom, "input_shape": shape})
    x = keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0)).transform_images(
        x, {"rgb_delta": per_image(p["delta"])})
    x = keras.layers.RandomContrast(0.15).transform_images(x, {"contrast_factor": per_image(p["contrast"])})
    return keras.layers.RandomSaturation((0.4, 0.6), value_range=(0.0, 1.0)).transform_images(
        x, {"factor": p["saturation"]})


def test_dermoscopy_equals_keras_layers_on_the_same_draws(isic_batch):
    layer = augment.Dermoscopy(seed=3)
    p = {k: np.asarray(v) for k, v in layer.draw(4096).items()}  # the draws span the documented ranges
    for key, lo, hi in [("zoom", 0.9, 1.1), ("delta", -0.1, 0.1), ("contrast", 0.85, 1.15),
                        ("saturation", 0.4 / 0.6, 0.6 / 0.4)]:
        assert lo - 1e-6 <= p[key].min() < lo + 0.01 and hi - 0.01 < p[key].max() <= hi + 1e-6, key
    assert all(0.45 < p[k].mean() < 0.55 for k in ("flip_h", "flip_v", "transpose"))
    p = layer.draw(len(isic_batch))
    ours = layer.apply(tf.constant(isic_batch), p).numpy()
    np.testing.assert_allclose(ours, keras_chain(tf.constant(isic_batch), p).numpy(), atol=1e-5)
    assert np.abs(ours - isic_batch).mean() > 0.01  # it did change the images
    assert np.array_equal(layer(isic_batch, training=False), isic_batch)
    with pytest.raises(ParameterError, match="needs square RGB images, got \\(28, 32, 3\\); use augment"):
        layer(np.zeros((2, 28, 32, 3), "float32"), training=True)


def test_dermoscopy_draws_all_eight_symmetries_of_the_square():
    """With zoom and colour jitter off, each output is one of the square's 8 symmetries of the input (exactly),
    and 256 draws show all 8; the Keras-layer version it replaced showed 2 (one draw flips both axes, and the
    flip and the transpose, seeded alike, draw the same number)."""
    img = np.arange(5 * 5 * 3, dtype="float32").reshape(1, 5, 5, 3) / 75.0
    images = np.repeat(img, 256, axis=0)
    symmetries = [np.rot90(m, k, axes=(0, 1)) for m in (img[0], img[0].transpose(1, 0, 2)) for k in range(4)]

    def which(batch):
        found = [[i for i, s in enumerate(symmetries) if np.allclose(out, s, atol=1e-6)] for out in batch]
        assert all(len(f) == 1 for f in found)  # each output is exactly one symmetry
        return {f[0] for f in found}

    plain = augment.Dermoscopy(zoom=0.0, brightness=0.0, contrast=0.0, saturation=(0.5, 0.5), seed=0)
    assert which(np.asarray(plain(images, training=True))) == set(range(8))
    flip, transpose = train.AUGMENTATIONS["dermoscopy-legacy"](0).layers[:2]
    assert which(np.asarray(transpose(flip(images, training=True), training=True))) == {0, 6}


def test_anatomical_draws_its_parameters_independently():
    """Each layer of the X-ray augmentation draws its own numbers: rotation angle and zoom are uncorrelated over
    512 images; in the legacy version (every layer seeded alike) their ranks coincide exactly."""
    x = np.full((512, 8, 8, 1), 0.5, "float32")

    def rank_correlation(seq):
        rotation, zoom = seq.layers[1], seq.layers[2]
        angle = np.asarray(rotation.get_random_transformation(x, training=True)["angle"]).ravel()
        factor = np.asarray(zoom.get_random_transformation(x, training=True)["height_zoom"]).ravel()
        return np.corrcoef(np.argsort(np.argsort(angle)), np.argsort(np.argsort(factor)))[0, 1]

    assert abs(rank_correlation(train.AUGMENTATIONS["anatomical"](0))) < 0.15
    assert rank_correlation(train.AUGMENTATIONS["anatomical-legacy"](0)) > 0.999

