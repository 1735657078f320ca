"""Explaining the same attacked images two ways: the seed's (reload the model for every image and explainer,
one image at a time) and ours (one model in memory, one batched call; Grad-CAM compiled), against the floor
of a compiled forward pass.

    python bench/explain_speed.py [--dataset pneumoniamnist --size 28 --images 100 --epochs 3 --repeats 5]

Trains the compact CNN briefly on the real data (the ratio, not the accuracy, is measured), attacks
``--images`` balanced test images with PGD (ε 0.05), then prints seconds per way and their ratios. Our
timings are the median of ``--repeats`` warm calls; the first (compiling) call is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from advxai import attacks, data, explain, models
from advxai.models import train


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, median of the next ``repeats`` calls) in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return first, statistics.median(warm)


def seed_way(path: Path, x: np.ndarray, targets: np.ndarray, cls) -> float:
    """The seed's loop: for every image, load the saved model, build the explainer, explain that image."""
    from tf_keras_vis.utils.scores import CategoricalScore

    t0 = time.perf_counter()
    for img, t in tqdm(list(zip(x, targets, strict=True)), desc=cls.__name__ + " (seed way)", leave=False):
        net = models.load(path)
        layer = models.last_conv_layer(net)
        cls(net, clone=False)(CategoricalScore([int(t)]), img[None], penultimate_layer=layer,
                              seek_penultimate_conv_layer=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="pneumoniamnist")
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    ds = data.load(args.dataset, args.size)
    net = models.build("cnn", ds.input_shape, ds.n_classes, seed=0, width=16)
    train.fit(net, *ds.split("train"), *ds.split("val"), epochs=args.epochs, patience=args.epochs, seed=0, verbose=0)
    x_te, y_te = ds.split("test")
    idx = data.balanced_subset(y_te, args.images, seed=0)
    x_adv, _ = attacks.generate(net, x_te[idx], y_te[idx], "pgd", 0.05)
    targets = train.predict_logits(net, x_adv).argmax(1)

    forward = tf.function(lambda v: net(v, training=False), reduce_retracing=True)
    _, t_forward = timed(lambda: forward(x_adv).numpy(), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = models.save(net, Path(tmp) / "model.keras")
        rows = []
        for name, cls in [("gradcam", Gradcam), ("gradcam++", GradcamPlusPlus)]:
            first, warm = timed(lambda n=name: explain.explain(n, net, x_adv, targets, progress=False), args.repeats)
            seed = seed_way(path, x_adv, targets, cls)
            rows.append((name, seed, first, warm))
    print(f"\n{args.dataset} {args.size} px, compact CNN ({net.count_params():,} parameters), "
          f"{len(x_adv)} PGD-attacked images, {tf.config.threading.get_inter_op_parallelism_threads() or 'all'} "
          f"inter-op threads")
    print(f"compiled forward pass (batched, warm): {t_forward * 1e3:.1f} ms")
    print(f"{'explainer':<10} {'seed way s':>10} {'ours 1st s':>10} {'ours s':>8} {'seed/ours':>10} {'ours/fwd':>9}")
    for name, seed, first, warm in rows:
        print(f"{name:<10} {seed:>10.2f} {first:>10.3f} {warm:>8.3f} {seed / warm:>9.0f}× {warm / t_forward:>8.1f}×")


if __name__ == "__main__":
    main()
