"""Training augmentation per imaging modality (a registry: name -> builder of a Keras layer run with
``training=True`` inside the training step) and the rule that picks a dataset's own."""

from __future__ import annotations

import keras
import tensorflow as tf

from ..errors import ParameterError
from ..registry import Registry

AUGMENTATIONS: Registry = Registry("augmentation")
# Datasets whose images have no canonical orientation (dermoscopy, histology, blood smears): flips and 90°
# rotations are label-preserving there. Everything else (X-ray, OCT, CT organs, fundus) keeps its anatomy.
ROTATION_INVARIANT = {"isic2018", "dermamnist", "pathmnist", "bloodmnist", "tissuemnist"}


def anatomical_layers(seeds) -> keras.Sequential:
    """Small shifts, rotations and zoom, exposure jitter; no flips (chest X-rays are not left-right symmetric).
    Exposure jitter matters: PneumoniaMNIST's test split is shifted from train/val (measured: without it the
    compact CNN's test accuracy fell below the MedMNIST benchmark while its AUC stayed above)."""
    s = iter(seeds)
    return keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=next(s)),
        keras.layers.RandomRotation(0.03, fill_mode="nearest", seed=next(s)),
        keras.layers.RandomZoom(0.08, fill_mode="nearest", seed=next(s)),
        keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=next(s)),
        keras.layers.RandomContrast(0.2, seed=next(s)),
    ])


@AUGMENTATIONS.register("anatomical")
def anatomical(seed: int) -> keras.Sequential:
    """The X-ray augmentation (:func:`anatomical_layers`), each layer seeded apart (seed, seed + 1, ...): Keras
    layers seeded alike draw the same numbers, so one shared seed moved shift, rotation, zoom, brightness and
    contrast together (one random knob per image)."""
    return anatomical_layers(range(seed, seed + 5))


@AUGMENTATIONS.register("anatomical-legacy")
def anatomical_legacy(seed: int) -> keras.Sequential:
    """The X-ray augmentation of the legacy training (CHANGELOG 0.1.0): every layer seeded with ``seed``, so their draws
    coincide (see :func:`anatomical`). Kept to rerun those models."""
    return anatomical_layers([seed] * 5)


class RandomTranspose(keras.layers.Layer):
    """Swaps rows and columns of each image with probability ½ (a reflection in the main diagonal)."""

    def __init__(self, seed=None, **kw):
        super().__init__(**kw)
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        swap = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), seed=self.generator) < 0.5
        return tf.where(swap, tf.transpose(x, [0, 2, 1, 3]), x)


@AUGMENTATIONS.register("dermoscopy-legacy")
def dermoscopy_legacy(seed: int) -> keras.Sequential:
    """The dermoscopy augmentation from Keras' preprocessing layers, of the legacy training (CHANGELOG 0.1.0); kept
    to rerun those models and as the reference :class:`Dermoscopy` is tested against. It did not draw what it meant
    to: Keras' ``RandomFlip("horizontal_and_vertical")`` flips both axes on one draw (a half turn or nothing), and
    the layers, all seeded with ``seed``, draw the same numbers — the flip and the transpose coincide (2 of the
    square's 8 symmetries: none, or the anti-diagonal reflection) and zoom, brightness, contrast and saturation move
    together."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
        RandomTranspose(seed=seed),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed),
        keras.layers.RandomContrast(0.15, seed=seed),
        keras.layers.RandomSaturation((0.4, 0.6), value_range=(0.0, 1.0), seed=seed),
    ])


class Dermoscopy(keras.layers.Layer):
    """A lesion has no up or left: each of the square's 8 symmetries (independent horizontal flip, vertical flip
    and transpose), a zoom by a factor in [1 - zoom, 1 + zoom] with reflected borders, and colour jitter for the
    spread of dermatoscopes and lighting — brightness (+δ, |δ| ≤ ``brightness``), contrast (per-channel mean kept,
    deviations × c, |c - 1| ≤ ``contrast``) and saturation (HSV saturation × f/(1 - f), f uniform in
    ``saturation``, capped at 1). Needs square images (ISIC is centre-cropped).

    Each operation is Keras' layer's arithmetic (``RandomZoom``, ``RandomBrightness``, ``RandomContrast``,
    ``RandomSaturation``; a test holds them equal on the same draws), computed in one layer from one draw of
    seven numbers per image (each parameter its own column: independent). Faster too: the six Keras layers took
    9 ms per 64 ISIC images on 2 cores, this layer 5.5 ms — flips, transpose and zoom are one resampling
    (:meth:`geometry`), and saturation is in closed form: scaling HSV saturation by m at fixed hue and value moves
    every channel c to v - (v - c)·m (v the largest channel), no round trip through HSV.
    """

    def __init__(self, zoom: float = 0.1, brightness: float = 0.1, contrast: float = 0.15,
                 saturation: tuple[float, float] = (0.4, 0.6), seed=None, **kw):
        super().__init__(**kw)
        self.zoom, self.brightness, self.contrast = float(zoom), float(brightness), float(contrast)
        self.saturation = tuple(float(s) for s in saturation)
        self.generator = keras.random.SeedGenerator(seed)

    def draw(self, n) -> dict:
        """The per-image parameters, from one uniform draw of shape (n, 7)."""
        u = keras.random.uniform((n, 7), seed=self.generator)
        lo, hi = self.saturation
        f = lo + (hi - lo) * u[:, 6]
        return {"flip_h": u[:, 0] < 0.5, "flip_v": u[:, 1] < 0.5, "transpose": u[:, 2] < 0.5,
                "zoom": 1.0 + self.zoom * (2.0 * u[:, 3] - 1.0),
                "delta": self.brightness * (2.0 * u[:, 4] - 1.0),
                "contrast": 1.0 + self.contrast * (2.0 * u[:, 5] - 1.0),
                "saturation": f / (1.0 - f + keras.config.epsilon())}

    @staticmethod
    def geometry(p: dict, h, w):
        """The flips, the transpose and the zoom as one transform per image, in ``affine_transform``'s rows
        (input x = a·(x, y, 1), input y = b·(x, y, 1) for each output pixel). Flipping, transposing, then zooming
        reads output pixel q from input pixel F_h F_v T Z q: the zoom about the centre, rows swapped by T, each
        flip mirrors one row. On the pixel grid flips and transpose are exact, so one bilinear resampling gives
        what four passes over the batch gave."""
        h, w = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        z = tf.reshape(p["zoom"], (-1, 1))
        zero = tf.zeros_like(z)
        a = tf.concat([z, zero, (w - 1.0) / 2.0 * (1.0 - z)], axis=1)
        b = tf.concat([zero, z, (h - 1.0) / 2.0 * (1.0 - z)], axis=1)
        swap = tf.reshape(p["transpose"], (-1, 1))
        a, b = tf.where(swap, b, a), tf.where(swap, a, b)
        b = tf.where(tf.reshape(p["flip_v"], (-1, 1)), tf.stack([0.0, 0.0, h - 1.0]) - b, b)
        a = tf.where(tf.reshape(p["flip_h"], (-1, 1)), tf.stack([0.0, 0.0, w - 1.0]) - a, a)
        return tf.concat([a, b, zero, zero], axis=1)

    @staticmethod
    def apply(x, p: dict):
        """Augment the batch ``x`` (n, h, w, 3) with the parameters ``p`` of :meth:`draw`."""
        def per_image(v):
            return tf.reshape(v, (-1, 1, 1, 1))

        x = keras.ops.image.affine_transform(x, Dermoscopy.geometry(p, tf.shape(x)[1], tf.shape(x)[2]),
                                             interpolation="bilinear", fill_mode="reflect")
        x = tf.clip_by_value(x + per_image(p["delta"]), 0.0, 1.0)
        mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        x = tf.clip_by_value((x - mean) * per_image(p["contrast"]) + mean, 0.0, 255.0)  # RandomContrast's range
        v = tf.reduce_max(x, axis=-1, keepdims=True)
        spread = v - tf.reduce_min(x, axis=-1, keepdims=True)
        # saturation s = spread / v scaled by m and capped at 1: m_eff = min(m, v / spread)
        m = tf.minimum(per_image(p["saturation"]), v / tf.maximum(spread, 1e-12))
        return v - (v - x) * m

    def call(self, x, training=False):
        if x.shape[1] != x.shape[2] or x.shape[-1] != 3:
            raise ParameterError(f"the dermoscopy augmentation needs square RGB images, got {tuple(x.shape[1:])}; "
                                 "use augment: anatomical or false")
        if not training:
            return x
        return self.apply(x, self.draw(tf.shape(x)[0]))


@AUGMENTATIONS.register("dermoscopy")
def dermoscopy(seed: int) -> Dermoscopy:
    """The dermoscopy augmentation (:class:`Dermoscopy`): the square's 8 symmetries, zoom ±10 %, brightness
    ±0.1, contrast ±15 %, saturation × [2/3, 3/2]."""
    return Dermoscopy(seed=seed)


def augmentation_for(dataset: str, augment) -> str | None:
    """``augment``: true (the dataset's own: ``dermoscopy`` for rotation-invariant sets, else ``anatomical``),
    false, or a registry name."""
    if augment is True:
        return "dermoscopy" if dataset in ROTATION_INVARIANT else "anatomical"
    if augment in (False, None, "none"):
        return None
    AUGMENTATIONS[augment]  # unknown name -> one-line error naming the known ones
    return str(augment)
