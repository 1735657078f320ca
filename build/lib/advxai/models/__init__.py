"""Model layer: architectures (``nets``: the registry name -> Keras 3 builder of a logits model on [0, 1]
images; their batch normalisation is ``batchnorm``'s fused layer), training (``train``: the recipe, Table II
metrics; ``augment``: the augmentation per modality) and the public bars each model is held against
(``benchmarks``). The package's names are the architecture registry: ``models.build("cnn", shape, n_classes)``;
training is ``from advxai.models import train``.

May import: ``advxai.errors``, ``advxai.registry``, ``advxai.artefacts``, ``advxai.measure``."""

from __future__ import annotations

from .nets import MODELS, ImagenetPreprocess, build, check, compact_cnn, last_conv_layer, load, save

__all__ = [
    "MODELS", "ImagenetPreprocess", "build", "check", "compact_cnn", "last_conv_layer", "load", "save",
]
