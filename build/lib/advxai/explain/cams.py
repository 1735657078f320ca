"""Class activation maps: a compiled batched Grad-CAM, tf-keras-vis' Grad-CAM (the reference) and Grad-CAM++."""

from __future__ import annotations

import keras
import numpy as np
from tqdm.auto import tqdm

from ..models import last_conv_layer
from .base import EXPLAINERS, compiled_for


def _cam(cls):
    def explain(model: keras.Model, x: np.ndarray, targets: np.ndarray, batch_size: int = 64,
                layer: str | None = None, progress: bool = True) -> np.ndarray:
        from tf_keras_vis.utils.scores import CategoricalScore

        layer = layer or last_conv_layer(model)
        cam = cls(model, clone=False)
        out = []
        for i in tqdm(range(0, len(x), batch_size), desc=cls.__name__, disable=not progress, leave=False):
            xb, tb = x[i:i + batch_size], targets[i:i + batch_size]
            # seek_penultimate_conv_layer=False: otherwise tf-keras-vis silently swaps a non-Conv layer (our
            # ReLU, ResNet's block output) for the nearest Conv2D before it (pre-BatchNorm, pre-ReLU)
            maps = cam(CategoricalScore([int(t) for t in tb]), xb, penultimate_layer=layer,
                       seek_penultimate_conv_layer=False, normalize_cam=True, expand_cam=True)
            out.append(np.asarray(maps, np.float32).reshape(len(xb), *x.shape[1:3]))
        return np.clip(np.concatenate(out), 0.0, 1.0)

    return explain


def _register_cams():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    EXPLAINERS.register("gradcam-tfkv")(_cam(Gradcam))
    EXPLAINERS.register("gradcam++")(_cam(GradcamPlusPlus))


_register_cams()


def _compiled_cam(model: keras.Model, layer: str):
    """ReLU(Σ_k α_k A_k) at ``layer`` for a batch, compiled once per (model, layer)."""
    import tensorflow as tf

    def build():
        both = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])

        @tf.function(reduce_retracing=True)
        def cam(x, targets):
            with tf.GradientTape() as tape:
                acts, logits = both(x, training=False)
                score = tf.gather(logits, targets, axis=1, batch_dims=1)
            grads = tape.gradient(score, acts)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # α_k: spatial mean of ∂y_c/∂A_k
            return tf.nn.relu(tf.reduce_sum(acts * weights, axis=-1))  # ReLU(Σ_k α_k A_k)

        return cam

    return compiled_for(model, f"cam/{layer}", build)


@EXPLAINERS.register("gradcam")
def gradcam(model: keras.Model, x: np.ndarray, targets: np.ndarray, batch_size: int = 256,
            layer: str | None = None, progress: bool = True) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017), compiled and batched; same up-sampling/normalisation as tf-keras-vis."""
    from scipy.ndimage import zoom
    from tf_keras_vis.utils import normalize

    cam = _compiled_cam(model, layer or last_conv_layer(model))
    out = []
    for i in tqdm(range(0, len(x), batch_size), desc="Grad-CAM", disable=not progress, leave=False):
        low = cam(x[i:i + batch_size], np.asarray(targets[i:i + batch_size], np.int32)).numpy()
        factor = (1.0, x.shape[1] / low.shape[1], x.shape[2] / low.shape[2])
        out.append(normalize(zoom(low, factor, order=1)))
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)
