"""Reliability figures (issue 5): bad inputs, repeatability, and memory against the number of images.

    python bench/reliability.py [--skip-grid]

1. Every bad input we could think of is tried; for each we report whether it raised one of our errors with a
   one-line message, and whether it left any file behind (a partial artefact). Target: all clear, 0 partial.
2. configs/tiny.yaml is run twice into two fresh folders; the largest absolute difference over all metrics
   (``seconds`` excluded) is printed. Target: 0.
3. Peak resident memory of attack + Grad-CAM on n and 4n test images, each in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def bad_inputs(work: Path) -> list[dict]:
    from advxai import attacks, data, detect, explain, models
    from advxai.book import course
    from advxai.errors import AdvXAIError
    from advxai.runner import pipeline

    real = data.data_dir() / "medmnist" / "pneumoniamnist.npz"
    net = models.build("cnn", (28, 28, 1), 2, width=4)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    y = np.array([0, 1, 0, 1])

    def medmnist_root(content: bytes | None) -> Path:
        root = Path(tempfile.mkdtemp(dir=work))
        (root / "medmnist").mkdir()
        if content is not None:
            (root / "medmnist" / "pneumoniamnist.npz").write_bytes(content)
        return root

    def folder_root(empty_class: bool = False, corrupt: bool = False) -> Path:
        root = Path(tempfile.mkdtemp(dir=work))
        src = data.data_dir() / "raw" / "chest_xray"
        for split in ("train", "test"):
            for cls in ("NORMAL", "PNEUMONIA"):
                d = root / "raw" / "chest_xray" / split / cls
                d.mkdir(parents=True)
                if empty_class and cls == "NORMAL" and split == "test":
                    continue
                for f in sorted((src / split / cls).glob("*.jpeg"))[:3]:
                    (d / f.name).symlink_to(f)
        if corrupt:
            (root / "raw" / "chest_xray" / "test" / "NORMAL" / "bad.jpeg").write_bytes(b"\x00" * 10)
        return root

    def config(**change) -> Path:
        cfg = {**yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text()), **change}
        path = Path(tempfile.mkdtemp(dir=work)) / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    os.environ["ADVXAI_CACHE"] = str(work / "cache")
    raw = real.read_bytes()
    cases = {
        "missing MedMNIST file, offline": lambda: (os.environ.__setitem__("ADVXAI_OFFLINE", "1"),
                                                   data.load("pneumoniamnist", 28, root=medmnist_root(None))),
        "wrong MD5 (one byte changed)": lambda: data.load("pneumoniamnist", 28,
                                                          root=medmnist_root(raw[:-1] + bytes([raw[-1] ^ 1]))),
        "truncated .npz": lambda: data.load("pneumoniamnist", 28, root=medmnist_root(raw[: len(raw) // 3])),
        "unknown dataset": lambda: data.load("cifar10"),
        "unknown MedMNIST size": lambda: data.load("pneumoniamnist", 100),
        "folder dataset missing": lambda: data.load("chest_xray", 32, root=work / "nowhere"),
        "a class with no images": lambda: data.load("chest_xray", 32, root=folder_root(empty_class=True)),
        "corrupt image in folder": lambda: data.load("chest_xray", 32, root=folder_root(corrupt=True)),
        "unknown model": lambda: models.build("alexnet", (28, 28, 1), 2),
        "model input not (H, W, C)": lambda: models.build("cnn", (28, 28), 2),
        "missing model file": lambda: models.load(work / "none.keras"),
        "corrupt model file": lambda: (Path(work / "bad.keras").write_bytes(b"xx"), models.load(work / "bad.keras")),
        "unknown attack": lambda: attacks.generate(net, x, y, "jsma", 0.1),
        "unknown attack parameter": lambda: attacks.params_for("pgd", {"steps": 5}),
        "ε < 0": lambda: attacks.generate(net, x, y, "fgsm", -0.01),
        "ε > 1": lambda: attacks.generate(net, x, y, "fgsm", 1.5),
        "ε NaN": lambda: attacks.generate(net, x, y, "fgsm", float("nan")),
        "wrong image shape (attack)": lambda: attacks.generate(net, x[:, :20], y, "fgsm", 0.1),
        "images in 0-255 (attack)": lambda: attacks.generate(net, x * 255, y, "fgsm", 0.1),
        "unknown explainer": lambda: explain.explain("occlusion", net, x),
        "wrong image shape (explainer)": lambda: explain.explain("gradcam", net, x[..., 0]),
        "LIME on an image of the wrong shape": lambda: explain.explain("lime", net, x[:, :14, :14]),
        "detector trained on one kind": lambda: detect.fit(np.zeros((4, 3)), np.zeros(4)),
        "course folder without notebooks": lambda: course.student_copy(work / "nothing", work / "student"),
        "radarmix with one attack": lambda: pipeline.load_config(config(radarmix={
            "datasets": ["pneumoniamnist"], "attack": {"names": ["pgd"]}})),
        "config file missing": lambda: pipeline.load_config(work / "none.yaml"),
        "config not YAML": lambda: (Path(work / "bad.yaml").write_text("a: [1, 2"),
                                    pipeline.load_config(work / "bad.yaml")),
        "config ε out of range": lambda: pipeline.load_config(config(attack={"eps": [0.1, 3]})),
        "config unknown explainer": lambda: pipeline.load_config(config(explain={"names": ["lrp"]})),
        "notebook that raises (grid cell)": lambda: _failing_grid(work, config),
    }
    rows = []
    for name, fn in cases.items():
        before = _files(work)
        try:
            fn()
            clear, msg = False, "no error raised"
        except AdvXAIError as exc:
            msg = str(exc)
            clear = "\n" not in msg and 0 < len(msg) < 400
        except Exception as exc:  # noqa: BLE001 - counted as unclear
            clear, msg = False, f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.pop("ADVXAI_OFFLINE", None)
        left = [p for p in _files(work) - before if _is_partial(p)]
        rows.append({"input": name, "clear_one_line": clear, "partial_files": len(left), "message": msg[:110]})
    return rows


def _is_partial(p: Path) -> bool:
    """Files a failure may legitimately leave are the inputs the case itself wrote; anything else
    (.part files, run folders without provenance, half-written caches) counts as partial."""
    return p.suffix == ".part" or ".tmp-" in str(p) or ("runs" in p.parts and not _finished(p))


def _finished(p: Path) -> bool:
    parts = p.parts
    i = parts.index("runs")
    run_dir = Path(*parts[: i + 3])
    return (run_dir / "provenance.json").exists()


def _failing_grid(work: Path, config) -> None:
    from advxai.errors import AdvXAIError
    from advxai.runner import pipeline

    results = work / "grid"
    os.environ["ADVXAI_DATA_SAVED"] = os.environ.get("ADVXAI_DATA", "")
    cfg = config(datasets=[{"name": "chest_xray", "size": 32}])
    os.environ["ADVXAI_DATA"] = str(work / "nowhere")
    try:
        records = pipeline.run_grid(cfg, results, log=lambda *a, **k: None)
    finally:
        os.environ["ADVXAI_DATA"] = os.environ.pop("ADVXAI_DATA_SAVED")
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        raise AdvXAIError(failed[0]["error"])


def repeatability(work: Path) -> float:
    from advxai.runner import pipeline

    frames = []
    for i in range(2):
        results = work / f"repeat{i}"
        pipeline.run_grid(ROOT / "configs" / "tiny.yaml", results, log=lambda *a, **k: None)
        df = pd.read_csv(results / "tables" / "results.csv")
        # run folder names hold code/notebook hashes, so rows are matched by what they measure
        frames.append(df[df.metric != "seconds"].sort_values(["dataset", "model", "attack", "eps", "explainer",
                                                              "metric", "n"]))
    a, b = (f.reset_index(drop=True) for f in frames)
    return float((a.value - b.value).abs().max())


MEMORY = textwrap.dedent("""
    import resource, sys, numpy as np
    from advxai import attacks, data, explain, models
    from advxai.models import train
    n = int(sys.argv[1])
    ds = data.load("pneumoniamnist", 28)
    net = models.build("cnn", ds.input_shape, 2, width=16)
    x, y = ds.split("test")
    idx = data.balanced_subset(y, n)
    for name in ("fgsm", "pgd"):
        x_adv, _ = attacks.generate(net, x[idx], y[idx], name, 0.05)
        explain.explain("gradcam", net, x_adv, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""")


def memory(n: int) -> float:
    out = subprocess.run([sys.executable, "-c", MEMORY, str(n)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-grid", action="store_true", help="skip the two tiny grid runs (repeatability)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="advxai-reliability-"))
    try:
        rows = pd.DataFrame(bad_inputs(work))
        with pd.option_context("display.width", 200, "display.max_colwidth", 110):
            print(rows.to_string(index=False))
        print(f"\nbad inputs tried: {len(rows)}; clear one-line errors: {int(rows.clear_one_line.sum())}; "
              f"leaving a partial file: {int((rows.partial_files > 0).sum())}")
        if not args.skip_grid:
            print(f"two identical tiny-grid runs: largest |difference| over all metrics = {repeatability(work):.3g}")
        m1, m4 = memory(156), memory(624)
        print(f"peak memory, attack + Grad-CAM: {m1:.0f} MB at 156 images, {m4:.0f} MB at 624 images "
              f"(x{m4 / m1:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
