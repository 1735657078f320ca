"""An adaptive attack on a detector (Carlini & Wagner 2017, "Adversarial examples are not easily detected";
Yao et al. 2021 on medical detectors): white-box PGD on the classifier *and* the detector at once,

    maximise  CE(f(x'), y) − λ · s(x')   subject to ‖x' − x‖∞ ≤ ε,

where s is the detector's score. The detectors score features that are not differentiable end to end
(percentiles, a scikit-learn model, maps resized by SciPy), so s is a **differentiable surrogate**: a small
CNN on [image, Grad-CAM, saliency] — each map computed in TensorFlow from x', so gradients flow through the
explanation itself (second-order gradients of the classifier) — trained to regress the real detector's
standardised score on the training folds. The attack is judged by the *real* detector, never the surrogate.
"""

from __future__ import annotations

import keras
import numpy as np

from ..attacks import compiled
from ..models import last_conv_layer


def tf_maps(model: keras.Model, saliency_scale: float = 1.0):
    """x -> [x, Grad-CAM, saliency] stacked, in TensorFlow (differentiable w.r.t. x); Grad-CAM scaled to [0, 1]
    per image, saliency divided by one global ``saliency_scale`` (its magnitude is what gives attacks away)."""
    import tensorflow as tf

    layer = last_conv_layer(model)
    both = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])

    def maps(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            acts, z = both(x, training=False)
            score = tf.gather(z, tf.argmax(z, axis=1, output_type=tf.int32), axis=1, batch_dims=1)
        g_acts, g_x = tape.gradient(score, acts), tape.gradient(score, x)
        cam = tf.nn.relu(tf.reduce_sum(acts * tf.reduce_mean(g_acts, axis=(1, 2), keepdims=True), -1))[..., None]
        cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")
        sal = tf.reduce_sum(tf.abs(g_x), -1, keepdims=True)

        cam = cam / (tf.reduce_max(cam, axis=(1, 2, 3), keepdims=True) + 1e-12)
        return tf.concat([x, cam, sal / saliency_scale], axis=-1)

    return maps


def fit_surrogate(model: keras.Model, x: np.ndarray, score: np.ndarray, epochs: int = 8, seed: int = 0):
    """A small CNN g on :func:`tf_maps` of images ``x`` regressing the detector's ``score`` (standardised).
    Returns g as a function of images (TensorFlow), and the Spearman correlation of its fit (a sanity check)."""
    import tensorflow as tf
    from scipy.stats import spearmanr

    from .fits import small_cnn

    maps = tf_maps(model)
    probe = np.concatenate([maps(tf.constant(x[i:i + 256])).numpy()[..., -1] for i in range(0, len(x), 256)])
    maps = tf_maps(model, float(np.quantile(probe, 0.99)) + 1e-12)
    stacked = np.concatenate([maps(tf.constant(x[i:i + 256])).numpy() for i in range(0, len(x), 256)])
    s = np.asarray(score, np.float64)
    target = ((s - s.mean()) / (s.std() + 1e-12)).astype(np.float32)
    net = small_cnn(stacked.shape[1:], seed)
    head = keras.Model(net.input, keras.layers.Dense(1)(net.layers[-2].output))  # one output: the score
    head.compile(keras.optimizers.Adam(3e-3), "mse")
    head.fit(stacked, target, epochs=epochs, batch_size=64, verbose=0)
    fitted = head.predict(stacked, batch_size=512, verbose=0)[:, 0]
    return (lambda xx: head(maps(xx), training=False)[:, 0]), float(spearmanr(fitted, target)[0])


def attack(model: keras.Model, x: np.ndarray, y: np.ndarray, eps: float, surrogate, weight: float = 1.0,
           max_iter: int = 20, step_ratio: float = 0.1, seed: int = 0) -> np.ndarray:
    """PGD from a random start maximising CE − ``weight`` · surrogate score (:mod:`advxai.attacks.compiled`)."""
    return compiled.pgd(model, x, y, eps, max_iter=max_iter, step_ratio=step_ratio, num_random_init=1,
                           seed=seed, penalty=surrogate, weight=weight)
