"""Feature manifolds: penultimate-layer features and their 2-D embeddings (t-SNE, UMAP), clean vs adversarial."""

from __future__ import annotations

import keras
import numpy as np

from ..errors import ParameterError
from ..registry import Registry

EMBEDDINGS: Registry = Registry("embedding")


def penultimate(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The input of the ``logits`` layer (after pooling and dropout, in inference mode): (N, d)."""
    try:
        head = model.get_layer("logits")
    except ValueError:
        raise ParameterError(f"model {model.name!r} has no 'logits' layer; build it with advxai.models") from None
    features = keras.Model(model.input, head.input)
    return np.concatenate([np.asarray(features(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


@EMBEDDINGS.register("tsne")
def tsne(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE (van der Maaten & Hinton 2008), scikit-learn; perplexity capped below the number of points."""
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(2.0, (len(features) - 1) / 3))
    return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)


@EMBEDDINGS.register("umap")
def umap_embed(features: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """UMAP (McInnes et al. 2018), umap-learn, seeded (single-threaded, hence reproducible)."""
    import umap

    n_neighbors = min(n_neighbors, len(features) - 1)
    return umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed).fit_transform(features)


def embed(features: np.ndarray, method: str = "tsne", seed: int = 0, **kw) -> np.ndarray:
    """2-D embedding (N, 2) of features (N, d) by a registered method."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 5:
        raise ParameterError(f"need features (N ≥ 5, d), got shape {features.shape}")
    return np.asarray(EMBEDDINGS[method](features, seed=seed, **kw))
