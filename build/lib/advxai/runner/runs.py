"""Plan and keys: a config expands into :class:`Run` s, one per (stage, dataset, model[, attack group]), each with
a key that hashes everything that can change its numbers (parameters, upstream keys, notebook, the library
modules its notebook uses, numerical dependency versions, the lock file, the data fingerprint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from ..errors import AdvXAIError, ParameterError
from . import environment, fingerprint

ROOT = Path(__file__).resolve().parents[3]  # the repository (lib/advxai/runner/ -> ..)
NOTEBOOKS = ROOT / "notebooks"
STAGES = {  # stage -> notebook, in execution order
    "train": "01_train.ipynb",
    "attack": "02_attack.ipynb",
    "gradcam": "03_gradcam.ipynb",
    "distortion": "04_distortion.ipynb",
    "strength": "05_strength.ipynb",
    "radarmix": "06_radarmix.ipynb",
    "detection": "07_detection.ipynb",
    "seeds": "08_seeds.ipynb",
    "robust": "09_robust.ipynb",
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
    def key_parts(self) -> dict:
        """Everything that can change the run's numbers: its parameters, its upstream runs' keys, its notebook's
        computing code and the library modules that code uses (by meaning: :mod:`advxai.runner.fingerprint`),
        the versions of the numerical dependencies and the lock file of the environment. Recorded in the run's
        provenance, so that a later plan can say which part changed (:func:`why`)."""
        code = fingerprint.key_parts(self.notebook)
        return {"stage": self.stage, "params": self.params, "deps": {f"{d.stage} {d.label}": d.key for d in self.deps},
                "notebook": code["notebook"], "modules": code["modules"], "versions": _numerical_versions(),
                "lock": environment.lock_hash()}

    @cached_property
    def key(self) -> str:
        """Hash of :attr:`key_parts`. Computed once, in the runner: a Dask worker receives it with the run."""
        return hashlib.sha256(json.dumps(self.key_parts, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def render(self) -> str:
        """Fingerprint of the run page's drawing and wording (:func:`fingerprint.render_fingerprint`)."""
        return fingerprint.render_fingerprint(self.notebook)

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
            name = f"{d.stage}_dirs" if self.stage in ("strength", "summary", "seeds") else f"{d.stage}_dir"
            if name.endswith("_dirs"):
                p.setdefault(name, []).append(str(d.out_dir.resolve()))
            else:
                p[name] = str(d.out_dir.resolve())
        return p


@cache
def _numerical_versions() -> dict[str, str]:
    v = environment.versions()
    return {k: v[k] for k in [*environment.NUMERICAL, "python"] if k in v}


def key_table() -> str:
    """Per stage, the library modules in its runs' keys (:func:`fingerprint.notebook_modules`), grouped by
    package, and what every key leaves out: the table of ``docs/cache-keys.md`` (``advxai keys`` prints it)."""
    lines = ["| stage | notebook | modules in its key |", "|---|---|---|"]
    for stage, nb in STAGES.items():
        groups: dict[str, list[str]] = {}
        for m in fingerprint.notebook_modules(NOTEBOOKS / nb):
            package, _, rest = m.partition(".")
            groups.setdefault(package, []).append(rest or "__init__")
        mods = "; ".join(f"`{p}`" if names == ["__init__"] else f"`{p}`: {', '.join(names)}"
                         for p, names in groups.items())
        lines.append(f"| {stage} | `{nb}` | {mods} |")
    lines += ["", "Left out of every key (their imports are not followed either):", ""]
    lines += [f"* `{m}`: {why}." for m, why in fingerprint.NOT_IN_KEYS.items()]
    return "\n".join(lines)


def model_label(model: str, seed: int, base_seed: int) -> str:
    """The ``model`` column of a trained model's rows: the architecture for the config's own seed, else the
    architecture and its training seed (``cnn·s1``), so every chapter keeps a retrained model apart."""
    return model if seed == base_seed else f"{model}·s{seed}"


def model_name(m: dict) -> str:
    """What a model entry is called in run labels and tables: its ``label``, else its architecture, with
    ``-at<ε·255>`` for an adversarially trained one (``cnn-at2``: PGD training at ε = 2/255)."""
    if m.get("label"):
        return str(m["label"])
    adv = (m.get("train") or {}).get("adversarial")
    return m["name"] + (f"-at{round(adv['eps'] * 255, 1):g}" if adv else "")


def adversarial(m: dict) -> bool:
    """Whether a model entry is adversarially trained (``train: {adversarial: {...}}``)."""
    return bool((m.get("train") or {}).get("adversarial"))


def plan(cfg: dict, results: Path) -> list[Run]:
    """Expand a config into runs in execution order (every run after the runs it depends on).

    ``seeds`` (extra training seeds) trains every model once more per seed; the parts named in ``per_seed``
    (``gradattacks``, ``radarmix``, ``detection``) run on each of those models too, the others on the config's
    own seed; an adversarially trained model is trained on the config's seed only. A ``seeds`` run per model
    collects the training runs' Table II rows (mean ± s.d.)."""
    runs: list[Run] = []
    seed, n_boot = cfg["seed"], cfg["n_boot"]
    trains: dict[str, Run] = {}  # key -> run: one training run serves every part of a config
    seeds_runs: dict[str, Run] = {}  # training run key -> the seeds run collecting its model's training runs

    def seeds_of(part: str, m: dict) -> list[int]:
        # an adversarially trained model is trained on the config's seed only, in every part: it is the costly one
        return [seed, *cfg["seeds"]] if part in cfg["per_seed"] and not adversarial(m) else [seed]

    def train_run(d: dict, m: dict, train_cfg: dict, s: int, variance: bool = True) -> tuple[Run, dict, str]:
        dkeys = _data_keys(d)
        mparams = dict(m.get("params", {}), **d.get("model_params", {}).get(m["name"], {}))
        sep = "_" if d["name"][-1].isdigit() else ""  # isic2018_28, not isic201828
        name = model_name(m)
        label = f"{d['name']}{sep}{d['size']}-{name}"
        mlabel = model_label(name, s, seed)
        params = {**dkeys, "model": m["name"], "model_params": mparams, **train_cfg, **d.get("train", {}),
                  **m.get("train", {}), "seed": s, "n_boot": n_boot}
        if mlabel != m["name"]:
            params["model_label"] = mlabel
        run = Run("train", label + ("" if s == seed else f"-s{s}"), params, results=results)
        if run.key not in trains:
            trains[run.key] = run
            runs.append(run)
            # training-seed variance: the extra seeds' training runs
            if cfg["seeds"] and s == seed and variance and not adversarial(m):
                # settings and model_params only key the run (its rows come from the training runs it reads)
                settings = {k: run.params[k] for k in (*train_cfg, *d.get("train", {}), *m.get("train", {}))}
                extra = [train_run(d, m, train_cfg, x)[0] for x in cfg["seeds"] if x != seed]
                seeds_runs[run.key] = Run("seeds", label, {**dkeys, "model": name, "model_params": mparams,
                                                           "settings": settings, "seed": seed},
                                          [run, *extra], results)
        return (trains[run.key], {**dkeys, "model": mlabel, "seed": seed, "n_boot": n_boot},
                label + ("" if s == seed else f"-s{s}"))

    groups = [[a] for a in cfg["attack"]["names"]] if cfg["attack"]["split"] else [list(cfg["attack"]["names"])]
    strength_runs = []
    for d in cfg["datasets"]:
        for m in cfg["models"]:
            for s in seeds_of("gradattacks", m):
                train, base, label = train_run(d, m, cfg["train"], s)
                cams, atts = [], []
                for g in groups:
                    glabel = label + ("-" + g[0] if cfg["attack"]["split"] else "")
                    att = Run("attack", glabel, {**base, "attacks": g,
                                                 "eps": [float(e) for e in cfg["attack"]["eps"]],
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
    for r in cfg.get("radarmix", []):
        a, x = r["attack"], r["explain"]
        units = "" if r["eps_units"] == "pixel" else f"-{r['eps_units']}"
        for d in r["datasets"]:
            for m in r["models"]:
                for s in seeds_of("radarmix", m):
                    train, base, label = train_run(d, m, {**cfg["train"], **r["train"]}, s)
                    rm = Run("radarmix", label + units, {
                        **base, "split": d.get("split", r["split"]), "attacks": a["names"],
                        "eps": [float(e) for e in a["eps"]], "n_images": int(a["n_images"]),
                        "attack_params": {n: a["params"].get(n, {}) for n in a["names"]},
                        "explainers": x["names"], "n_explain": x["n_explain"], "explainer_params": x["params"],
                        "n_background": int(x["n_background"]), "targets": x["target"], "topk": float(r["topk"]),
                        "faithful": bool(r["faithful"]), "eps_units": r["eps_units"]}, [train], results)
                    runs.append(rm)
    for det in cfg.get("detection", []):
        for d in det["datasets"]:
            for m in det["models"]:
                for s in seeds_of("detection", m):
                    train, base, label = train_run(d, m, {**cfg["train"], **det["train"]}, s)
                    params = detection_params(det)
                    if s != seed and det["adaptive"]["seeds"] == "base":  # the adaptive attack on one seed's models
                        params["adaptive"] = {**params["adaptive"], "attack": None}
                    runs.append(Run("detection", label, {**base, **params, "seed": seed}, [train], results))
    for rb in [cfg["robustness"]] if "robustness" in cfg else []:  # the config's own seed's models
        for d in rb["datasets"]:
            for m in rb["models"]:
                # a model first listed here is trained once (no extra seeds: robust accuracy is one seed's measurement)
                train, base, label = train_run(d, m, {**cfg["train"], **rb["train"]}, seed, variance=False)
                runs.append(Run("robust", label, {**base, "eps": rb["eps"], "n_images": int(rb["n_images"]),
                                                  "attack_params": rb["attacks"]}, [train], results))
    runs += seeds_runs.values()  # last before the summary: the study's own results come first
    others = [r for r in runs if r.stage != "strength"]
    runs.append(Run("summary", "summary", {"config": cfg["name"], "seed": seed}, [*others, *strength_runs], results))
    root = Path(results).resolve()
    for r in runs:  # labels are checked by the config; this holds for any label a future part may build
        if not r.out_dir.resolve().is_relative_to(root / "runs"):
            raise ParameterError(f"run {r.stage} {r.label!r} would write outside {root / 'runs'}; rename its label")
    return runs


def detection_params(det: dict) -> dict:
    """What the detection notebook receives from the config's ``detection`` section (its own n_boot)."""
    a = det["attack"]
    return {"splits": list(det["splits"]), "n_images": int(det["n_images"]), "attacks": a["eps"],
            "attack_params": {n: a["params"].get(n, {}) for n in a["names"]}, "detectors": list(det["detectors"]),
            "folds": int(det["folds"]), "n_boot": int(det["n_boot"]), "n_reference": int(det["n_reference"]),
            "mc_samples": int(det["mc_samples"]), "ig_steps": int(det["ig_steps"]), "epochs": int(det["epochs"]),
            "adaptive": {k: v for k, v in det["adaptive"].items() if k != "seeds"}}


def _data_keys(d: dict) -> dict:
    from .. import data

    try:
        md5 = data.fingerprint(d["name"], d["size"])
    except AdvXAIError as exc:  # reported by the dataset's training run; other datasets go on
        md5 = f"unavailable: {exc}"
    return {"dataset": d["name"], "size": int(d["size"]), "data_md5": md5}


def previous(run: Run) -> dict | None:
    """The provenance of the latest finished run with the same stage and label, under any key (``None``: never
    run into this results folder)."""
    prov = sorted((p for p in run.out_dir.parent.glob(f"{run.label}-*/provenance.json")
                   if len(p.parent.name) == len(run.label) + 13),  # <label>-<12-hex key>, not a longer label
                  key=lambda p: p.stat().st_mtime)
    return json.loads(prov[-1].read_text()) if prov else None


def _expected_seconds(run: Run) -> float | None:
    """How long this run took last time it ran with any key (its stage and label), from provenance."""
    prov = previous(run)
    return prov["seconds"] if prov else None


def _diff(old, new, path: str) -> list[str]:
    """``path: old → new`` for each leaf that differs between two parameter trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for k in sorted(set(old) | set(new), key=str)
                for line in _diff(old.get(k, "(absent)"), new.get(k, "(absent)"), f"{path}.{k}" if path else k)]
    return [] if old == new else [f"{path}: {json.dumps(old)} → {json.dumps(new)}"]


def why(run: Run) -> list[str]:
    """Why ``run`` would run: each part of its key that differs from the latest cached run with its stage and
    label (:attr:`Run.key_parts`, recorded in provenance): a parameter (old → new), an upstream run, the
    notebook's computing code, a library module, the data, a version, the lock file. Empty when it is cached."""
    if run.done:
        return []
    prov = previous(run)
    if prov is None:
        return ["new: no earlier run of this stage and label in this results folder"]
    old = prov.get("key_parts")
    if old is None:
        return [f"the cached run {prov['key']} records no key parts (made by advxai before 0.2): rerun once"]
    new = run.key_parts
    out = []
    data_keys = ("data_md5",)
    for line in _diff({k: v for k, v in old["params"].items() if k not in data_keys},
                      {k: v for k, v in new["params"].items() if k not in data_keys}, ""):
        out.append(f"parameter {line}")
    if old["params"].get("data_md5") != new["params"].get("data_md5"):
        out.append(f"data: MD5 {old['params'].get('data_md5')} → {new['params'].get('data_md5')}")
    for dep in sorted(set(old["deps"]) | set(new["deps"])):
        if old["deps"].get(dep) != new["deps"].get(dep):
            out.append(f"upstream {dep}: " + ("reruns" if dep in old["deps"] and dep in new["deps"]
                                              else "added" if dep in new["deps"] else "removed"))
    if old["notebook"] != new["notebook"]:
        out.append(f"notebook {run.notebook.name}: its computing code")
    for m in sorted(set(old["modules"]) | set(new["modules"])):
        if old["modules"].get(m) != new["modules"].get(m):
            what = "changed" if m in old["modules"] and m in new["modules"] else \
                "now imported" if m in new["modules"] else "no longer imported"
            out.append(f"module {m}: {what}")
    out += [f"version {line}" for line in _diff(old["versions"], new["versions"], "")]
    if old["lock"] != new["lock"]:
        out.append("the lock file")
    return out or ["the key's recipe itself (same parts, another hash): a newer advxai"]


def expected_seconds(runs: list[Run]) -> dict[int, float | None]:
    """Each run's expected seconds by ``id``: 0 when cached, else its last recorded duration, else None (the
    caller falls back on the config's ``estimates``). A training run of an extra seed never run before: the last
    duration of its model's training with any seed (same label without the ``-s<seed>`` tail)."""
    out = {}
    for r in runs:
        last = 0.0 if r.done else _expected_seconds(r)
        if last is None and r.stage == "train" and "model_label" in r.params:
            last = _expected_seconds(Run("train", r.label.rsplit("-s", 1)[0], {}, results=r.results))
        out[id(r)] = last
    return out
