"""The lab as a newcomer meets it: a fresh virtual environment with an empty pip cache installs the library from
this checkout with only what the lab needs (``advxai[cpu,lab]``: the library, TensorFlow, a notebook kernel; not
the book's tools), then runs the course notebook with its solutions filled in (the student's copy after the
exercises are done) and reads every check and figure it printed.

    python bench/lab.py [--venv /tmp/advxai-lab] [--keep]

Prints the install time, the run time, the packages installed, each check's first line, and the number of
figures; the executed notebook and its figures (PNG) are written under ``--out``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "book" / "course" / "exercises.ipynb"
FAILED = ("not implemented", "differs from", "not better", "not manipulated", "out of budget", "degenerate", "expected",
          "Traceback")


def _timed(cmd: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "advxai-lab")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "advxai-lab-out")
    p.add_argument("--keep", action="store_true", help="keep the environment afterwards")
    args = p.parse_args()
    shutil.rmtree(args.venv, ignore_errors=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    cache = Path(tempfile.mkdtemp(prefix="empty-pip-cache-"))  # a newcomer has no download cache
    env = {**os.environ, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    py = args.venv / "bin" / "python"
    install = _timed([sys.executable, "-m", "venv", str(args.venv)])
    leftover = not (ROOT / "build").exists()  # setuptools builds in the checkout: its build/ goes afterwards
    install += _timed([str(py), "-m", "pip", "install", "--quiet", f"{ROOT}[cpu,lab]"], env=env)
    if leftover:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    packages = subprocess.run([str(py), "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True,
                              env=env, check=True).stdout.split()
    book_tools = [p for p in packages if p.split("==")[0].lower() in {"jupyter-book", "papermill", "shap", "lime"}]
    size = sum(f.stat().st_size for f in args.venv.rglob("*") if f.is_file())
    shutil.rmtree(cache, ignore_errors=True)
    # the solutions are in: the notebook as the book has it, without the teacher's answer key
    nb = json.loads(COURSE.read_text())
    nb["cells"] = [c for c in nb["cells"] if "answer" not in c.get("metadata", {}).get("tags", [])]
    filled = args.out / "exercises.ipynb"
    filled.write_text(json.dumps(nb))
    runner = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], 4); "
              "nbclient.NotebookClient(nb, timeout=1800, kernel_name='python3', "
              "resources={'metadata': {'path': sys.argv[2]}}).execute(); nbformat.write(nb, sys.argv[1])")
    subprocess.run([str(py), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], check=True,
                   capture_output=True)
    run = _timed([str(py), "-c", runner, str(filled), str(args.out)], env=env)
    ran = json.loads(filled.read_text())
    checks, figures = [], 0
    for cell in ran["cells"]:
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                figures += 1
                (args.out / f"figure-{figures}.png").write_bytes(base64.b64decode(out["data"]["image/png"]))
            text = "".join(out.get("text", ""))
            if "course.check_" in "".join(cell["source"]) and text:
                checks.append(text.strip().splitlines()[0])
    print(f"install: {install:.0f} s, {size / 2**30:.2f} GB, {len(packages)} packages "
          f"(book tools installed: {book_tools or 'none'})")
    print(f"run: {run:.0f} s for {sum(c['cell_type'] == 'code' for c in ran['cells'])} code cells; "
          f"{figures} figures in {args.out}")
    for line in checks:
        print(("FAILED " if any(f in line for f in FAILED) else "ok     ") + line[:150])
    if not args.keep:
        shutil.rmtree(args.venv, ignore_errors=True)


if __name__ == "__main__":
    main()
