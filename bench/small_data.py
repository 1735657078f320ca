"""The default training recipe on a small dataset: the book's sets with their training split cut to a few hundred
images (a stratified, seeded draw: the set's own class balance), trained as a user's one-line config would train
them (the config's global ``train`` section, the dataset's modality augmentation, ``--epochs`` epochs), evaluated
on the full official test split against the majority-class baseline.

    python bench/small_data.py [--config configs/default.yaml] [--sizes 500 1000] [--epochs 5]
                               [--datasets pneumoniamnist isic2018] [--seeds 0] [--variants recipe fixed-steps]

Variants: ``recipe`` (the recipe as written, without the small-data rule: what the recipe did before it),
``keras-bn`` (the same with Keras' own batch normalisation instead of the fused one: the other change of the last
training rework), and ``small-data`` (the recipe with :func:`advxai.models.train.small_data_settings` applied: what a
config gets now: batch halved, at least 400 updates, square-root class weights).
Prints one Markdown row per (set, images, seed, variant): test accuracy with its Wilson interval, the majority
baseline, balanced accuracy and macro AUC with their bootstrap intervals, seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from advxai import data, models
from advxai.measure import evaluation
from advxai.measure import metrics as M
from advxai.models import benchmarks, train
from advxai.models.augment import augmentation_for
from advxai.runner.config import load_config

SIZES = {"pneumoniamnist": 28, "isic2018": 28}


def subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A stratified draw of ``n`` indices (each class in its own share, at least one image per class)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    take = np.maximum(1, np.round(counts / counts.sum() * n).astype(int))
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                                   for c, k in zip(classes, take, strict=True)]))


def run(ds, idx, settings: dict, seed: int, keras_bn: bool = False) -> dict:
    (x, y), (xv, yv), (xt, yt) = ds.split("train"), ds.split("val"), ds.split("test")
    net = models.build("cnn", ds.input_shape, ds.n_classes, seed=seed, width=16)
    if keras_bn:
        from train_speed import keras_batchnorm  # the bench's own helper (same folder)

        net = keras_batchnorm(net)
    t0 = time.perf_counter()
    train.fit(net, x[idx], y[idx], xv, yv, seed=seed, verbose=0, **settings)
    secs = time.perf_counter() - t0
    rows = evaluation.classification_rows(yt, M.softmax(train.predict_logits(net, xt)), 500, seed)
    out = {r["metric"]: r for r in rows}
    out["majority"] = benchmarks.majority_share(yt)
    out["seconds"] = secs
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--datasets", nargs="+", default=list(SIZES))
    ap.add_argument("--sizes", nargs="+", type=int, default=[500, 1000])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--variants", nargs="+", default=["recipe", "small-data"])
    a = ap.parse_args()
    recipe = {**load_config(a.config)["train"], "epochs": a.epochs}

    def fmt(r):
        return f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

    print("| set | train images | classes | epochs | seed | variant | accuracy | majority | balanced acc. | "
          "macro AUC | s |\n|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for name in a.datasets:
        ds = data.load(name, SIZES[name])
        for n in a.sizes:
            for seed in a.seeds:
                idx = subsample(ds.split("train")[1], n, seed)
                for variant in a.variants:
                    s = {**recipe, "augment": augmentation_for(ds.name, recipe.get("augment", True))}
                    if variant.startswith("small-data"):
                        s = train.small_data_settings(s, len(idx))
                    r = run(ds, idx, s, seed, keras_bn=variant == "keras-bn")
                    print(f"| {name} | {len(idx)} | {ds.n_classes} | {s['epochs']} | {seed} | {variant} | "
                          f"{fmt(r['accuracy'])} | {r['majority']:.3f} | {fmt(r['balanced_accuracy'])} | "
                          f"{fmt(r['auc'])} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
