"""A run's page: the outputs its computing cells produced, with figures and words drawn afresh from its saved files.

A stage run computes and saves its arrays and tables (its cache key covers that code only,
:mod:`~advxai.runner.fingerprint`). Its page is the executed notebook. When what the page draws or says changes —
a ``render`` cell, a markdown cell, a drawing or wording module (the run's *render fingerprint*) — while the key
does not, the page is re-rendered instead of the run recomputed: the notebook's parameters, ``setup`` and
``render`` cells are executed again in the run's folder (they read only its saved files), and their outputs are
spliced with the cached outputs of the computing cells under the notebook's current text. The result is
``page.ipynb`` in the run folder, with the fingerprint it was drawn with in ``page.json``; both are written
atomically, and the run's own ``notebook.ipynb`` and ``provenance.json`` are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from ..artefacts import load_json, save_json
from .executors import quiet_output
from .fingerprint import role
from .runs import Run

PAGE, PAGE_META = "page.ipynb", "page.json"


def _role(cell: dict) -> str | None:
    # papermill's injected parameters are part of the parameters, not a computing cell
    return "injected" if "injected-parameters" in cell.get("metadata", {}).get("tags", []) else role(cell)


def _current(run: Run) -> Path | None:
    """The finished run's page drawn with the current drawing and wording: its executed notebook, its re-rendered
    page, or ``None`` when neither is (the page is stale)."""
    if load_json(run.out_dir / "provenance.json").get("render") == run.render:
        return run.out_dir / "notebook.ipynb"
    meta = run.out_dir / PAGE_META
    if meta.exists() and load_json(meta)["render"] == run.render and (run.out_dir / PAGE).exists():
        return run.out_dir / PAGE
    return None


def stale(run: Run) -> bool:
    """Whether a finished run's page shows other drawing or wording than the current code would."""
    return _current(run) is None


def page(run: Run) -> Path:
    """The notebook to publish for a finished run: the page drawn with the current code, else (a stale page whose
    re-render failed) its executed notebook, drawn with the code it ran with."""
    return _current(run) or run.out_dir / "notebook.ipynb"


def rerender(run: Run, kernel: str = "python3") -> dict:
    """Re-draw a finished run's page from its saved files (no computing cell runs). Returns a status record."""
    import papermill as pm

    src = json.loads(run.notebook.read_text())
    executed = json.loads((run.out_dir / "notebook.ipynb").read_text())
    script = dict(src, cells=[c for c in src["cells"] if role(c) in ("parameters", "setup", "render")])
    work = run.out_dir.parent / f".render-{run.out_dir.name}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        (work / "script.ipynb").write_text(json.dumps(script))
        with quiet_output(run.results / "logs" / f"{run.stage}-{run.label}.render.log"):  # the kernel's lines too
            pm.execute_notebook(str(work / "script.ipynb"), str(work / "drawn.ipynb"),
                                parameters=run.notebook_parameters(), kernel_name=kernel, progress_bar=False,
                                cwd=str(run.out_dir), log_output=False)
        drawn = json.loads((work / "drawn.ipynb").read_text())
        nb = _splice(src, executed, drawn)
        (work / PAGE).write_text(json.dumps(nb, indent=1))
        os.replace(work / PAGE, run.out_dir / PAGE)  # the page first, then the fingerprint that vouches for it
        save_json(run.out_dir / PAGE_META, {"render": run.render})
        return {"run": run.label, "stage": run.stage, "status": "re-rendered"}
    except Exception as exc:  # noqa: BLE001 - a failing figure leaves the old page, reported in one line
        name = getattr(exc, "ename", type(exc).__name__)
        value = str(getattr(exc, "evalue", exc)).strip().splitlines()
        return {"run": run.label, "stage": run.stage, "status": "failed",
                "error": f"{name}: {value[0] if value else ''}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _splice(src: dict, executed: dict, drawn: dict) -> dict:
    """The current notebook's cells: markdown as written now, computing cells with the outputs they had when the
    run computed, rendering cells with the outputs just drawn, papermill's injected parameters as they ran."""
    computed = iter([c for c in executed["cells"] if _role(c) in ("setup", "compute")])
    fresh = iter([c for c in drawn["cells"] if _role(c) == "render"])
    injected = [c for c in executed["cells"] if _role(c) == "injected"]
    cells = []
    for cell in src["cells"]:
        r = role(cell)
        if r in ("setup", "compute", "render"):
            done = next(computed if r != "render" else fresh)
            cell = dict(cell, outputs=done["outputs"], execution_count=done.get("execution_count"))
        cells.append(cell)
        if r == "parameters":
            cells += injected
    return dict(executed, cells=cells)


def rerender_all(runs: list[Run], kernel: str = "python3", workers: int | None = None) -> list[dict]:
    """Re-render every stale page among finished ``runs``, up to ``workers`` at once (default 2 on 2+ cores)."""
    todo = [r for r in runs if r.done and stale(r)]
    workers = max(1, min(len(todo), workers or min(2, os.cpu_count() or 1)))
    if workers <= 1:
        return [rerender(r, kernel) for r in todo]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(rerender, todo, [kernel] * len(todo)))
