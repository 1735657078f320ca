"""Images per second of the three costs that dominate a paper-scale grid cell — a training step, a forward
pass (prediction, Grad-CAM's floor) and an input-gradient step (one iteration of FGSM/BIM/PGD, DeepFool's
per-class gradients) — for the registry's ImageNet nets at paper resolution, on whatever Keras 3 backend and
device this runs on. It turns them into an estimated cost per Grad-Attacks / RADAR-MIX grid cell.

    python bench/throughput.py [--models resnet50 vgg16 inceptionv3] [--size 224] [--images data.npz]

Images: ``--images`` (an .npz with ``x`` uint8 (N, H, W, C)), else real chest X-rays read from
``$ADVXAI_DATA/raw/chest_xray/train`` (the first 256). Backend-neutral except the input gradient, which
uses ``jax.grad`` under ``KERAS_BACKEND=jax`` and ``tf.GradientTape`` under TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np


def real_images(size: int, n: int = 256) -> np.ndarray:
    from advxai import data

    folder = data.data_dir() / "raw" / "chest_xray" / "train"
    files = sorted(folder.glob("*/*.jpeg"))[:: max(1, len(list(folder.glob("*/*.jpeg"))) // n)][:n]
    from PIL import Image

    return np.stack([data.center_crop_resize(Image.open(f), size, 1) for f in files])


def input_gradient_fn(model):
    """x, y -> ∂ CE(model(x), y) / ∂x, compiled for the active backend."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if keras.backend.backend() == "jax":
        import jax

        tv, ntv = model.trainable_variables, model.non_trainable_variables

        def f(x, y, tvals, ntvals):
            logits, _ = model.stateless_call(tvals, ntvals, x, training=False)
            return loss(y, logits)

        g = jax.jit(jax.grad(f))
        tvals, ntvals = [v.value for v in tv], [v.value for v in ntv]
        return lambda x, y: np.asarray(g(x, y, tvals, ntvals))
    import tensorflow as tf

    @tf.function(jit_compile=False)
    def g(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(y, model(x, training=False))
        return tape.gradient(value, x)

    return lambda x, y: g(tf.constant(x), tf.constant(y)).numpy()


def rate(fn, n_images: int, repeats: int = 3) -> float:
    fn()  # compile / warm up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return repeats * n_images / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "vgg16", "inceptionv3"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images")
    args = ap.parse_args()
    from advxai import models

    x8 = np.load(args.images)["x"] if args.images else real_images(args.size)
    x = (x8.astype(np.float32) / 255.0)[: 8 * args.batch]
    y = (np.arange(len(x)) % 2).astype(np.int32)
    print(f"backend {keras.backend.backend()}, device {os.environ.get('ADVXAI_DEVICE', '?')}, {len(x)} real images "
          f"{x.shape[1:]}, batch {args.batch}")
    print(f"{'model':<12} {'params':>8} {'train img/s':>12} {'forward img/s':>14} {'grad img/s':>11}")
    out = {}
    for name in args.models:
        net = models.build(name, x.shape[1:], 2, seed=0)
        net.compile(optimizer=keras.optimizers.Adam(1e-4),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        train = rate(lambda n=net: n.fit(x, y, batch_size=args.batch, epochs=1, verbose=0), len(x))
        fwd = rate(lambda n=net: n.predict(x, batch_size=100, verbose=0), len(x))
        grad = input_gradient_fn(net)
        gr = rate(lambda g=grad: [g(x[i:i + 100], y[i:i + 100]) for i in range(0, len(x), 100)], len(x))
        out[name] = (train, fwd, gr)
        print(f"{name:<12} {net.count_params() / 1e6:>7.1f}M {train:>12.1f} {fwd:>14.1f} {gr:>11.1f}")
    # One Grad-Attacks cell: 40 epochs over 4.7k chest X-rays; FGSM (1 gradient) + PGD-10 + DeepFool (≤ 100
    # iterations × 2 class gradients) on 100 images at 4 ε; Grad-CAM(++) ≈ 2 forward+backward per map.
    print("\nestimated cost of one Grad-Attacks cell (train 40 epochs × 4.7k images; attacks on 100 images × 4 ε)")
    for name, (train, _, gr) in out.items():
        t_train = 40 * 4700 / train
        t_attack = (4 * (1 + 10) * 100 + 100 * 2 * 100) / gr
        t_cam = 2 * 2 * 100 * 13 / gr
        print(f"{name:<12} train {t_train / 60:6.1f} min, attacks {t_attack / 60:5.1f} min, "
              f"Grad-CAM {t_cam:5.1f} s, total ≈ {(t_train + t_attack + t_cam) / 60:5.1f} min")


if __name__ == "__main__":
    main()
