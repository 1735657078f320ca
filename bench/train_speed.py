"""Training throughput: images per second of the training step of each model, the project's (fused batch
normalisation, one-pass dermoscopy augmentation) beside the reference it replaced (Keras' batch normalisation, the
legacy augmentation), with and without augmentation, and the FLOP-based lower bound of that step on this machine.

    python bench/train_speed.py [--dataset isic2018 --size 28 --model cnn --images 4096 --batch-sizes 64 128 --rounds 3
                                 --jit]

For every (batch size, implementation, augmentation on/off) the model is trained for two epochs over ``--images``
training images by :func:`advxai.models.train.fit` itself (the recipe of the default config); the second epoch's
images per second is recorded (the first compiles), validation excluded. The configurations run in turn,
``--rounds`` times over, and each row prints the median with the ratio to the first row (the reference at the
first batch size, with augmentation) as the median of the rounds' paired ratios: timings on a shared 2-core
machine drift by tens of per cent over minutes, and pairing within a round cancels the drift. Run it as the
runner runs its kernels (``MALLOC_ARENA_MAX=2 python bench/train_speed.py``).
The lower bound: the step's floating-point operations (forward convolutions and dense layers counted from their
shapes, the backward pass as twice the forward) divided by the rate this machine reaches on a large float32
matrix product (TensorFlow, all cores).
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from advxai import data, models
from advxai.models import train
from advxai.models.batchnorm import BatchNormalization

# implementation -> the legacy training (Keras' batch norm, the dataset's ``-legacy`` augmentation)?
IMPLEMENTATIONS = {"reference": True, "ours": False}


def forward_flops(net) -> float:
    """Multiply-adds × 2 of the convolutions and dense layers for one image (other layers are memory-bound)."""
    total = 0.0
    for layer in net.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k = np.prod(layer.kernel_size)
            total += 2.0 * h * w * k * layer.input.shape[-1] * c_out / (1 if layer.groups == 1 else layer.groups)
        elif isinstance(layer, tf.keras.layers.Dense):
            total += 2.0 * layer.input.shape[-1] * layer.units
    return total


def peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a warm n×n float32 matrix product (TensorFlow): what the step's arithmetic could run at."""
    a = tf.random.normal((n, n))
    mm = tf.function(lambda m: tf.linalg.matmul(m, m))
    mm(a).numpy()
    t0 = time.perf_counter()
    for _ in range(repeats):
        mm(a).numpy()
    return 2.0 * n ** 3 * repeats / (time.perf_counter() - t0)


def keras_batchnorm(net: keras.Model) -> keras.Model:
    """``net`` with Keras' own batch normalisation in place of the fused one (same configuration and weights)."""
    def swap(layer):
        cls = keras.layers.BatchNormalization if isinstance(layer, BatchNormalization) else type(layer)
        return cls.from_config(layer.get_config())
    clone = keras.models.clone_model(net, clone_function=swap)
    clone.set_weights(net.get_weights())  # the seed's initial weights, not a fresh draw
    return clone


def epoch_rate(ds, model: str, params: dict, n: int, batch_size: int, augment, keras_bn: bool, jit: bool = False,
               seed: int = 0):
    """Images per second of the second epoch of a two-epoch fit over ``n`` training images (the first compiles)."""
    x, y = ds.split("train")
    idx = np.random.default_rng(seed).choice(len(y), min(n, len(y)), replace=False)
    x_val, y_val = ds.split("val")
    net = models.build(model, ds.input_shape, ds.n_classes, seed=seed, **params)
    if keras_bn:
        net = keras_batchnorm(net)
    hist = train.fit(net, x[idx], y[idx], x_val[:256], y_val[:256], epochs=2, batch_size=batch_size, lr=1e-3,
                     augment=augment, balance="sqrt", schedule="cosine", monitor="none", seed=seed, verbose=0,
                     jit_compile=jit)
    return len(idx) / hist["train_seconds"][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="isic2018")
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jit", action="store_true", help="also time our step compiled by XLA (jit_compile)")
    args = ap.parse_args()

    ds = data.load(args.dataset, args.size)
    params = {"width": args.width} if args.model in ("cnn", "resnet") else {}
    net = models.build(args.model, ds.input_shape, ds.n_classes, seed=0, **params)
    flops_step = 3 * forward_flops(net)
    peak = peak_flops()
    bound = peak / flops_step
    own = train.augmentation_for(args.dataset, True)
    print(f"{args.dataset} {args.size} px, {args.model} ({net.count_params():,} parameters): "
          f"{forward_flops(net) / 1e6:.1f} MFLOP forward per image, {flops_step / 1e6:.1f} per training step; "
          f"this machine's matmul rate {peak / 1e9:.1f} GFLOP/s -> lower bound {bound:,.0f} images/s")
    rows = []
    for bs in args.batch_sizes:
        for impl, keras_bn in IMPLEMENTATIONS.items():
            for augment in (f"{own}-legacy" if keras_bn else own, None):
                for jit in (False, True) if args.jit and not keras_bn else (False,):
                    rows.append((bs, impl + (" XLA" if jit else ""), augment, keras_bn, jit))
    rates = {row: [] for row in rows}
    for _ in range(args.rounds):
        for row in rows:
            bs, _, augment, keras_bn, jit = row
            rates[row].append(epoch_rate(ds, args.model, params, args.images, bs, augment, keras_bn, jit))
    print(f"{'batch':>6} {'implementation':>15} {'augmentation':>17} {'images/s':>9} {'min-max':>11} "
          f"{'ms/image':>9} {'× bound':>8} {'vs first row':>13}")
    for row in rows:
        bs, impl, augment, _, _ = row
        med = float(np.median(rates[row]))
        # paired: each round's ratio to the first row's rate in the same round, then the median (drifts cancel)
        ratio = float(np.median(np.divide(rates[row], rates[rows[0]])))
        print(f"{bs:>6} {impl:>15} {augment or 'none':>17} {med:>9.0f} {min(rates[row]):>5.0f}-{max(rates[row]):<5.0f} "
              f"{1e3 / med:>9.2f} {bound / med:>7.1f}× {ratio:>12.2f}×")


if __name__ == "__main__":
    main()
