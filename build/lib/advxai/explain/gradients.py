"""The input gradient ∂z_c/∂x of a model's logit for given classes, compiled once per model and taken in batches.

The detection views (saliency, gradient × input, integrated gradients) and the robust stage's gradient alignment
read it; it lives here, with the other explanations, so that the robust stage does not depend on the detectors.
"""

from __future__ import annotations

import numpy as np

from .base import compiled_for


def batched(fn, x: np.ndarray, *more, batch_size: int = 256):
    """``fn`` over ``x`` (and arrays aligned with it) in batches, outputs concatenated (a list for list outputs)."""
    outs = [fn(x[i:i + batch_size], *(m[i:i + batch_size] for m in more)) for i in range(0, len(x), batch_size)]
    if isinstance(outs[0], tuple | list):
        return [np.concatenate([np.asarray(o[k]) for o in outs]) for k in range(len(outs[0]))]
    return np.concatenate([np.asarray(o) for o in outs])


def _build(model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def grad(xb, tb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            score = tf.gather(model(xb, training=False), tb, axis=1, batch_dims=1)
        return tape.gradient(score, xb)

    return grad


def compiled_gradient(model):
    """The compiled ``(x, targets) -> ∂z_targets/∂x`` of ``model`` (one per model object)."""
    return compiled_for(model, "views/grad", lambda: _build(model))


def input_gradient(model, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """∂z_c/∂x for each image's class c (signed, every channel)."""
    return batched(compiled_gradient(model), x, np.asarray(targets, np.int32))
