"""Experiment grid -> papermill runs -> tables and book pages: the orchestration, over modules of one concern each.

:mod:`~advxai.runner.config` reads and checks the YAML; :mod:`~advxai.runner.runs` expands it into runs with cache
keys; :mod:`~advxai.runner.executors` runs them (serial or Dask), each atomically into
``results/runs/<stage>/<label>-<key>``; :mod:`~advxai.runner.provenance` records what each run used;
:mod:`~advxai.runner.publish` puts the executed notebooks in the book. A run already done with the same key is
reused, so a changed parameter reruns only what depends on it; a run is finished when its ``provenance.json`` exists
(written last); a failing run is reported in one line and its dependants are skipped while the rest of the grid goes
on.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..artefacts import save_json
from .config import dataset_names, load_config
from .executors import EXECUTORS, execute, sweep_temporaries  # noqa: F401 - the runner's public API
from .lock import results_lock
from .publish import publish
from .render import rerender_all, stale
from .runs import STAGES, Run, expected_seconds, plan  # noqa: F401 - the runner's public API
from .runs import why as runs_why


def run_grid(config: Path, results: Path = Path("results"), executor: str = "serial", book: Path | None = None,
             kernel: str = "python3", log=print, verbose: bool = False, **executor_options) -> list[dict]:
    """Plan and execute a config; write the combined table and provenance; publish notebooks to ``book``."""
    from .. import data

    results = Path(results).resolve()
    os.environ["ADVXAI_DATA"] = str(data.data_dir().resolve())  # kernels run in their run folder
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # glibc gives each thread that allocates its own heap arena (up to 8 per core); TensorFlow's thread pools then
    # hold freed memory in many arenas. Two arenas per kernel: the same numbers with less resident memory.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    cfg = load_config(config)
    with results_lock(results):  # one build per results folder, held until its tables and pages are written
        data.fetch_missing(dataset_names(cfg), log=log)  # a fresh machine with a network gets the raw sets here
        runs = plan(cfg, results)
        t0 = time.perf_counter()
        if executor in ("serial", "parallel"):
            executor_options.update(verbose=verbose, estimates=cfg["estimates"])
        records = EXECUTORS[executor](runs, kernel=kernel, log=log, gpu=bool(cfg.get("gpu")), **executor_options)
        sweep_temporaries(results)  # nothing is in flight now: what is left was killed
        finished = [r for r in runs if r.done]
        combine(finished, results)
        save_json(results / "status.json", {"config": str(config), "records": records,
                                            "seconds": round(time.perf_counter() - t0, 1)})
        drawn, t_draw = [], time.perf_counter()
        if book is not None:
            drawn = rerender_all(finished, kernel, executor_options.get("workers"))
            for rec in drawn:
                if rec["status"] == "failed":
                    log(f"advxai: page not re-rendered: {rec['stage']} {rec['run']}: {rec['error']} (the page "
                        f"shows the figures it was computed with)")
            publish(finished, Path(book))
            shutil.copy(results / "tables" / "results.csv", Path(book) / "results.csv")  # the Results page's download
        redrawn = f"; {len(drawn)} pages re-rendered in {time.perf_counter() - t_draw:.0f} s" if drawn else ""
        log(summary_table(records) + f"\n{len(records)} runs in {time.perf_counter() - t0:.0f} s{redrawn}; tables: "
            f"{results / 'tables' / 'results.csv'}; kernel logs: {results / 'logs'}")
    return records


def plan_rows(config: Path, results: Path = Path("results"), why: bool = False) -> list[dict]:
    """What ``advxai run`` would do, without doing it: each run with its key, whether a finished run with that
    key is cached (and whether its page would be re-rendered: its drawing changed), its expected seconds (its last
    recorded duration, else the config's ``estimates``) and, with ``why``, what changed against the latest cached
    run with its stage and label (:func:`advxai.runner.runs.why`)."""
    cfg = load_config(config)
    rows = []
    runs = plan(cfg, Path(results).resolve())
    expected = expected_seconds(runs)
    for r in runs:
        last = expected[id(r)]
        secs = last if last is not None else cfg["estimates"].get(r.stage)
        state = ("re-render" if stale(r) else "cached") if r.done else "will run"
        rows.append({"stage": r.stage, "run": r.label, "key": r.key, "state": state,
                     "seconds": secs, "from": "cache" if r.done else "last run" if last is not None else
                     "config estimate" if secs is not None else "unknown", **({"why": runs_why(r)} if why else {})})
    return rows


def plan_text(rows: list[dict]) -> str:
    """The plan as a table with the total time still to run (what is known of it), and each rerun's reasons
    when the rows carry them."""
    lines = [f"{'stage':<11}{'run':<34}{'key':<14}{'state':<10}{'expected':>10}  from"]
    for r in rows:
        secs = "—" if r["seconds"] is None else f"{r['seconds']:.0f} s"
        lines.append(f"{r['stage']:<11}{r['run']:<34}{r['key']:<14}{r['state']:<10}{secs:>10}  {r['from']}")
        lines += [f"{'':<11}  because {reason}" for reason in r.get("why", [])]
    todo = [r for r in rows if r["state"] == "will run"]
    drawn = sum(r["state"] == "re-render" for r in rows)
    known = sum(r["seconds"] for r in todo if r["seconds"] is not None)
    unknown = sum(r["seconds"] is None for r in todo)
    lines.append(f"{len(rows)} runs: {len(rows) - len(todo)} cached, {len(todo)} to run, "
                 f"≈ {known / 60:.0f} min one at a time"
                 + (f" + {unknown} runs with no recorded duration or estimate" if unknown else "")
                 + (f"; {drawn} pages to re-render from saved files" if drawn else ""))
    return "\n".join(lines)


def summary_table(records: list[dict]) -> str:
    """Per stage: how many runs were done, cached, failed, skipped, and the seconds the done ones took."""
    states = ("done", "cached", "failed", "skipped")
    lines = [f"{'stage':<11}" + "".join(f"{s:>8}" for s in states) + f"{'seconds':>9}"]
    for stage in dict.fromkeys(r["stage"] for r in records):
        mine = [r for r in records if r["stage"] == stage]
        secs = sum(r.get("seconds", 0) for r in mine)
        lines.append(f"{stage:<11}" + "".join(f"{sum(r['status'] == s for r in mine):>8}" for s in states)
                     + f"{secs:>9.0f}")
    return "\n".join(lines)


def combine(runs: list[Run], results: Path) -> None:
    """``results/tables/results.csv``: every finished run's rows, each number once
    (:func:`advxai.book.aggregate.run_rows`: a σ-unit RADAR-MIX run's clean-image rows repeat its pixel twin's);
    ``provenance.json``: run -> provenance."""
    from ..book.aggregate import run_rows
    from ..measure.tables import write_csv

    df, prov = run_rows([r.out_dir for r in runs])
    write_csv(df, results / "tables" / "results.csv")
    save_json(results / "tables" / "provenance.json", prov)
