"""What one edit costs: the runs it reruns and the pages it re-renders, read from the plan (nothing is rerun).

    python bench/edits.py [--config configs/default.yaml] [--results results] [--markdown]

Each edit is applied to a scratch copy of the repository (library, notebooks, configs, chapters, locks); the plan
of ``--config`` is computed there and in an unedited copy, in fresh processes. A run reruns when its key differs;
a cached run's page is re-rendered when only its drawing or wording differs (render fingerprint). With
``--results`` (a built grid), the counts are also read from ``advxai plan`` over that folder (``will run`` and
``re-render``), which must agree: the grid's runs are the unedited keys. ``--markdown`` prints the table for the
README. Expected (docs/cache-keys.md): docstring, comment, markdown cell, figure colour, chapter sentence -> 0
runs; a detector's score -> the detection runs and the summary; a training hyperparameter of one dataset -> that
dataset's runs and the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("lib", "notebooks", "configs", "book", "requirements", "pyproject.toml")


def _sub(path: str, old: str, new: str):
    def edit(root: Path) -> None:
        p = root / path
        text = p.read_text()
        if old not in text:
            raise SystemExit(f"bench/edits.py: {path} no longer holds {old!r}; update the edit")
        p.write_text(text.replace(old, new, 1))
    return edit


def _markdown_cell(path: str):
    def edit(root: Path) -> None:
        p = root / path
        nb = json.loads(p.read_text())
        cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
        cell["source"] = ["".join(cell["source"]) + " One more sentence."]
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return edit


def _config(path: str, change):
    def edit(root: Path) -> None:
        p = root / path
        cfg = yaml.safe_load(p.read_text())
        change(cfg)
        p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return edit


def _epochs(cfg: dict) -> None:
    d = cfg["datasets"][-1]  # the grid's last Grad-Attacks dataset: its training and what reads that model
    d.setdefault("train", {})["epochs"] = d.get("train", {}).get("epochs", cfg["train"]["epochs"]) + 1


EDITS = {  # edit -> what it does to the scratch copy
    "a docstring in measure/tables.py": _sub("lib/advxai/measure/tables.py", '"""', '"""Reworded. '),
    "a comment in models/train.py": _sub("lib/advxai/models/train.py", "\nimport ", "\n# a new comment\nimport "),
    "a markdown cell of 02_attack.ipynb": _markdown_cell("notebooks/02_attack.ipynb"),
    "a figure helper's colour (book/runplots.py)": _sub("lib/advxai/book/runplots.py", 'cmap="Blues"',
                                                        'cmap="Greens"'),
    "a chapter sentence (book/gradattacks.md)": _sub("book/gradattacks.md", "asked how far", "asked how much"),
    "the body of one detector's score (detect/detectors.py, msp)": _sub(
        "lib/advxai/detect/detectors.py", 'return -output_features(v["logits"])[:, :1]',
        'return 0.0 - output_features(v["logits"])[:, :1]'),
    "a training hyperparameter (the last dataset's epochs)": None,  # set per config in main()
}

PROBE = """
import json, sys
from pathlib import Path
from advxai.runner import pipeline
from advxai.runner.render import stale
runs = pipeline.plan(pipeline.load_config(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps([{"stage": r.stage, "run": r.label, "key": r.key, "render": r.render,
                   "state": ("re-render" if stale(r) else "cached") if r.done else "will run"} for r in runs]))
"""


def scratch_copy(dest: Path) -> Path:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "_build", "runs",
                                                                           "*.egg-info"))
        else:
            shutil.copy(src, dest / name)
    return dest


def probe(root: Path, config: str, results: Path) -> list[dict]:
    """The plan of ``config`` computed from the code in ``root`` (a fresh process: nothing cached)."""
    env = dict(os.environ, PYTHONPATH=str(root / "lib"), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", PROBE, str(root / config), str(results)], env=env,
                         capture_output=True, text=True, cwd=root)
    if out.returncode:
        raise SystemExit(f"bench/edits.py: the plan failed in {root}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout)


def _named(rows: list[dict]) -> dict:
    """Runs by (stage, label, occurrence): two training runs may share a label (same model, other recipe)."""
    seen: dict = {}
    out = {}
    for r in rows:
        n = seen[(r["stage"], r["run"])] = seen.get((r["stage"], r["run"]), -1) + 1
        out[(r["stage"], r["run"], n)] = r
    return out


def unedited(config: str, results: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as a:
        return probe(scratch_copy(Path(a)), config, results)


def measure(edit, config: str, results: Path, before: list[dict]) -> dict:
    """Apply ``edit`` to a scratch copy; the runs whose key changed against ``before`` (the unedited plan), the
    pages whose drawing changed, and (on a built grid) what the plan over ``results`` says."""
    with tempfile.TemporaryDirectory() as b:
        root = scratch_copy(Path(b))
        edit(root)
        after = probe(root, config, results)
    old, new = _named(before), _named(after)
    rerun = [r for k, r in new.items() if k not in old or old[k]["key"] != r["key"]]
    redraw = [r for k, r in new.items() if r not in rerun and old[k]["render"] != r["render"]]
    return {"runs": len(after), "rerun": rerun, "redraw": redraw,
            "plan_will_run": sum(r["state"] == "will run" for r in after),
            "plan_re_render": sum(r["state"] == "re-render" for r in after)}


def measure_all(edits: dict, config: str, results: Path, before: list[dict], workers: int = 2) -> dict[str, dict]:
    """:func:`measure` for every edit, ``workers`` plans at once (each a fresh process, most of its time spent
    importing TensorFlow: two share 2 cores well)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        done = {name: pool.submit(measure, edit, config, results, before) for name, edit in edits.items()}
        return {name: f.result() for name, f in done.items()}


def stages(rows: list[dict]) -> str:
    count: dict[str, int] = {}
    for r in rows:
        count[r["stage"]] = count.get(r["stage"], 0) + 1
    return ", ".join(f"{s} {n}" for s, n in count.items()) or "—"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--results", type=Path, default=None, help="a built grid's results folder (counts from its plan)")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    results = (args.results or Path(tempfile.mkdtemp())).resolve()
    edits = dict(EDITS, **{"a training hyperparameter (the last dataset's epochs)": _config(args.config, _epochs)})
    before = unedited(args.config, results)
    rows = list(measure_all(edits, args.config, results, before).items())
    for name, m in rows:
        print(f"{name}: {len(m['rerun'])} of {m['runs']} runs rerun ({stages(m['rerun'])}); "
              f"{len(m['redraw'])} pages re-rendered ({stages(m['redraw'])})"
              + (f"; plan over {args.results}: {m['plan_will_run']} will run, {m['plan_re_render']} re-render"
                 if args.results else ""), flush=True)
    if args.markdown:
        print(f"\n| edit ({args.config}) | runs rerun | pages re-rendered |\n|---|---|---|")
        for name, m in rows:
            print(f"| {name} | {len(m['rerun'])} of {m['runs']} ({stages(m['rerun'])}) | "
                  f"{len(m['redraw'])} ({stages(m['redraw'])}) |")


if __name__ == "__main__":
    main()
