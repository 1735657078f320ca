"""Training speed at equal quality: a dataset's default model trained by the project's recipe with the training
implementation the project uses and with the reference it replaced, over several seeds; per-epoch speed and the
test metrics, side by side.

    python bench/train_parity.py [--config configs/default.yaml --dataset isic2018 --seeds 0 1 2 --variants ...]

Variants: ``reference`` (Keras' batch normalisation and the dataset's ``-legacy`` augmentation at the global
batch size and learning rate, 64 and 0.003: the legacy training, CHANGELOG 0.1.0), ``ours`` (fused batch normalisation,
the current augmentation, the dataset's recipe as configured), ``ours-b64`` (the same at batch 64, lr 0.003),
``ours-b128`` and ``ours-b256`` (at batch 128 and 256, the learning rate scaled by the square root of the batch
ratio), ``ours-b256-lr1`` (batch 256 at lr 0.003), ``fused-bn-only`` (the fused batch norm with the legacy
augmentation at the dataset's recipe: separates the two changes). Each (variant, seed) trains
the full recipe of the config (epochs, schedule, class weights) on the whole training split and is evaluated on
the official test split; results are saved under ``--out`` one JSON per run with its settings, so an interrupted
bench resumes (a run whose recipe changed since is trained again; a change of code is not seen: clear ``--out``). The
table gives per variant the median seconds of an epoch's training steps (validation excluded), images per second,
the speed-up over the reference (the median over seeds of the paired ratio: each seed's runs follow each other),
and test accuracy / balanced accuracy / macro AUC as mean ± s.d. over the seeds.

``--jobs 2`` trains two seeds of a variant at once, each in a process of its own, as the book's grid runs its
notebooks (two at a time on 2 cores): the reference's pair, then ours on the same seeds, and so on. Its runs go to
``--out`` + ``-jobs2``; standalone and two-at-a-time timings are not mixed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from advxai import data, models
from advxai.models import train
from advxai.runner.config import load_config

# variant -> (Keras' batch norm?, the dataset's ``-legacy`` augmentation?, batch size and learning rate: "config"
# (the dataset's recipe), or (batch, factor): that batch at the global learning rate × factor, √(batch / 64) being
# the square-root scaling rule for Adam). The global recipe (batch 64, lr 0.003) was ISIC's in the legacy training.
VARIANTS = {"reference": (True, True, (64, 1.0)), "ours": (False, False, "config"),
            "ours-b64": (False, False, (64, 1.0)), "ours-b128": (False, False, (128, 2 ** 0.5)),
            "ours-b256": (False, False, (256, 2.0)), "ours-b256-lr1": (False, False, (256, 1.0)),
            "fused-bn-only": (False, True, "config")}


def settings_of(cfg: dict, dataset: str, model: str | None) -> tuple[dict, dict, dict]:
    """The config's dataset entry, its model (the first, or the one named) and its training settings, as the
    runner merges them (global ``train``, the section's, the dataset's); the Grad-Attacks datasets first, then
    RADAR-MIX's."""
    sections = [{"datasets": cfg["datasets"], "models": cfg["models"], "train": {}}, *cfg.get("radarmix", [])]
    for sec in sections:
        for entry in sec["datasets"]:
            nets = [m for m in sec["models"] if model in (None, m["name"])]
            if entry["name"] == dataset and nets:
                return entry, nets[0], {**cfg["train"], **sec.get("train", {}), **entry.get("train", {})}
    names = sorted({e["name"] for sec in sections for e in sec["datasets"]})
    raise SystemExit(f"dataset {dataset!r} (model {model or 'any'}) is not in the config; datasets: {', '.join(names)}")


def recipe_of(ds, settings: dict, glob: dict, variant: str) -> dict:
    """The training settings of ``variant``: the dataset's recipe with its batch size, learning rate and
    augmentation as the variant says."""
    _, legacy_aug, recipe = VARIANTS[variant]
    s = dict(settings)
    if recipe != "config":
        s.update(batch_size=recipe[0], lr=glob["lr"] * recipe[1])
    s["augment"] = train.augmentation_for(ds.name, s.get("augment", True))
    if legacy_aug and s["augment"]:
        s["augment"] = f"{s['augment']}-legacy"
    return s


def run_one(ds, entry: dict, s: dict, model: dict, variant: str, seed: int) -> dict:
    keras_bn = VARIANTS[variant][0]
    params = {**model.get("params", {}), **entry.get("model_params", {}).get(model["name"], {})}
    net = models.build(model["name"], ds.input_shape, ds.n_classes, seed=seed, **params)
    if keras_bn:
        from train_speed import keras_batchnorm  # the bench's own helper (same folder)
        net = keras_batchnorm(net)
    x, y = ds.split("train")
    hist = train.fit(net, x, y, *ds.split("val"), seed=seed, verbose=0, **s)
    m = train.evaluate(net, *ds.split("test"))
    epoch = float(np.median(hist["train_seconds"]))
    return {"variant": variant, "seed": seed, "settings": s, "epoch_seconds": epoch, "seconds": hist["seconds"],
            "images_per_s": len(y) / epoch, **{k: m[k] for k in ("accuracy", "balanced_accuracy", "auc")}}


def welch(a: list[float], b: list[float]) -> str:
    """mean(a) - mean(b) with its Welch 95 % interval."""
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else 1.0
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    d = a.mean() - b.mean()
    return f"{d:+.3f} [{d - half:+.3f}, {d + half:+.3f}]"


def concurrent(args, out: Path) -> None:
    """Train ``args.jobs`` seeds of each variant at once (this script per seed, one process each), the variants in
    turn on the same seeds; each process saves its run, and the caller's loop below then only reads them."""
    for i in range(0, len(args.seeds), args.jobs):
        for variant in args.variants:
            procs = [subprocess.Popen([sys.executable, __file__, "--config", args.config, "--dataset", args.dataset,
                                       *(["--model", args.model] if args.model else []), "--seeds", str(seed),
                                       "--variants", variant, "--out", str(out)], stdout=subprocess.DEVNULL)
                     for seed in args.seeds[i:i + args.jobs]]
            if any(p.wait() for p in procs):
                raise SystemExit(f"a {variant} run failed (seeds {args.seeds[i:i + args.jobs]}); see its error above")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--dataset", default="isic2018")
    ap.add_argument("--model", default=None, help="a model of the dataset's section (default: its first)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["reference", "ours"], choices=list(VARIANTS))
    ap.add_argument("--out", default="bench/out/train_parity")
    ap.add_argument("--jobs", type=int, default=1, help="seeds of a variant trained at once (the grid runs two)")
    args = ap.parse_args()
    cfg = load_config(Path(args.config))
    entry, model, settings = settings_of(cfg, args.dataset, args.model)
    ds = data.load(entry["name"], entry["size"])
    out = Path(args.out + (f"-jobs{args.jobs}" if args.jobs > 1 else ""))
    out.mkdir(parents=True, exist_ok=True)
    if args.jobs > 1:
        concurrent(args, out)
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            path = out / f"{args.dataset}-{model['name']}-{variant}-s{seed}.json"
            s = recipe_of(ds, settings, cfg["train"], variant)
            # a saved run is reused only for the same settings (a changed recipe trains again)
            if not path.exists() or json.loads(path.read_text()).get("settings") != s:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(run_one(ds, entry, s, model, variant, seed)))
                tmp.replace(path)
            rows.append(json.loads(path.read_text()))
            r = rows[-1]
            print(f"{variant:>13} seed {seed}: {r['epoch_seconds']:.1f} s/epoch ({r['images_per_s']:.0f} images/s), "
                  f"acc {r['accuracy']:.3f} bal {r['balanced_accuracy']:.3f} AUC {r['auc']:.3f}", flush=True)
    print(f"\n{args.dataset}, {model['name']}, seeds {args.seeds}; epochs {settings['epochs']}")
    print(f"{'variant':>13} {'batch':>6} {'lr':>7} {'s/epoch':>8} {'images/s':>9} {'speed-up':>9} "
          f"{'accuracy':>14} {'balanced acc':>14} {'macro AUC':>14}")
    base = [r for r in rows if r["variant"] == "reference"]
    ref_of = {r["seed"]: r["epoch_seconds"] for r in base}
    for variant in args.variants:
        rs = [r for r in rows if r["variant"] == variant]
        sec = float(np.median([r["epoch_seconds"] for r in rs]))
        rate = float(np.median([r["images_per_s"] for r in rs]))
        # paired: each seed's reference epoch over this variant's, run one after the other (drifts cancel)
        paired = [ref_of[r["seed"]] / r["epoch_seconds"] for r in rs if r["seed"] in ref_of]
        speedup = float(np.median(paired)) if paired else float("nan")
        cells = [f"{np.mean([r[k] for r in rs]):.3f} ± {np.std([r[k] for r in rs], ddof=1) if len(rs) > 1 else 0:.3f}"
                 for k in ("accuracy", "balanced_accuracy", "auc")]
        recipe = rs[0]["settings"]
        print(f"{variant:>13} {recipe['batch_size']:>6} {recipe['lr']:>7.4f} {sec:>8.1f} {rate:>9.0f} {speedup:>8.2f}× "
              f"{cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
    if len(base) > 1:
        print("\ndifference of means from the reference, Welch 95 % interval (t with Welch-Satterthwaite df)")
        for variant in [v for v in args.variants if v != "reference"]:
            rs = [r for r in rows if r["variant"] == variant]
            cells = [welch([r[k] for r in rs], [r[k] for r in base]) for k in ("accuracy", "balanced_accuracy", "auc")]
            print(f"{variant:>13} " + "  ".join(f"{k} {c}" for k, c in zip(("acc", "bal", "AUC"), cells, strict=True)))


if __name__ == "__main__":
    main()
