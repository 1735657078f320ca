"""Pixel attributions: SHAP's expected gradients and LIME on superpixels."""

from __future__ import annotations

import keras
import numpy as np
from tqdm.auto import tqdm

from .base import EXPLAINERS, _normalise


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

    from ..measure.metrics import softmax
    from ..models.train import predict_logits

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
