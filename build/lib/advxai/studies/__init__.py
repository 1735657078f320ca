"""Study layer: one function per step of a stage's notebook, so a notebook reads as the methods section.

``detection`` (notebooks/07_detection.ipynb), ``radarmix`` (notebooks/06_radarmix.ipynb). A study composes the
layers below it: data, models, attacks, explain, detect, measure.

May import: every layer below it; never ``advxai.book`` or ``advxai.runner``."""
