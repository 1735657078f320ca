"""Explanation layer: saliency maps (N, H, W) in [0, 1] of a model's decision for given target classes.

``base``: the explainer registry, :func:`explain`, the explanation targets and :func:`explain_versions` (clean and
attacked versions at once); ``cams``: Grad-CAM (compiled) and tf-keras-vis' Grad-CAM / Grad-CAM++; ``attributions``:
SHAP's expected gradients and LIME. Importing the package registers every explainer.

May import: ``advxai.errors``, ``advxai.registry``, ``advxai.models``, ``advxai.measure``."""

from __future__ import annotations

from .attributions import expected_gradients, lime_batched, lime_superpixels, shap_gradient
from .base import EXPLAINERS, TARGETS, check_params, compiled_for, explain, explain_versions
from .cams import gradcam

__all__ = [
    "EXPLAINERS", "TARGETS", "check_params", "compiled_for", "explain", "explain_versions", "gradcam",
    "expected_gradients", "lime_batched", "shap_gradient", "lime_superpixels",
]
