"""Executors: run one planned notebook atomically (:func:`execute`), and a grid of them in order in this process
(``serial``, one progress bar, kernel output to log files) or as a Dask task graph (``dask``)."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .artefacts import save_json
from .provenance import provenance
from .registry import Registry
from .runs import Run, _expected_seconds


def execute(run: Run, kernel: str = "python3") -> dict:
    """Execute one run's notebook into a temporary folder beside its final one, write its provenance, then
    rename the folder into place (atomic). A failed or killed attempt therefore never looks finished: its
    notebook is kept under ``results/failed/`` and its temporary folder removed (or swept by
    :func:`sweep_temporaries` when the process was killed). Returns a status record."""
    import papermill as pm

    if run.done:
        return {"run": run.label, "stage": run.stage, "status": "cached", "dir": str(run.out_dir)}
    tmp = run.out_dir.with_name(f".tmp-{run.out_dir.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    started, t0 = time.time(), time.perf_counter()
    try:
        pm.execute_notebook(str(run.notebook), str(tmp / "notebook.ipynb"),
                            parameters=run.notebook_parameters(tmp), kernel_name=kernel, progress_bar=False,
                            cwd=str(tmp), log_output=False)
        save_json(tmp / "provenance.json", provenance(run, time.perf_counter() - t0, started))
    except BaseException as exc:  # noqa: BLE001 - also Ctrl-C: leave no partial run behind
        failed = run.results / "failed" / f"{run.stage}-{run.label}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        if (tmp / "notebook.ipynb").exists():
            shutil.move(tmp / "notebook.ipynb", failed)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"run": run.label, "stage": run.stage, "status": "failed", "error": _one_line(exc),
                "notebook": str(failed)}
    if run.out_dir.exists() and not run.done:  # debris of an older, unfinished layout
        shutil.rmtree(run.out_dir)
    try:
        os.rename(tmp, run.out_dir)
    except OSError:  # another worker finished the same run first: keep that copy
        shutil.rmtree(tmp, ignore_errors=True)
    return {"run": run.label, "stage": run.stage, "status": "done",
            "seconds": round(time.perf_counter() - t0, 1), "dir": str(run.out_dir)}


def sweep_temporaries(results: Path) -> int:
    """Remove the temporary folders of attempts that were killed (call when no run is in flight)."""
    tmps = list(Path(results).glob("runs/*/.tmp-*"))
    for t in tmps:
        shutil.rmtree(t, ignore_errors=True)
    return len(tmps)


def _one_line(exc: BaseException) -> str:
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    return f"{name}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"


EXECUTORS: Registry = Registry("executor")


@contextmanager
def _quiet(log_file: Path | None):
    """Send this process's and its children's stdout and stderr (the kernel's TensorFlow, absl, oneDNN and
    Jupyter lines) to ``log_file`` for the duration; ``None`` leaves them on the terminal."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_file, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@EXECUTORS.register("serial")
def run_serial(runs: list[Run], kernel: str = "python3", log=print, verbose: bool = False, **_) -> list[dict]:
    """Run in order in this process under one progress bar (run i/N, stage, dataset, elapsed, ETA from the
    runs' last measured durations); each run's kernel output goes to ``results/logs/<stage>-<label>.log``
    (``verbose``: to the terminal). A run whose dependency did not finish is skipped; a failure is one line."""
    from tqdm.auto import tqdm

    status: dict[int, str] = {}
    records = []
    expected = {id(r): (0.0 if r.done else _expected_seconds(r)) for r in runs}
    bar = tqdm(total=len(runs), unit="run", file=sys.stderr, dynamic_ncols=True, disable=log is not print)
    for run in runs:
        todo = [expected[id(r)] for r in runs[len(records):]]
        eta = f"ETA ≈ {sum(todo) / 60:.0f} min" if todo and None not in todo else "ETA: first run of some stages"
        bar.set_description(f"{run.stage} {run.label}")
        bar.set_postfix_str(eta)
        if any(status.get(id(d)) not in ("done", "cached") for d in run.deps):
            rec = _skipped(run)
        else:
            log_file = None if verbose else run.results / "logs" / f"{run.stage}-{run.label}.log"
            with _quiet(log_file):
                rec = execute(run, kernel)
            if rec["status"] == "failed":
                bar.write(f"advxai: failed: {run.stage} {run.label}: {rec['error']} (log: {log_file})")
        status[id(run)] = rec["status"]
        records.append(rec)
        bar.update(1)
    bar.close()
    return records


def _describe(rec: dict) -> str:
    return rec["status"] + (f" ({rec['seconds']} s)" if "seconds" in rec else "") + (
        f": {rec['error']}" if "error" in rec else "")


def _skipped(run: Run) -> dict:
    return {"run": run.label, "stage": run.stage, "status": "skipped", "error": "an upstream run failed"}


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _dask_task(run: Run, kernel: str, env: dict, *upstream: dict) -> dict:
    """One grid cell on a Dask worker: runs only if every upstream run finished.

    The runner's environment is restored first: Dask sets OMP_NUM_THREADS=1 in its workers, which changes
    oneDNN's summation order, so a model trained there differed from the serial run (measured: test
    accuracy 0.638 vs 0.625 for the same seed). With the same variables the numbers are identical.
    """
    for var in THREAD_VARS:
        os.environ.pop(var, None)
    os.environ.update(env)
    if any(u["status"] not in ("done", "cached") for u in upstream):
        return _skipped(run)
    return execute(run, kernel)


@EXECUTORS.register("dask")
def run_dask(runs: list[Run], kernel: str = "python3", log=print, scheduler: str | None = None,
             workers: int | None = None, gpu: bool = False) -> list[dict]:
    """Submit every run as a Dask task whose inputs are its upstream runs' records.

    ``scheduler`` (``tcp://host:port``) uses an existing cluster; otherwise a ``LocalCluster`` of process
    workers, one thread each (each run starts its own kernel, hence its own TensorFlow). GPU stages (train,
    attack, explain) ask for the worker resource ``GPU=1`` when ``gpu`` is set: start GPU workers with
    ``dask worker ... --resources GPU=1``. A worker that dies mid-task has its task rescheduled by Dask;
    runs are idempotent and land atomically, so a retried run leaves one copy.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout=60)
    else:
        n = workers or max(1, (os.cpu_count() or 2) // 2)
        cluster = LocalCluster(n_workers=1 if gpu else n, threads_per_worker=1, processes=True,
                               dashboard_address=None, resources={"GPU": 1} if gpu else None)
        client = Client(cluster)
    env = {k: v for k, v in os.environ.items() if k.startswith(("ADVXAI_", "TF_", "CUDA_")) or k in THREAD_VARS}
    try:
        futures = {}
        for run in runs:
            res = {"GPU": 1} if gpu and run.stage in GPU_STAGES else None
            futures[id(run)] = client.submit(_dask_task, run, kernel, env, *(futures[id(d)] for d in run.deps),
                                             key=f"{run.stage}-{run.label}-{run.key}", resources=res, pure=False)
        for fut in as_completed(list(futures.values())):
            rec = fut.result()
            log(f"{rec['stage']:<10} {rec['run']} {_describe(rec)}")
        return [futures[id(r)].result() for r in runs]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


GPU_STAGES = ("train", "attack", "gradcam", "radarmix")
