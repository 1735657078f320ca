"""advxai: adversarial attacks vs. explanations on medical-image classifiers.

One module per concept: :mod:`data`, :mod:`models`, :mod:`train`, :mod:`attacks`, :mod:`explain`,
:mod:`metrics`, :mod:`evaluation`, :mod:`tables`, :mod:`artefacts`, :mod:`pipeline`, :mod:`cli`,
:mod:`detect` (single-input adversarial detector), :mod:`manifold` (penultimate features, t-SNE/UMAP).
Heavy modules (TensorFlow) are imported on use, so ``import advxai`` is cheap.
"""

__version__ = "0.1.0"
