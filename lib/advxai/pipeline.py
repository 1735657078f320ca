"""Experiment grid -> papermill runs: plan, cache, resume, executors, provenance, tables, book pages.

A config (YAML) names datasets × models × attacks × ε. :func:`plan` expands it into :class:`Run`\\ s, one
per (stage, dataset, model[, attack group]); each run executes one notebook with papermill into its own
folder ``results/runs/<stage>/<label>-<key>``. ``key`` hashes the run's parameters, its upstream keys, the
notebook, the library source and the data MD5, so a run already done with the same inputs is reused and a
changed parameter reruns only what depends on it. A run is finished when its ``provenance.json`` exists
(written last, atomically); a folder without it is an interrupted run and is redone. A failing run is
reported in one line and its dependants are skipped; the rest of the grid goes on.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import yaml

from . import __version__, environment, fingerprint
from .artefacts import save_json
from .errors import AdvXAIError, ParameterError
from .registry import Registry

ROOT = Path(__file__).resolve().parents[2]  # the repository (lib/advxai/ -> ..)
NOTEBOOKS = ROOT / "notebooks"
STAGES = {  # stage -> notebook, in execution order
    "train": "01_train.ipynb",
    "attack": "02_attack.ipynb",
    "gradcam": "03_gradcam.ipynb",
    "distortion": "04_distortion.ipynb",
    "strength": "05_strength.ipynb",
    "radarmix": "06_radarmix.ipynb",
    "detection": "07_detection.ipynb",
    "summary": "00_summary.ipynb",
}


@dataclass
class Run:
    stage: str
    label: str
    params: dict
    deps: list[Run] = field(default_factory=list)
    results: Path = Path("results")

    @property
    def notebook(self) -> Path:
        return NOTEBOOKS / STAGES[self.stage]

    @cached_property
    def key(self) -> str:
        """Hash of everything that can change the run's numbers: its parameters, its upstream runs, its
        notebook, the library modules that notebook uses, the versions of the numerical dependencies and the
        lock file of the environment. Computed once, in the runner: a Dask worker receives it with the run."""
        blob = json.dumps({"stage": self.stage, "params": self.params, "deps": [d.key for d in self.deps],
                           "notebook": _file_md5(self.notebook), "code": code_fingerprint(self.notebook),
                           "versions": _numerical_versions(), "lock": environment.lock_hash()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def out_dir(self) -> Path:
        return self.results / "runs" / self.stage / f"{self.label}-{self.key}"

    @property
    def done(self) -> bool:
        return (self.out_dir / "provenance.json").exists()

    def notebook_parameters(self, out_dir: Path | None = None) -> dict:
        """What the notebook's ``parameters`` cell receives: its own parameters plus upstream folders."""
        p = dict(self.params, out_dir=str(Path(out_dir or self.out_dir).resolve()), run_id=self.out_dir.name)
        for d in self.deps:
            name = f"{d.stage}_dirs" if self.stage in ("strength", "summary") else f"{d.stage}_dir"
            if name.endswith("_dirs"):
                p.setdefault(name, []).append(str(d.out_dir.resolve()))
            else:
                p[name] = str(d.out_dir.resolve())
        return p


def _file_md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest() if Path(path).exists() else "missing"


@cache
def code_fingerprint(notebook: Path) -> str:
    """MD5 over the library modules the stage's notebook uses (:mod:`advxai.fingerprint`)."""
    return fingerprint.code_fingerprint(notebook)


@cache
def _numerical_versions() -> dict[str, str]:
    v = environment.versions()
    return {k: v[k] for k in [*environment.NUMERICAL, "python"] if k in v}


# --- config ----------------------------------------------------------------------------------------------

DEFAULTS = {
    "seed": 0,
    "train": {"epochs": 15, "batch_size": 64, "lr": 1e-3, "patience": 4, "augment": True, "balance": True},
    "attack": {"names": ["fgsm", "pgd", "deepfool"], "eps": [0.01, 0.05, 0.075, 0.1], "n_images": 100,
               "params": {}, "split": False},
    "explain": {"names": ["gradcam", "gradcam++"], "target": ["predicted", "clean"]},
    "strength": {"faithful": False},
    "n_boot": 1000,
    "gpu": False,  # true: train/attack/explain runs ask Dask workers for the resource GPU=1
    "estimates": {},  # stage -> seconds per run on the intended machine, for `advxai plan` before any run
}
# The RADAR-MIX part of a config (optional, section ``radarmix``): its own datasets and grid, trained models
# shared with the Grad-Attacks part when dataset, model and training agree (same run key).
RADARMIX = {
    "datasets": [], "models": [{"name": "cnn"}], "train": {}, "split": "test",
    "attack": {"names": ["fgsm", "bim", "pgd", "deepfool", "uap", "cw"], "eps": [0.001, 0.01, 0.05, 0.1, 0.5],
               "n_images": 100, "params": {}},
    "explain": {"names": ["gradcam", "gradcam++", "shap", "lime"], "n_explain": {}, "params": {},
                "n_background": 32, "target": ["predicted", "clean"]},
    "topk": 0.1, "faithful": False,
    "eps_units": "pixel",  # "sigma": ε in ImageNet σ units on unclipped inputs, as the RADAR-MIX code (faithful)
    "detect": {"feature_sets": ["outputs", "explanation", "both"]},
}


def load_config(path: Path) -> dict:
    """Read a YAML grid and fill in defaults; unknown names and ε outside [0, 1] fail here, before any work."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"config {path} not found; see configs/ for examples")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"config {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    _known_keys(raw, path)
    cfg = _merged(DEFAULTS, raw)
    cfg["name"] = raw.get("name", path.stem)
    cfg["datasets"], cfg["models"] = raw.get("datasets", []), raw.get("models", ["cnn"])
    if not cfg["datasets"] and "radarmix" not in raw:
        raise ParameterError(f"config {path} lists no datasets")
    _check(cfg, cfg["attack"], cfg["explain"]["names"], path)
    if "radarmix" in raw:
        r = cfg["radarmix"] = _merged(RADARMIX, raw["radarmix"] or {})
        if not r["datasets"]:
            raise ParameterError(f"config {path}: section radarmix lists no datasets")
        _check(r, r["attack"], r["explain"]["names"], path)
        unknown = set(r["explain"]["n_explain"]) - set(r["explain"]["names"])
        if unknown:
            raise ParameterError(f"radarmix.explain.n_explain names explainers not in the grid: {sorted(unknown)}")
        from .attacks import check_units

        for a in r["attack"]["names"]:
            check_units(a, r["eps_units"])
        if len(r["attack"]["names"]) < 2:
            raise ParameterError("radarmix needs at least two attacks (the detector is tested leave-one-attack-out)")
    return cfg


# Keys a config may hold besides the defaults' own (a typo must fail, not silently fall back to a default).
TOP_LEVEL = {"name", "datasets", "models", "radarmix"}
DATASET_KEYS = {"name", "size", "model_params", "train", "split"}
MODEL_KEYS = {"name", "params"}
FREE_FORM = {"params", "n_explain", "model_params"}  # maps of registry names to parameters, checked by the registries


def _known_keys(raw: dict, path: Path) -> None:
    """Every key of the YAML is one the runner knows; an unknown one fails with the closest known key."""

    def check(section: dict, allowed, where: str) -> None:
        if not isinstance(section, dict):
            raise ParameterError(f"config {path}: {where or 'the file'} must be a mapping, got {section!r}")
        for key in section:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(allowed))}"
                raise ParameterError(f"config {path}: unknown key {where + '.' if where else ''}{key!r}{hint}")

    def entries(items, allowed, where):
        for item in items or []:
            if isinstance(item, dict):
                check(item, allowed, where)

    check(raw, set(DEFAULTS) | TOP_LEVEL, "")
    for name, default in DEFAULTS.items():
        if isinstance(default, dict) and name in raw:
            check(raw[name] or {}, set(STAGES) if name == "estimates" else set(default), name)
    entries(raw.get("datasets"), DATASET_KEYS, "datasets[]")
    entries(raw.get("models"), MODEL_KEYS, "models[]")
    if raw.get("radarmix") is not None:
        r = raw["radarmix"]
        check(r, set(RADARMIX), "radarmix")
        for name, default in RADARMIX.items():
            if isinstance(default, dict) and name in r and name not in FREE_FORM:
                check(r[name] or {}, set(default), f"radarmix.{name}")
        entries(r.get("datasets"), DATASET_KEYS, "radarmix.datasets[]")
        entries(r.get("models"), MODEL_KEYS, "radarmix.models[]")


def _merged(defaults: dict, raw: dict) -> dict:
    """Defaults updated by a YAML section, one level deep (a nested dict keeps the defaults it does not set)."""
    return {k: (dict(v, **raw.get(k, {})) if isinstance(v, dict) else raw.get(k, v)) for k, v in defaults.items()}


def _check(section: dict, attack: dict, explainers: list[str], path: Path) -> None:
    """Normalise the section's dataset/model entries (a bare name becomes ``{name: ...}``); unknown
    dataset/model/attack/explainer names and ε outside [0, 1] fail before any work."""
    from . import attacks, data, explain, models

    section["datasets"] = [d if isinstance(d, dict) else {"name": d} for d in section["datasets"]]
    section["models"] = [m if isinstance(m, dict) else {"name": m} for m in section["models"]]
    for d in section["datasets"]:
        data.check(d["name"], d.setdefault("size", 28))  # unknown name, size the set lacks, multi-label flag
    for m in section["models"]:
        models.MODELS[m["name"]]
    for a in attack["names"]:
        attacks.params_for(a, attack["params"].get(a))
    for e in attack["eps"]:
        attacks.check_eps(e)
    for x in explainers:
        explain.EXPLAINERS[x]
    section["explain"]["target"] = targets = _as_list(section["explain"]["target"])
    for t in targets:
        explain.TARGETS[t]
    if int(attack["n_images"]) < 2:
        raise ParameterError("attack.n_images must be ≥ 2")


def _as_list(v) -> list:
    return list(v) if isinstance(v, list | tuple) else [v]


def plan(cfg: dict, results: Path) -> list[Run]:
    """Expand a config into runs in execution order (every run after the runs it depends on)."""
    runs: list[Run] = []
    seed, n_boot = cfg["seed"], cfg["n_boot"]
    trains: dict[str, Run] = {}  # key -> run: one training run serves both parts of a config

    def train_run(d: dict, m: dict, train_cfg: dict) -> tuple[Run, dict, str]:
        dkeys = _data_keys(d)
        mparams = dict(m.get("params", {}), **d.get("model_params", {}).get(m["name"], {}))
        sep = "_" if d["name"][-1].isdigit() else ""  # isic2018_28, not isic201828
        label = f"{d['name']}{sep}{d['size']}-{m['name']}"
        run = Run("train", label, {**dkeys, "model": m["name"], "model_params": mparams, **train_cfg,
                                   **d.get("train", {}), "seed": seed, "n_boot": n_boot}, results=results)
        if run.key not in trains:
            trains[run.key] = run
            runs.append(run)
        return trains[run.key], {**dkeys, "model": m["name"], "seed": seed, "n_boot": n_boot}, label

    groups = [[a] for a in cfg["attack"]["names"]] if cfg["attack"]["split"] else [list(cfg["attack"]["names"])]
    strength_runs = []
    for d in cfg["datasets"]:
        for m in cfg["models"]:
            train, base, label = train_run(d, m, cfg["train"])
            cams, atts = [], []
            for g in groups:
                glabel = label + ("-" + g[0] if cfg["attack"]["split"] else "")
                att = Run("attack", glabel, {**base, "attacks": g, "eps": [float(e) for e in cfg["attack"]["eps"]],
                                             "n_images": int(cfg["attack"]["n_images"]),
                                             "attack_params": {a: cfg["attack"]["params"].get(a, {}) for a in g}},
                          [train], results)
                cam = Run("gradcam", glabel, {**base, "explainers": cfg["explain"]["names"],
                                              "targets": cfg["explain"]["target"]}, [train, att], results)
                dist = Run("distortion", glabel, dict(base), [att], results)
                runs += [att, cam, dist]
                cams.append(cam)
                atts.append(att)
            strength = Run("strength", label, {**base, **cfg["strength"]}, [*cams, *atts], results)
            runs.append(strength)
            strength_runs.append(strength)
    for r in [cfg["radarmix"]] if "radarmix" in cfg else []:
        a, x = r["attack"], r["explain"]
        for d in r["datasets"]:
            for m in r["models"]:
                train, base, label = train_run(d, m, {**cfg["train"], **r["train"]})
                rm = Run("radarmix", label, {
                    **base, "split": d.get("split", r["split"]), "attacks": a["names"],
                    "eps": [float(e) for e in a["eps"]], "n_images": int(a["n_images"]),
                    "attack_params": {n: a["params"].get(n, {}) for n in a["names"]},
                    "explainers": x["names"], "n_explain": x["n_explain"], "explainer_params": x["params"],
                    "n_background": int(x["n_background"]), "targets": x["target"], "topk": float(r["topk"]),
                    "faithful": bool(r["faithful"]), "eps_units": r["eps_units"]}, [train], results)
                full = [n for n in x["names"] if n not in x["n_explain"]]  # maps for every attacked image
                shown = "predicted" if "predicted" in x["target"] else x["target"][0]  # what a deployed system shows
                det = Run("detection", label, {**base, "explainers": full, "target": shown,
                                               "feature_sets": r["detect"]["feature_sets"]}, [rm], results)
                runs += [rm, det]
    others = [r for r in runs if r.stage != "strength"]
    runs.append(Run("summary", "summary", {"config": cfg["name"], "seed": seed}, [*others, *strength_runs], results))
    return runs


def _data_keys(d: dict) -> dict:
    from . import data

    try:
        md5 = data.fingerprint(d["name"], d["size"])
    except AdvXAIError as exc:  # reported by the dataset's training run; other datasets go on
        md5 = f"unavailable: {exc}"
    return {"dataset": d["name"], "size": int(d["size"]), "data_md5": md5}


# --- provenance ------------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib", "notebooks"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(run: Run, seconds: float, started: float) -> dict:
    return {"stage": run.stage, "label": run.label, "key": run.key, "parameters": run.notebook_parameters(),
            "dir": str(run.out_dir),
            "data_md5": run.params.get("data_md5"), "git_commit": git_commit(), "versions": environment.versions(),
            "lock": environment.lock_hash(), "lock_file": str(environment.lock_file() or ""),
            "modules": fingerprint.notebook_modules(run.notebook),
            "advxai": __version__, "code_md5": code_fingerprint(run.notebook), "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "seconds": round(seconds, 2),
            "upstream": [str(d.out_dir) for d in run.deps]}


# --- execution -------------------------------------------------------------------------------------------


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


def _expected_seconds(run: Run) -> float | None:
    """How long this run took last time it ran with any key (its stage and label), from provenance."""
    prov = sorted(run.out_dir.parent.glob(f"{run.label}-*/provenance.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(prov[-1].read_text())["seconds"] if prov else None


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


def run_grid(config: Path, results: Path = Path("results"), executor: str = "serial", book: Path | None = None,
             kernel: str = "python3", log=print, verbose: bool = False, **executor_options) -> list[dict]:
    """Plan and execute a config; write the combined table and provenance; publish notebooks to ``book``."""
    from . import data

    results = Path(results).resolve()
    os.environ["ADVXAI_DATA"] = str(data.data_dir().resolve())  # kernels run in their run folder
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cfg = load_config(config)
    runs = plan(cfg, results)
    t0 = time.perf_counter()
    if executor == "serial":
        executor_options["verbose"] = verbose
    records = EXECUTORS[executor](runs, kernel=kernel, log=log, gpu=bool(cfg.get("gpu")), **executor_options)
    sweep_temporaries(results)  # nothing is in flight now: what is left was killed
    finished = [r for r in runs if r.done]
    combine(finished, results)
    save_json(results / "status.json", {"config": str(config), "records": records,
                                        "seconds": round(time.perf_counter() - t0, 1)})
    if book is not None:
        publish(finished, Path(book))
        shutil.copy(results / "tables" / "results.csv", Path(book) / "results.csv")  # the Results page's download
    log(summary_table(records) + f"\n{len(records)} runs in {time.perf_counter() - t0:.0f} s; tables: "
        f"{results / 'tables' / 'results.csv'}; kernel logs: {results / 'logs'}")
    return records


def plan_rows(config: Path, results: Path = Path("results")) -> list[dict]:
    """What ``advxai run`` would do, without doing it: each run with its key, whether a finished run with that
    key is cached, and its expected seconds (its last recorded duration, else the config's ``estimates``)."""
    cfg = load_config(config)
    rows = []
    for r in plan(cfg, Path(results).resolve()):
        last = _expected_seconds(r)
        secs = 0.0 if r.done else last if last is not None else cfg["estimates"].get(r.stage)
        rows.append({"stage": r.stage, "run": r.label, "key": r.key, "state": "cached" if r.done else "will run",
                     "seconds": secs, "from": "cache" if r.done else "last run" if last is not None else
                     "config estimate" if secs is not None else "unknown"})
    return rows


def plan_text(rows: list[dict]) -> str:
    """The plan as a table with the total time still to run (what is known of it)."""
    lines = [f"{'stage':<11}{'run':<34}{'key':<14}{'state':<10}{'expected':>10}  from"]
    for r in rows:
        secs = "—" if r["seconds"] is None else f"{r['seconds']:.0f} s"
        lines.append(f"{r['stage']:<11}{r['run']:<34}{r['key']:<14}{r['state']:<10}{secs:>10}  {r['from']}")
    todo = [r for r in rows if r["state"] == "will run"]
    known = sum(r["seconds"] for r in todo if r["seconds"] is not None)
    unknown = sum(r["seconds"] is None for r in todo)
    lines.append(f"{len(rows)} runs: {len(rows) - len(todo)} cached, {len(todo)} to run, ≈ {known / 60:.0f} min"
                 + (f" + {unknown} runs with no recorded duration or estimate" if unknown else ""))
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
    """``results/tables/results.csv``: every finished run's rows; ``provenance.json``: run -> provenance."""
    import pandas as pd

    from .tables import frame, write_csv

    parts = [pd.read_csv(r.out_dir / "metrics.csv") for r in runs if (r.out_dir / "metrics.csv").exists()]
    df = pd.concat(parts, ignore_index=True) if parts else frame([])
    write_csv(df, results / "tables" / "results.csv")
    save_json(results / "tables" / "provenance.json",
              {r.out_dir.name: json.loads((r.out_dir / "provenance.json").read_text()) for r in runs})


def publish(runs: list[Run], book: Path) -> None:
    """Copy executed notebooks to ``book/runs`` with names that sort by dataset, model and stage, titled with
    their dataset and model, code folded (readers see narrative, tables and figures; a click shows the code)."""
    dest = book / "runs"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    order = {s: i for i, s in enumerate(STAGES)}
    for r in runs:
        if r.stage == "summary":
            target = book / "results.ipynb"
            for chapter in book.glob("*.md"):  # chapters paste its glued numbers: make Sphinx re-read them
                chapter.touch()
        else:
            name, *rest = r.label.split("-")
            target = dest / f"{name}-{order[r.stage]}{r.stage}-{'-'.join(rest)}.ipynb"
        prov = json.loads((r.out_dir / "provenance.json").read_text())
        _publishable(r.out_dir / "notebook.ipynb", target, "" if r.stage == "summary" else r.label, prov)


def provenance_markdown(prov: dict) -> str:
    """The provenance block shown at the end of every published page, from the run's ``provenance.json``."""
    v = prov["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("tensorflow-cpu", "tensorflow", "keras", "adversarial-robustness-toolbox",
                                             "tf-keras-vis", "numpy", "scikit-learn") if k in v)
    params = {k: val for k, val in prov["parameters"].items() if k not in ("out_dir", "run_id") and
              not k.endswith(("_dir", "_dirs"))}
    rows = "\n".join(f"| `{k}` | `{json.dumps(val)}` |" for k, val in sorted(params.items()))
    return (f"## Provenance\n\nRun `{prov['dir'].rsplit('/', 1)[-1]}` (stage {prov['stage']}), started "
            f"{prov['started']}, {prov['seconds']:.0f} s; git commit `{prov['git_commit']}`; library code MD5 "
            f"`{prov['code_md5']}`; data MD5 `{prov.get('data_md5') or '—'}`; Python {v.get('python')}, {libs}; "
            f"{prov['platform']}.\n\n| parameter | value |\n|---|---|\n{rows}\n")


def _publishable(src: Path, dest: Path, label: str, prov: dict) -> None:
    nb = json.loads(Path(src).read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "provenance", "metadata": {},
                        "source": provenance_markdown(prov)})
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "parameters" in tags:
            tags.append("remove-cell")  # the defaults; the injected values below are what ran
        elif cell["cell_type"] == "code":
            tags.append("hide-input")
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    if first is not None and label:
        text = "".join(first["source"])
        if text.startswith("# "):
            head, _, tail = text.partition("\n")
            first["source"] = f"{head} · {label}\n{tail}"
    dest.write_text(json.dumps(nb, indent=1))
