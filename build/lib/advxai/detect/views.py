"""What a detector can see of one input, computed once per image set and shared by every detector ("views"):

* ``logits`` — the model's outputs;
* ``layers`` — hidden activations, spatially averaged per channel (Lee et al. 2018 pool each layer the same way),
  at the end of each conv block;
* ``mc`` — softmax outputs under Monte-Carlo dropout (Gal & Ghahramani 2016): the compact CNN has dropout before
  its logits layer, so T masks are drawn on the penultimate features and pushed through that layer (batch
  normalisation stays in inference mode, which ``model(x, training=True)`` would not do);
* explanations of the predicted class (what a deployed system shows): ``gradcam`` (:mod:`advxai.explain`),
  ``saliency`` |∂z_c/∂x| (Simonyan et al. 2014), ``gxi`` gradient × input (Shrikumar et al. 2016), and ``ig``
  integrated gradients from a black baseline with few steps (Sundararajan et al. 2017) — all batched and compiled;
* ``gradcam-runnerup`` — the Grad-CAM of the second-ranked class: on a successful attack against a two-class
  model that is the clean class, whose map the attack often blanks;
* squeezed inputs (Xu et al. 2018, "Feature squeezing"; ART's preprocessors): ``squeezed`` — the model's logits on
  each squeezed version of the image (bit depth reduced to :data:`BIT_DEPTH` bits, a 2×2 median filter), and
  ``gradcam-squeezed`` — the Grad-CAM of the median-filtered image for the class predicted on the original.

:func:`compute` returns the views and the seconds each took, from which the cost per image of a detector follows.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from ..errors import ParameterError
from ..explain.gradients import batched as _batched
from ..explain.gradients import compiled_gradient, input_gradient
from ..registry import Registry

VIEWS: Registry = Registry("view")


def block_layers(model: keras.Model) -> list[str]:
    """The activations at the end of each block: the compact CNN's ``relu<b>_1``, the residual net's stage outputs
    (the last block of each stage, ``s<k>b<n>_out``), else the Grad-CAM layer."""
    from ..models import last_conv_layer

    names = [la.name for la in model.layers if la.name.startswith("relu") and la.name.endswith("_1")]
    outs = [la.name for la in model.layers if la.name.startswith("s") and la.name.endswith("_out")]
    stages = [[n for n in outs if n.startswith(f"s{k}b")][-1] for k in sorted({n[1] for n in outs})]
    return names or stages or [last_conv_layer(model)]


def _compiled(model: keras.Model, key: str, build):
    """The explainers' cache of compiled functions (one model at a time), under a ``views/`` key."""
    from ..explain import compiled_for

    return compiled_for(model, f"views/{key}", build)


@VIEWS.register("logits")
def logits(model, x, ctx):
    return _batched(lambda b: model(b, training=False), x)


@VIEWS.register("layers")
def layers(model, x, ctx):
    import tensorflow as tf

    names = block_layers(model)
    sub = _compiled(model, "layers", lambda: keras.Model(model.input, [model.get_layer(n).output for n in names]))
    def pooled(b):  # a one-output sub-model returns a tensor, not a list
        outs = sub(b, training=False)
        outs = outs if len(names) > 1 else [outs]
        return [tf.reduce_mean(o, axis=(1, 2)) if len(o.shape) == 4 else o for o in outs]

    fn = _compiled(model, "layers_fn", lambda: tf.function(pooled))
    return dict(zip(names, _batched(fn, x), strict=True))


def penultimate(model, x):
    head = model.get_layer("logits")
    sub = _compiled(model, "penultimate", lambda: keras.Model(model.input, head.input))
    return _batched(lambda b: sub(b, training=False), x)


@VIEWS.register("mc")
def mc_dropout(model, x, ctx):
    """(T, N, K) softmax samples: dropout of the model's own rate (0.5 inserted at test time for a net without
    dropout) on the penultimate features, through the logits layer."""
    from ..measure.metrics import softmax

    names = [la.name for la in model.layers]
    rate = float(model.get_layer("dropout").rate) if "dropout" in names else 0.5
    h = penultimate(model, x).astype(np.float64)
    w, b = (np.asarray(v, np.float64) for v in model.get_layer("logits").get_weights())
    rng = np.random.default_rng(ctx.get("seed", 0))
    t = int(ctx.get("mc_samples", 20))
    keep = rng.random((t, *h.shape)) >= rate
    z = (h[None] * keep / (1 - rate)) @ w + b
    return softmax(z.reshape(-1, z.shape[-1])).reshape(*z.shape)


def _targets(ctx, model, x):
    return ctx["targets"] if "targets" in ctx else logits(model, x, ctx).argmax(1).astype(np.int32)


@VIEWS.register("saliency")
def saliency(model, x, ctx):
    """|∂z_c/∂x| summed over channels, c the predicted class (Simonyan et al. 2014); raw, not normalised."""
    return np.abs(input_gradient(model, x, _targets(ctx, model, x))).sum(-1)


@VIEWS.register("gxi")
def gradient_times_input(model, x, ctx):
    """(∂z_c/∂x) · x summed over channels (Shrikumar et al. 2016); signed."""
    return (input_gradient(model, x, _targets(ctx, model, x)) * x).sum(-1)


@VIEWS.register("ig")
def integrated_gradients(model, x, ctx):
    """Integrated gradients from a black image, ``ig_steps`` midpoint Riemann steps (Sundararajan et al. 2017),
    summed over channels; signed."""
    grad = compiled_gradient(model)
    t = _targets(ctx, model, x)
    steps = int(ctx.get("ig_steps", 8))
    total = np.zeros_like(x)
    for a in (np.arange(steps) + 0.5) / steps:
        total += _batched(grad, (a * x).astype(np.float32), t)
    return (x * total / steps).sum(-1)


@VIEWS.register("gradcam")
def gradcam(model, x, ctx):
    from ..explain import gradcam as cam

    return cam(model, x, _targets(ctx, model, x), progress=False)


@VIEWS.register("gradcam-runnerup")
def gradcam_runnerup(model, x, ctx):
    """Grad-CAM for the class ranked second by the model (the class an attack most often came from)."""
    from ..explain import gradcam as cam

    second = np.argsort(logits(model, x, ctx), axis=1)[:, -2].astype(np.int32)
    return cam(model, x, second, progress=False)


# Xu et al. squeeze MNIST to 1 bit and CIFAR-10 to 5 bits, with a 2×2 median filter for both. Medical images are
# grey-level or colour photographs of fine texture, not binary digits: the CIFAR setting.
BIT_DEPTH, MEDIAN_WINDOW = 5, 2


def squeezers() -> dict:
    """ART's squeezers: name -> function of images in [0, 1] (channels last)."""
    from art.defences.preprocessor import FeatureSqueezing, SpatialSmoothing

    bits = FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=BIT_DEPTH)
    median = SpatialSmoothing(window_size=MEDIAN_WINDOW, channels_first=False, clip_values=(0.0, 1.0))
    return {f"bit-depth-{BIT_DEPTH}": lambda x: bits(x)[0].astype(np.float32),
            f"median-{MEDIAN_WINDOW}x{MEDIAN_WINDOW}": lambda x: median(x)[0].astype(np.float32)}


@VIEWS.register("squeezed")
def squeezed(model, x, ctx):
    """{squeezer: logits of the squeezed images}."""
    return {name: logits(model, fn(x), ctx) for name, fn in squeezers().items()}


@VIEWS.register("gradcam-squeezed")
def gradcam_squeezed(model, x, ctx):
    """Grad-CAM of the median-filtered image, for the class predicted on the original image."""
    from ..explain import gradcam as cam

    return cam(model, squeezers()[f"median-{MEDIAN_WINDOW}x{MEDIAN_WINDOW}"](x), _targets(ctx, model, x),
               progress=False)


@VIEWS.register("image")
def image(model, x, ctx):
    return x


def compute(model: keras.Model, x: np.ndarray, names, ctx: dict | None = None) -> tuple[dict, dict]:
    """The named views of images ``x`` and the seconds each took: ({view: array}, {view: seconds})."""
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise ParameterError(f"images must be (N, H, W, C), got {x.shape}")
    ctx = dict(ctx or {})
    out, secs = {}, {}
    for name in ["logits", *[n for n in names if n != "logits"]]:
        t0 = time.perf_counter()
        out[name] = VIEWS[name](model, x, ctx)
        secs[name] = time.perf_counter() - t0
        if name == "logits":
            ctx["targets"] = out["logits"].argmax(1).astype(np.int32)  # every explanation explains the prediction
    return out, secs
