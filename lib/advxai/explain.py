"""Explainer registry: name -> function returning saliency maps (N, H, W) in [0, 1] for given target classes.

Grad-CAM / Grad-CAM++ come from tf-keras-vis, batched, on the model's last conv layer (found per model).
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
            maps = cam(CategoricalScore([int(t) for t in tb]), xb, penultimate_layer=layer,
                       normalize_cam=True, expand_cam=True)
            out.append(np.asarray(maps, np.float32).reshape(len(xb), *x.shape[1:3]))
        return np.clip(np.concatenate(out), 0.0, 1.0)

    return explain


def _register_cams():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    EXPLAINERS.register("gradcam")(_cam(Gradcam))
    EXPLAINERS.register("gradcam++")(_cam(GradcamPlusPlus))


_register_cams()


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
    return fn(model, x, targets, **kw)
