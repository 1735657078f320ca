"""What an explanation and a C&W attack cost, ours against the libraries', measured side by side in one run.

    python bench/explain_speed.py [--dataset pneumoniamnist --size 28 --images 100 --epochs 3 --repeats 5]
                                  [--attr-dataset isic2018 --attr-size 28 --attr-images 20 --model PATH]

Part 1 (CAMs): the seed's way (reload the model for every image and explainer, one image at a time) against ours
(one model in memory, one batched call; Grad-CAM compiled) and the floor of a compiled forward pass, on
``--images`` PGD-attacked test images of ``--dataset``.

Part 2 (attributions and C&W), on ``--attr-images`` test images of ``--attr-dataset`` (default ISIC 2018 at 28 px,
the RADAR-MIX stage's set): shap's GradientExplainer (``shap-ref``, 50 samples, 32 background images) called on
all images at once and as the RADAR-MIX stage called it before (two images a call) against the compiled expected
gradients (``shap``); lime (``lime-ref``, 500 samples) against the batched LIME (``lime``); ART's C&W-L2
(``cw-art``) against the compiled port (``cw``), registry defaults. Each pair on the same images and targets; the
largest difference between the two results is printed beside the times (they must agree).

The compact CNN (the default architecture) is trained briefly on the real data, or loaded with ``--model``: costs
per map depend on the architecture and input size, not on the weights. Times are medians of ``--repeats`` warm
calls (the first, compiling, call is printed for ours); the libraries' references run once, warm.
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
    ap.add_argument("--attr-dataset", default="isic2018")
    ap.add_argument("--attr-size", type=int, default=28)
    ap.add_argument("--attr-images", type=int, default=20)
    ap.add_argument("--model", default="", help="a trained model.keras for part 2 (else trained briefly here)")
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
    attributions_and_cw(args)


def once(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def attributions_and_cw(args) -> None:
    ds = data.load(args.attr_dataset, args.attr_size)
    if args.model:
        net = models.load(Path(args.model))
    else:
        net = models.build("cnn", ds.input_shape, ds.n_classes, seed=0, width=16)
        train.fit(net, *ds.split("train"), *ds.split("val"), epochs=args.epochs, patience=args.epochs, seed=0,
                  verbose=0)
    x_te, y_te = ds.split("test")
    idx = data.balanced_subset(y_te, args.attr_images, seed=0)
    x = x_te[idx]
    targets = train.predict_logits(net, x).argmax(1)
    bg = ds.split("train")[0][np.random.default_rng(0).choice(len(ds.split("train")[0]), 32, replace=False)]
    n = len(x)
    shap_kw = dict(background=bg, nsamples=50, progress=False)
    lime_kw = dict(num_samples=500, progress=False)

    def pairs(name, kw, k):  # the stage's old way: k images a call
        return np.concatenate([explain.explain(name, net, x[i:i + k], targets[i:i + k], **kw) for i in range(0, n, k)])

    rows = []
    ref_all, ref_maps = once(lambda: explain.explain("shap-ref", net, x, targets, **shap_kw))
    ref_two, _ = once(lambda: pairs("shap-ref", shap_kw, 2))
    first, ours = timed(lambda: explain.explain("shap", net, x, targets, **shap_kw), args.repeats)
    rows.append(("SHAP (50 samples)", ref_all, ref_two, first, ours, None))
    ref_lime, lime_ref = once(lambda: explain.explain("lime-ref", net, x, targets, **lime_kw))
    first_l, ours_l = timed(lambda: explain.explain("lime", net, x, targets, **lime_kw), args.repeats)
    diff_l = float(np.abs(explain.explain("lime", net, x, targets, **lime_kw) - lime_ref).max())
    rows.append(("LIME (500 samples)", ref_lime, None, first_l, ours_l, diff_l))
    cw_idx = data.balanced_subset(y_te, 2 * n, seed=1)
    x_cw, y_cw = x_te[cw_idx], y_te[cw_idx]
    cw_ref, ref_cw = attacks.generate(net, x_cw, y_cw, "cw-art", 0.0)
    cw_ours, first_cw = attacks.generate(net, x_cw, y_cw, "cw", 0.0)
    ours_cw = statistics.median(attacks.generate(net, x_cw, y_cw, "cw", 0.0)[1] for _ in range(args.repeats))
    per = n / len(x_cw)  # the table divides by n: per image of the C&W batch
    rows.append(("C&W-L2 (per image)", ref_cw * per, None, first_cw * per, ours_cw * per,
                 float(np.abs(cw_ours - cw_ref).max())))
    print(f"\n{args.attr_dataset} {args.attr_size} px, compact CNN ({net.count_params():,} parameters), {n} test "
          f"images ({len(x_cw)} for C&W); ms per map (per image for C&W)")
    print(f"{'':<20} {'library, all at once':>20} {'library, 2 a call':>18} {'ours 1st':>9} {'ours':>8} "
          f"{'library/ours':>13} {'max |diff|':>11}")
    for name, ref, ref2, first, warm, diff in rows:
        two = f"{ref2 / n * 1e3:>18.1f}" if ref2 is not None else f"{'':>18}"
        ratio = f"{ref / warm:.1f}×" + (f" ({ref2 / warm:.0f}×)" if ref2 is not None else "")
        print(f"{name:<20} {ref / n * 1e3:>20.1f} {two} {first / n * 1e3:>9.1f} {warm / n * 1e3:>8.1f} {ratio:>13} "
              f"{'' if diff is None else f'{diff:.1e}':>11}")
    print("SHAP maps differ by their random draws (shap's global NumPy state vs the run's seed); on shap's own "
          f"draws the values agree to {_shap_agreement(net, x[:4], targets[:4], bg):.1e}")


def _shap_agreement(net, x, targets, bg, nsamples: int = 50) -> float:
    """Largest difference between the compiled expected gradients and shap's, fed shap's own draws (seed 0)."""
    import shap

    from advxai.explain import attributions

    state = np.random.RandomState(0)  # shap: np.random.seed(rseed), then choice / uniform per image and sample
    index, t = np.zeros((len(x), nsamples), int), np.zeros((len(x), nsamples))
    for j in range(len(x)):
        for k in range(nsamples):
            index[j, k], t[j, k] = state.choice(len(bg)), state.uniform()
    reference = np.asarray(shap.GradientExplainer(net, bg).shap_values(x, nsamples=nsamples, rseed=0))
    picked = reference[np.arange(len(x)), ..., targets]
    return float(np.abs(attributions.expected_gradients_values(net, x, targets, bg, index, t) - picked).max())


if __name__ == "__main__":
    main()
