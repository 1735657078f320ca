"""Explainer registry: name -> function returning saliency maps (N, H, W) in [0, 1] for given target classes.

``gradcam`` is one compiled (``tf.function``) batched Grad-CAM: the forward pass to the last conv layer and
the logits, one partial backward pass, the weighted sum; then tf-keras-vis' own up-sampling (linear zoom)
and normalisation. tf-keras-vis' ``Gradcam`` (``gradcam-tfkv``) is the reference it is tested against; it
clones the model on every call, which costs more than the map. Grad-CAM++ is tf-keras-vis', batched.
The model outputs logits already, so no softmax needs stripping (tf-keras-vis' ``ReplaceToLinear``).
"""

from __future__ import annotations

import keras
import numpy as np
from tqdm.auto import tqdm

from .errors import ParameterError
from .models import last_conv_layer
from .registry import Registry

EXPLAINERS: Registry = Registry("explainer")


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
# One compiled CAM function, for one (model, layer) at a time: keyed by a weak reference to the model object
# itself (an id() can be reused by a new model once the old one is freed), compared by identity.
_COMPILED: dict = {}


def _compiled_cam(model: keras.Model, layer: str):
    import weakref

    import tensorflow as tf

    cached = _COMPILED.get("model")
    if cached is None or cached() is not model or _COMPILED.get("layer") != layer:
        both = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])

        @tf.function(reduce_retracing=True)
        def cam(x, targets):
            with tf.GradientTape() as tape:
                acts, logits = both(x, training=False)
                score = tf.gather(logits, targets, axis=1, batch_dims=1)
            grads = tape.gradient(score, acts)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # α_k: spatial mean of ∂y_c/∂A_k
            return tf.nn.relu(tf.reduce_sum(acts * weights, axis=-1))  # ReLU(Σ_k α_k A_k)

        _COMPILED.clear()  # one model at a time: do not keep old models alive
        _COMPILED.update(model=weakref.ref(model), layer=layer, cam=cam)
    return _COMPILED["cam"]


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


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Per-image min–max to [0, 1] (constant maps become 0), like tf-keras-vis' ``normalize_cam``."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


@EXPLAINERS.register("shap")
def shap_gradient(model: keras.Model, x: np.ndarray, targets: np.ndarray, background: np.ndarray | None = None,
                  n_background: int = 32, nsamples: int = 200, batch_size: int = 16, seed: int = 0,
                  progress: bool = True) -> np.ndarray:
    """SHAP GradientExplainer (expected gradients; Lundberg & Lee 2017) for the target class.

    The background is ``n_background`` clean images (the RADAR-MIX seed used 32); pass ``background`` to
    choose them, else they are drawn (seeded) from ``x``. Map = positive attributions summed over channels,
    normalised per image: the evidence *for* the class, comparable with Grad-CAM's ReLU.
    """
    import shap

    rng = np.random.default_rng(seed)
    bg = background if background is not None else x[rng.choice(len(x), min(n_background, len(x)), replace=False)]
    explainer = shap.GradientExplainer(model, bg)
    out = []
    for i in tqdm(range(0, len(x), batch_size), desc="SHAP", disable=not progress, leave=False):
        xb, tb = x[i:i + batch_size], targets[i:i + batch_size]
        sv = np.asarray(explainer.shap_values(xb, nsamples=nsamples, rseed=seed))  # (N, H, W, C, classes)
        picked = sv[np.arange(len(xb)), ..., tb] if sv.ndim == 5 else sv
        out.append(np.maximum(picked, 0).sum(axis=-1))
    return _normalise(np.concatenate(out))


@EXPLAINERS.register("lime")
def lime_superpixels(model: keras.Model, x: np.ndarray, targets: np.ndarray, num_samples: int = 1000,
                     num_features: int = 5, n_segments: int = 50, seed: int = 0, progress: bool = True) -> np.ndarray:
    """LIME (Ribeiro et al. 2016) on SLIC superpixels: the ``num_features`` superpixels with the largest positive
    weight for the target class (seed: 1000 samples, top 5), each painted with its weight, normalised."""
    from lime import lime_image
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    from .metrics import softmax
    from .train import predict_logits

    grey = x.shape[-1] == 1
    seg = SegmentationAlgorithm("slic", n_segments=n_segments, compactness=0.1 if grey else 10, start_label=0,
                                channel_axis=-1, random_seed=seed)

    def classify(batch):  # LIME perturbs RGB images; grey models see their mean
        batch = batch.mean(axis=-1, keepdims=True) if grey else batch
        return softmax(predict_logits(model, batch.astype(np.float32)))

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    maps = np.zeros(x.shape[:3], np.float32)
    for i in tqdm(range(len(x)), desc="LIME", disable=not progress, leave=False):
        img = np.repeat(x[i], 3, axis=-1) if grey else x[i]
        exp = explainer.explain_instance(img.astype(np.float64), classify, labels=(int(targets[i]),), top_labels=None,
                                         hide_color=0, num_samples=num_samples, segmentation_fn=seg,
                                         random_seed=seed, batch_size=256)
        weights = sorted(exp.local_exp[int(targets[i])], key=lambda t: -t[1])[:num_features]
        for segment, w in weights:
            if w > 0:
                maps[i][exp.segments == segment] = w
    return _normalise(maps)


def explain(name: str, model: keras.Model, x: np.ndarray, targets: np.ndarray | None = None, **kw) -> np.ndarray:
    """Maps (N, H, W) in [0, 1] of explainer ``name`` for ``targets`` (default: the model's own prediction)."""
    fn = EXPLAINERS[name]
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input.shape[1:]):
        raise ParameterError(f"images must be (N, {', '.join(map(str, model.input.shape[1:]))}), got {x.shape}")
    if targets is None:
        from .train import predict_logits

        targets = predict_logits(model, x).argmax(1)
    targets = np.asarray(targets)
    if len(targets) != len(x):
        raise ParameterError(f"{len(targets)} targets for {len(x)} images")
    if x.shape[-1] not in (1, 3):
        raise ParameterError(f"explainers take grey (C=1) or RGB (C=3) images, got C={x.shape[-1]}")
    return fn(model, x, targets, **kw)


# --- explanation targets: which class each map explains --------------------------------------------------
# (clean-image target, attacked-image target) from the true labels y and the clean / attacked predictions.
TARGETS: Registry = Registry("explanation target")
TARGETS.register("predicted")(lambda y, pc, pa: (pc, pa))  # each map explains its own prediction (a deployed view)
TARGETS.register("label")(lambda y, pc, pa: (y, y))  # the true class (the seeds' Grad-CAM)
TARGETS.register("clean")(lambda y, pc, pa: (pc, pc))  # the clean prediction on both: map change without class change


def explain_versions(name: str, model: keras.Model, x: np.ndarray, y: np.ndarray, advs: dict[str, np.ndarray],
                     preds: dict[str, np.ndarray], targets: list[str], repeated: tuple[str, ...] = (),
                     **kw) -> dict[str, dict[str, np.ndarray]]:
    """Maps of explainer ``name`` for clean images ``x`` and every attacked version, for each target.

    ``advs[a]`` holds the attacked images (E, N, H, W, C) of attack ``a`` at each ε, ``preds`` the predicted
    classes (``preds["clean"]`` (N,), ``preds[a]`` (E, N)). Returns ``{target: {"clean": (N, H, W),
    a: (E, N, H, W)}}``. A map of the same image for the same class is computed once and reused (the
    ``clean`` target equals ``predicted`` wherever the attack did not change the prediction), and attacks in
    ``repeated`` (ε-free, e.g. C&W: the same images at every ε) are explained once.
    """
    done: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # version -> [(targets, maps)] computed so far

    def maps_for(version: str, imgs: np.ndarray, t: np.ndarray) -> np.ndarray:
        out, todo = None, np.ones(len(t), bool)
        for t_prev, m_prev in done.get(version, []):
            same = todo & (t_prev == t)
            if same.any():
                out = m_prev.copy() if out is None else out
                out[same] = m_prev[same]
                todo &= ~same
        if todo.any():
            new = explain(name, model, imgs[todo], t[todo], **kw)
            out = np.zeros((len(t), *new.shape[1:]), np.float32) if out is None else out
            out[todo] = new
        done.setdefault(version, []).append((t.copy(), out))
        return out

    result = {}
    for target in targets:
        fn = TARGETS[target]
        res = {"clean": maps_for("clean", x, np.asarray(fn(y, preds["clean"], preds["clean"])[0]))}
        for a, xa in advs.items():
            once = a in repeated
            stack = [maps_for(f"{a}/{k}", xa[k], np.asarray(fn(y, preds["clean"], preds[a][k])[1]))
                     for k in range(1 if once else len(xa))]
            res[a] = np.repeat(stack[0][None], len(xa), axis=0) if once else np.stack(stack)
        result[target] = res
    return result
