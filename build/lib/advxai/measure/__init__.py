"""Measurement layer: every formula of the book and the tables built from it.

``metrics`` (each formula with its source: distortion, explanation shift, intervals, classification metrics),
``subsets`` (which images a number is over), ``tables`` (rows with n and interval), ``evaluation`` (the rows of
each stage), ``manifold`` (penultimate features, t-SNE / UMAP). Pure NumPy / scikit-learn functions of arrays.

May import: ``advxai.errors``, ``advxai.registry``, ``advxai.artefacts`` only."""
