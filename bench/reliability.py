"""Reliability figures: bad inputs, repeatability, and memory against the number of images.

    python bench/reliability.py [--skip-grid] [--skip-memory] [--markdown]

1. Every bad input we could think of (types, booleans, ranges, names, duplicates, paths, HTML, corrupt files,
   shapes, concurrency, a failing grid cell) is tried; each gets a verdict: clear (one of our errors, one line,
   naming the key, value or fix), misleading (one line that does not), traceback, silent (accepted) or unsafe
   (raw HTML in a page); and the partial files it left behind. Target: all clear, 0 partial.
2. configs/tiny.yaml is run twice into two fresh folders; the largest absolute difference over all metrics
   (``seconds`` excluded) is printed. Target: 0.
3. Peak resident memory of attack + Grad-CAM on n and 4n test images, each in a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
VERDICTS = ["clear", "misleading", "traceback", "silent", "unsafe"]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# A config case: YAML added to configs/tiny.yaml (through `extends`), and a fragment its one-line error must hold to
# count as clear (the key, the value or the fix); each is (kind, YAML, fragment).
CONFIG_CASES = [
    ("types", "attack: {names: [fgsm], eps: [0.05], n_images: [100]}", "attack.n_images must be an integer"),
    ("types", 'train: {epochs: "12"}', "train.epochs must be an integer"),
    ("types", "train: {lr: fast}", "train.lr must be a number"),
    ("types", "train: {lr: 3e-3}", "write it with a dot"),
    ("types", "train: null", "train must be a mapping"),
    ("types", "attack: null", "attack must be a mapping"),
    ("types", "seed: zero", "seed must be an integer"),
    ("types", "attack: {names: [fgsm], eps: [0.05], n_images: 99.7}", "attack.n_images must be an integer"),
    ("types", "estimates: fast", "estimates must be a mapping"),
    ("types", "models: cnn", "models must be a list"),
    ("types", "datasets: pneumoniamnist", "datasets must be a list"),
    ("types", 'datasets: [{name: pneumoniamnist, size: "28"}]', "datasets[0].size must be an integer"),
    ("types", "detection: {datasets: [pneumoniamnist], folds: five}", "detection.folds must be an integer"),
    ("types", 'attack: {names: [fgsm], eps: ["0.1x"], n_images: 12}', "attack.eps[0] must be a number"),
    ("types", 'attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iter: "5"}}}',
     "max_iter must be an integer"),
    ("types", "models: [{name: cnn, params: {dropout: yes}}]", "dropout must be a number"),
    ("types", "radarmix: {datasets: [pneumoniamnist], explain: {params: {lime: {num_samples: 1.5}}}}",
     "num_samples must be an integer"),
    ("types", "seeds: [1, two]", "seeds[1] must be an integer"),
    ("types", "per_seed: detection\nseeds: [1]", "per_seed must be a list"),
    ("booleans", 'gpu: "no"', "gpu must be true or false"),
    ("booleans", 'attack: {names: [fgsm], eps: [0.05], n_images: 12, split: "no"}', "attack.split must be true"),
    ("booleans", "strength: {faithful: 1}", "strength.faithful must be true or false"),
    ("booleans", 'radarmix: {datasets: [pneumoniamnist], faithful: "yes"}', "radarmix.faithful must be true"),
    ("booleans", "attack: {names: [fgsm], eps: [true], n_images: 12}", "attack.eps[0] must be a number"),
    ("ranges", "attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iter: -10}}}",
     "max_iter must be at least 1"),
    ("ranges", "attack: {names: [], eps: [0.05], n_images: 12}", "attack.names is empty"),
    ("ranges", "n_boot: -1", "n_boot must be at least 1"),
    ("ranges", "detection: {datasets: [pneumoniamnist], n_images: -5}", "detection.n_images must not be negative"),
    ("ranges", "radarmix: {datasets: [isic2018], explain: {n_explain: {shap: -2}}}", "n_explain.shap must not be"),
    ("ranges", "datasets: [{name: chest_xray, size: 100000}]", "above the 512 px"),
    ("ranges", "attack: {names: [fgsm], eps: [0.1, 3], n_images: 12}", "must be at most 1"),
    ("ranges", "attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {step_ratio: 2}}}", "step_ratio"),
    ("ranges", "models: [{name: cnn, params: {width: 0}}]", "width must be at least 1"),
    ("ranges", "train: {label_smoothing: 1.5}", "label_smoothing must be at most 1"),
    ("ranges", "detection: {datasets: [pneumoniamnist], attack: {names: [fgsm], eps: {fgsm: [2]}}}", "at most 1"),
    ("ranges", "detection: {datasets: [pneumoniamnist], folds: 2}", "detection.folds must be ≥ 5"),
    ("ranges", "robustness: {datasets: [pneumoniamnist], eps: [0]}", "ε = 0 is clean accuracy"),
    ("ranges", "robustness: {datasets: [pneumoniamnist], n_images: 100000}", "robustness.n_images"),
    ("ranges", "datasets: [{name: pneumoniamnist, size: 100}]", "100"),
    ("names", "models: [{name: cnn, params: {widht: 8}}]", "did you mean 'width'"),
    ("names", "attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iters: 5}}}", "max_iter"),
    ("names", "robustness: {datasets: [pneumoniamnist], n_image: 9}", "did you mean 'n_images'"),
    ("names", "estimates: {trian: 5}", "did you mean 'train'"),
    ("names", "detection: [{datasets: [pneumoniamnist]}, {datasets: [pneumoniamnist], foldz: 5}]", "'folds'"),
    ("names", "explain: {names: [lrp]}", "lrp"),
    ("names", "per_seed: [detections]\nseeds: [1]", "per_seed[0] must be one of"),
    ("names", "robustness: {datasets: [pneumoniamnist], attacks: {deepfool: {}}}", "not ε-bounded"),
    ("names", "radarmix: {datasets: [pneumoniamnist], attack: {names: [pgd]}}", "at least two attacks"),
    ("duplicates", "attack: {names: [fgsm]}\nattack: {names: [pgd]}", "key 'attack' appears twice"),
    ("duplicates", "seeds: [1, 1]", "lists a value twice"),
    ("duplicates", "seeds: [0]", "not the config's own seed"),
    ("paths", "models: [{name: cnn, label: ../../../../elsewhere/x}]", "models[0].label"),
    ("paths", "name: ../escape", "name '../escape' must be 1–64"),
    ("paths", "name: .hidden", "name '.hidden' must be 1–64"),
    ("paths", 'name: "a\\nb"', "must be 1–64"),
    ("paths", "extends: /dev/zero", "must be a YAML file of at most"),
    ("paths", "extends: /tmp", "must be a YAML file of at most"),
    ("html", "name: <script>alert(1)</script>", "must be 1–64"),
    ("html", "models: [{name: cnn, label: '<img src=x onerror=alert(1)>'}]", "must be 1–64"),
    ("yaml", "a: !!python/object/apply:os.system [echo hi]", "not valid YAML"),
    ("yaml", "attack: {names: [fgsm], eps: [0.05]", "not valid YAML"),
]

# A command-line case: arguments of `advxai`, and the fragment of its one line.
CLI_CASES = [
    ("paths", ["run", "configs/tiny.yaml", "--results", "README.md"], "is a file, not a folder"),
    ("paths", ["run", "configs/tiny.yaml", "--results", "/proc/advxai"], "is under /proc"),
    ("paths", ["validate", "configs/tiny.yaml", "--results", "/etc/advxai"], "is under /etc"),
    ("paths", ["book", "configs/tiny.yaml", "--book", "/tmp/elsewhere"], "is outside --root"),
    ("names", ["fetch", "cifar10"], "cifar10"),
]


def bad_inputs(work: Path) -> list[dict]:
    """Every case: its kind, what was tried, the verdict (clear / misleading / traceback / silent / unsafe) and
    the message; and how many partial files it left."""
    from advxai import attacks, data, explain, models
    from advxai.book import course
    from advxai.book.style import render_markdown
    from advxai.detect import fits
    from advxai.errors import AdvXAIError
    from advxai.runner import cli, pipeline
    from advxai.runner.lock import results_lock

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

    def yaml_case(text: str):
        def run():
            path = Path(tempfile.mkdtemp(dir=work)) / "c.yaml"
            base = "" if text.startswith("extends:") else f"extends: {ROOT / 'configs' / 'tiny.yaml'}\n"
            path.write_text(f"{base}{text}\n")
            pipeline.load_config(path)
        return run

    def cli_case(args: list[str]):
        def run():
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = cli.main(args)
            if rc == 2:
                raise AdvXAIError(err.getvalue().strip().removeprefix("advxai: error: "))
        return run

    def sha_mismatch():
        root = Path(tempfile.mkdtemp(dir=work))
        (root / "raw").mkdir()
        (root / "raw" / "ChestXRay2017.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # a zip put there by hand
        (root / "raw" / "SHA256SUMS").write_text(f"{'0' * 64}  ChestXRay2017.zip\n")  # an earlier download's record
        data.fetch_raw("chest_xray", root=root, log=lambda *a: None)

    def second_build():
        results = work / "locked"
        holder = subprocess.Popen([sys.executable, "-c", (
            "import sys, time; sys.path.insert(0, sys.argv[1]); from advxai.runner.lock import results_lock\n"
            "with results_lock(sys.argv[2]):\n    print('held', flush=True); time.sleep(60)"),
            str(ROOT / "lib"), str(results)], stdout=subprocess.PIPE, text=True)
        try:
            holder.stdout.readline()
            pipeline.run_grid(ROOT / "configs" / "tiny.yaml", results, log=lambda *a, **k: None)
        finally:
            holder.kill()
            holder.wait()

    def html(text: str):
        def run():
            out = render_markdown(text)
            if "<script" in out or "<img" in out:
                raise UnsafeOutput(f"raw HTML in the page: {out.strip()[:80]}")
            return SHOWN
        return run

    os.environ["ADVXAI_CACHE"] = str(work / "cache")
    raw = real.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    cases = [  # (kind, what, call, fragment of a clear message)
        ("data", "missing MedMNIST file, offline", lambda: (os.environ.__setitem__("ADVXAI_OFFLINE", "1"), data.load(
            "pneumoniamnist", 28, root=medmnist_root(None))), "ADVXAI_OFFLINE"),
        ("corrupt files", "wrong MD5 (last byte changed)", lambda: data.load(
            "pneumoniamnist", 28, root=medmnist_root(raw[:-1] + bytes([raw[-1] ^ 1]))), "MD5"),
        ("corrupt files", "truncated .npz", lambda: data.load(
            "pneumoniamnist", 28, root=medmnist_root(raw[: len(raw) // 3])), "MD5"),
        ("corrupt files", "bit-flipped .npz", lambda: data.load(
            "pneumoniamnist", 28, root=medmnist_root(bytes(flipped))), "MD5"),
        ("corrupt files", "corrupt image in folder", lambda: data.load(
            "chest_xray", 32, root=folder_root(corrupt=True)), "bad.jpeg"),
        ("corrupt files", "corrupt model file", lambda: (Path(work / "bad.keras").write_bytes(b"xx"),
                                                         models.load(work / "bad.keras")), "bad.keras"),
        ("corrupt files", "raw archive differing from the recorded SHA-256", sha_mismatch, "SHA-256"),
        ("corrupt files", "config file of binary bytes", lambda: (Path(work / "bin.yaml").write_bytes(b"\xff\xfe\0"),
                                                                  pipeline.load_config(work / "bin.yaml")), "bin.yaml"),
        ("names", "unknown dataset", lambda: data.load("cifar10"), "cifar10"),
        ("ranges", "unknown MedMNIST size", lambda: data.load("pneumoniamnist", 100), "100"),
        ("data", "folder dataset missing", lambda: data.load("chest_xray", 32, root=work / "nowhere"), "chest_xray"),
        ("data", "a class with no images", lambda: data.load("chest_xray", 32, root=folder_root(empty_class=True)),
         "NORMAL"),
        ("names", "unknown model", lambda: models.build("alexnet", (28, 28, 1), 2), "alexnet"),
        ("shapes", "model input not (H, W, C)", lambda: models.build("cnn", (28, 28), 2), "(H, W, C)"),
        ("paths", "missing model file", lambda: models.load(work / "none.keras"), "none.keras"),
        ("names", "unknown attack", lambda: attacks.generate(net, x, y, "jsma", 0.1), "jsma"),
        ("names", "unknown attack parameter", lambda: attacks.params_for("pgd", {"steps": 5}), "steps"),
        ("ranges", "ε < 0", lambda: attacks.generate(net, x, y, "fgsm", -0.01), "-0.01"),
        ("ranges", "ε > 1", lambda: attacks.generate(net, x, y, "fgsm", 1.5), "1.5"),
        ("ranges", "ε NaN", lambda: attacks.generate(net, x, y, "fgsm", float("nan")), "nan"),
        ("shapes", "wrong image shape (attack)", lambda: attacks.generate(net, x[:, :20], y, "fgsm", 0.1), "20"),
        ("ranges", "images in 0-255 (attack)", lambda: attacks.generate(net, x * 255, y, "fgsm", 0.1), "[0, 1]"),
        ("names", "unknown explainer", lambda: explain.explain("occlusion", net, x), "occlusion"),
        ("shapes", "wrong image shape (explainer)", lambda: explain.explain("gradcam", net, x[..., 0]), "(N, 28"),
        ("shapes", "LIME on an image of the wrong shape", lambda: explain.explain("lime", net, x[:, :14, :14]), "14"),
        ("data", "detector trained on one kind", lambda: fits.fit("logistic", np.zeros((4, 3)), np.zeros(4)),
         "one kind"),
        ("paths", "course folder without notebooks", lambda: course.student_copy(work / "nothing", work / "st"),
         "nothing"),
        ("paths", "config file missing", lambda: pipeline.load_config(work / "none.yaml"), "not found"),
        ("html", "generated markdown holding <script>", html("a <script>alert(1)</script>"), ""),
        ("html", "generated markdown holding <img onerror>", html("<img src=x onerror=alert(1)>"), ""),
        ("concurrency", "a second build on a results folder in use", second_build, "in use by another advxai build"),
        ("concurrency", "a results folder locked by this very build", lambda: _nested_lock(results_lock, work),
         "in use by another advxai build"),
        ("grid", "notebook that raises (grid cell)", lambda: _failing_grid(work, config), "chest_xray"),
        *((kind, f"config: {text}", yaml_case(text), fragment) for kind, text, fragment in CONFIG_CASES),
        *((kind, "advxai " + " ".join(args), cli_case(args), fragment) for kind, args, fragment in CLI_CASES),
    ]
    rows = []
    for kind, name, fn, fragment in cases:
        before = _files(work)
        try:
            if fn() == SHOWN:
                verdict, msg = "clear", "shown as text, never run"
            else:
                verdict, msg = "silent", "no error raised"
        except UnsafeOutput as exc:
            verdict, msg = "unsafe", str(exc)
        except AdvXAIError as exc:
            msg = str(exc)
            one_line = "\n" not in msg and 0 < len(msg) < 400
            verdict = "clear" if one_line and fragment.lower() in msg.lower() else "misleading"
        except Exception as exc:  # noqa: BLE001 - counted as a traceback
            verdict, msg = "traceback", f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.pop("ADVXAI_OFFLINE", None)
        left = [p for p in _files(work) - before if _is_partial(p)]
        rows.append({"kind": kind, "input": name[:70], "verdict": verdict, "partial_files": len(left),
                     "message": msg[:100]})
    return rows


SHOWN = "shown as text"  # what an HTML case returns when the page escapes the text: the right outcome, no error


class UnsafeOutput(Exception):
    """What a case found that should never happen: raw HTML in a page, a file outside the results folder."""


def _nested_lock(results_lock, work: Path) -> None:
    with results_lock(work / "nested"), results_lock(work / "nested"):
        pass


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
    ap.add_argument("--skip-memory", action="store_true", help="skip the two memory measurements")
    ap.add_argument("--markdown", action="store_true", help="print the verdict counts as a markdown table")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="advxai-reliability-"))
    try:
        rows = pd.DataFrame(bad_inputs(work))
        with pd.option_context("display.width", 250, "display.max_colwidth", 100, "display.max_rows", 500):
            print(rows.to_string(index=False))
        counts = rows.groupby("kind").verdict.value_counts().unstack(fill_value=0)
        counts = counts.reindex(columns=VERDICTS, fill_value=0)
        counts.loc["all"] = counts.sum()
        print(f"\nbad inputs tried: {len(rows)}; leaving a partial file: {int((rows.partial_files > 0).sum())}\n")
        print(counts.to_markdown() if args.markdown else counts.to_string())
        if not args.skip_grid:
            print(f"two identical tiny-grid runs: largest |difference| over all metrics = {repeatability(work):.3g}")
        if not args.skip_memory:
            m1, m4 = memory(156), memory(624)
            print(f"peak memory, attack + Grad-CAM: {m1:.0f} MB at 156 images, {m4:.0f} MB at 624 images "
                  f"(x{m4 / m1:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
