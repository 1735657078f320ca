"""advxai: adversarial attacks vs. explanations on medical-image classifiers.

Layers, each a subpackage that imports only the ones listed before it (``tests/test_layout.py`` holds this):

* core — ``errors``, ``registry``, ``artefacts``: shared by all.
* ``data`` — datasets as images in [0, 1]; ``measure`` — every formula and table.
* ``models`` — architectures, training, benchmarks.
* ``attacks`` — ART evasion attacks and compiled ones; ``explain`` — saliency maps.
* ``detect`` — detectors, what they read, the detection protocol.
* ``studies`` — one function per notebook step of a stage.
* ``book`` — narrative, figures, reproduction verdicts, the course.
* ``runner`` — configs, runs, cache keys, executors, the command line.

Heavy modules (TensorFlow) are imported on use, so ``import advxai`` is cheap.
"""

__version__ = "0.2.0"
