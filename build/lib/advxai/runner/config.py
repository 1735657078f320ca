"""The experiment config: YAML -> a checked dict with every default filled in. Unknown keys, names no registry
knows, ε outside [0, 1], sizes a dataset lacks and multi-label sets fail here, in one line, before any work."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ParameterError
from . import schema

DEFAULTS = {
    "seed": 0,
    "seeds": [],  # extra training seeds: each model is retrained with them for its training-seed variance
    "per_seed": [],  # the parts that also run on every extra seed's model: gradattacks, radarmix, detection
    # the recipe of advxai.models.train (docs/design.md, "Training recipe"); patience applies when monitor is not "none"
    "train": {"epochs": 15, "batch_size": 64, "lr": 3e-3, "patience": 4, "augment": True, "balance": True,
              "schedule": "cosine", "warmup": 1, "weight_decay": 1e-4, "label_smoothing": 0.1, "monitor": "none",
              "adversarial": None},  # {eps, steps}: PGD adversarial training (advxai.models.train)
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
}

# The detection study (optional, section ``detection``): its own datasets, attacks and detectors on the trained
# models of the ``train`` stage (same run key as the Grad-Attacks part when dataset, model and training agree).
DETECTION = {
    "datasets": [], "models": [{"name": "cnn"}], "train": {},
    "splits": ["test"],  # the images studied: every image of these splits (n_images 0) or a balanced draw
    "n_images": 0,
    "attack": {"names": ["fgsm", "pgd", "deepfool"], "eps": {}, "params": {}},  # eps: attack -> ε list
    "detectors": ["msp", "max-logit", "energy", "msp-2s", "max-logit-2s", "energy-2s", "feature-squeezing",
                  "outputs", "kd-bu", "lid", "lid-ref", "mahalanobis", "signature", "gradcam-summary", "dispersion",
                  "clean-density", "map-consistency", "outputs+explanations"],
    "folds": 5, "n_boot": 1000, "n_reference": 1000, "mc_samples": 20, "ig_steps": 8, "epochs": 6,
    # the adaptive attack (advxai.detect.adaptive): attack: null skips it; weights λ (0 = plain PGD is always run),
    # the ε of its evasion curve, PGD steps, correctly classified test-fold images attacked, and on which training
    # seeds' models it runs (all, or base: the config's own seed only)
    "adaptive": {"attack": "pgd", "eps": 0.05, "weights": [1.0, 10.0, 100.0], "eps_curve": [0.02, 0.05, 0.1, 0.3],
                 "max_iter": 100, "n_images": 100, "seeds": "all"},
}

# The robustness study (optional, section ``robustness``): accuracy under attack against ε in RobustBench's style on
# a class-balanced test sample, for every listed model (standard and adversarially trained, on the config's seed).
ROBUSTNESS = {
    "datasets": [], "models": [{"name": "cnn"}], "train": {},
    "eps": [1 / 255, 2 / 255, 4 / 255, 8 / 255],
    "n_images": 500,
    # AutoAttack's standard ensemble without FAB-T, and PGD-50 (α = ε/10) with five random restarts for comparison
    "attacks": {"autoattack-nofab": {}, "pgd": {"max_iter": 50, "step_ratio": 0.1, "num_random_init": 5}},
}


def load_config(path: Path) -> dict:
    """Read a YAML grid and fill in defaults; unknown names and ε outside [0, 1] fail here, before any work."""
    path = Path(path)
    raw = _read(path)
    schema.validate(raw, path)
    cfg = _merged(DEFAULTS, raw)
    cfg["name"] = raw.get("name", path.stem)
    cfg["datasets"], cfg["models"] = raw.get("datasets", []), raw.get("models", ["cnn"])
    if not cfg["datasets"] and "radarmix" not in raw and "detection" not in raw:
        raise ParameterError(f"config {path} lists no datasets")
    _check(cfg, cfg["attack"], cfg["explain"]["names"], path)
    if len(set(cfg["seeds"])) != len(cfg["seeds"]) or cfg["seed"] in cfg["seeds"]:
        raise ParameterError(f"config {path}: seeds lists extra training seeds, each once and not the config's own "
                             f"seed {cfg['seed']}; got {cfg['seeds']}")
    if cfg["per_seed"] and not cfg["seeds"]:
        raise ParameterError(f"config {path}: per_seed runs parts on every extra training seed, but seeds is empty; "
                             "add seeds: [1, 2] or drop per_seed")
    if "radarmix" in raw:  # one section, or a list of them (e.g. the same grid in pixel and in σ units)
        sections = raw["radarmix"] if isinstance(raw["radarmix"], list) else [raw["radarmix"]]
        cfg["radarmix"] = [_radarmix(r or {}, path) for r in sections]
    if "detection" in raw:  # one section, or a list (e.g. the adversarially trained models on their own datasets)
        cfg["detection"] = [_detection(d or {}, path) for d in _as_list(raw["detection"])]
    if "robustness" in raw:
        cfg["robustness"] = _robustness(raw["robustness"] or {}, path)
    return cfg


def _robustness(raw: dict, path: Path) -> dict:
    """The ``robustness`` section with defaults, checked: known attacks and their parameters, ε in (0, 1], a sample
    the test split can give."""
    from .. import attacks

    r = _merged(ROBUSTNESS, raw)
    if not r["datasets"]:
        raise ParameterError(f"config {path}: section robustness lists no datasets")
    r["datasets"] = [x if isinstance(x, dict) else {"name": x} for x in r["datasets"]]
    r["models"] = [m if isinstance(m, dict) else {"name": m} for m in r["models"]]
    for x in r["datasets"]:
        _check_data(x["name"], x.setdefault("size", 28), ["test"], int(r["n_images"]), "robustness.n_images")
    _check_models(r["datasets"], r["models"])
    if not r["attacks"]:
        raise ParameterError("robustness.attacks lists no attack; e.g. {autoattack-nofab: {}}")
    for name, params in r["attacks"].items():
        attacks.params_for(name, params)
        if not attacks.spec(name).eps_bounded:
            raise ParameterError(f"robustness.attacks: {name!r} is not ε-bounded; robust accuracy needs an L∞ budget")
    r["eps"] = [float(e) for e in _as_list(r["eps"])]
    for e in r["eps"]:
        if attacks.check_eps(e) == 0:
            raise ParameterError("robustness.eps: ε = 0 is clean accuracy, reported on its own; list ε > 0")
    return r


PARTS = ("gradattacks", "radarmix", "detection")


def _radarmix(raw: dict, path: Path) -> dict:
    """One ``radarmix`` section with defaults, checked."""
    r = _merged(RADARMIX, raw)
    if not r["datasets"]:
        raise ParameterError(f"config {path}: section radarmix lists no datasets")
    _check(r, r["attack"], r["explain"]["names"], path)
    unknown = set(r["explain"]["n_explain"]) - set(r["explain"]["names"])
    if unknown:
        raise ParameterError(f"radarmix.explain.n_explain names explainers not in the grid: {sorted(unknown)}")
    from ..attacks import check_units

    for a in r["attack"]["names"]:
        check_units(a, r["eps_units"])
    if len(r["attack"]["names"]) < 2:
        raise ParameterError("radarmix needs at least two attacks (the detector is tested leave-one-attack-out)")
    return r


def dataset_names(cfg: dict) -> list[str]:
    """Every dataset a loaded config reads (its parts together, in order, once each)."""
    sections = [cfg, *cfg.get("radarmix", []), *cfg.get("detection", []), *([cfg["robustness"]] if "robustness" in cfg
                                                                           else [])]
    names = (d["name"] if isinstance(d, dict) else d for s in sections for d in s["datasets"])
    return list(dict.fromkeys(names))


def _detection(raw: dict, path: Path) -> dict:
    """The ``detection`` section with defaults; attack ε per attack (default: the grid's first ε for all)."""
    from ..detect.detectors import DETECTORS

    d = _merged(DETECTION, raw)
    if not d["datasets"]:
        raise ParameterError(f"config {path}: section detection lists no datasets")
    a = d["attack"]
    a["eps"] = {n: [float(e) for e in _as_list(a["eps"].get(n, [0.05]))] for n in a["names"]}
    from .. import attacks

    d["datasets"] = [x if isinstance(x, dict) else {"name": x} for x in d["datasets"]]
    d["models"] = [m if isinstance(m, dict) else {"name": m} for m in d["models"]]
    d["splits"] = _as_list(d["splits"])  # `splits: test` is one split, not four letters
    for x in d["datasets"]:
        _check_data(x["name"], x.setdefault("size", 28), d["splits"], int(d["n_images"]), "detection.n_images")
    _check_models(d["datasets"], d["models"])
    for n in a["names"]:
        attacks.params_for(n, a["params"].get(n))
        for e in a["eps"][n]:
            attacks.check_eps(e)
    unknown = set(raw.get("attack", {}).get("eps", {}) or {}) - set(a["names"])
    if unknown:
        raise ParameterError(f"detection.attack.eps names attacks not in the grid: {sorted(unknown)}")
    for name in d["detectors"]:
        DETECTORS[name]
    if int(d["folds"]) < 5:
        raise ParameterError(f"detection.folds must be ≥ 5 (got {d['folds']}): fewer folds leave too few images out")
    ad = d["adaptive"]
    if ad["attack"] is not None and ad["attack"] not in a["eps"]:
        raise ParameterError(f"detection.adaptive.attack {ad['attack']!r} is not in detection.attack.names")
    for e in [ad["eps"], *ad["eps_curve"]]:
        attacks.check_eps(e)
    if int(ad["max_iter"]) < 1 or int(ad["n_images"]) < 1 or any(float(w) <= 0 for w in ad["weights"]):
        raise ParameterError("detection.adaptive: max_iter and n_images must be ≥ 1 and every weight > 0 "
                             "(λ = 0, plain PGD, is always run)")
    if ad["seeds"] not in ("all", "base"):
        raise ParameterError(f"detection.adaptive.seeds must be all or base, got {ad['seeds']!r}")
    return d


MAX_CONFIG_BYTES = 1 << 20


class _UniqueKeyLoader(yaml.SafeLoader):
    """``safe_load`` that refuses a key given twice in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:  # the mapping's own keys: a merged (<<: *anchor) key may be overridden
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (line {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _read(path: Path, seen: tuple = ()) -> dict:
    """The YAML of ``path``; ``extends: other.yaml`` (relative to it) starts from that config and overrides it
    section by section (a section named here replaces the base's, one level deep for mappings)."""
    if not path.exists():
        raise ParameterError(f"config {path} not found; see configs/ for examples")
    if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
        raise ParameterError(f"config {path} must be a YAML file of at most {MAX_CONFIG_BYTES // 1024} KiB "
                             "(a directory, a device or a larger file is not a config)")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError:
        raise ParameterError(f"config {path} is not UTF-8 text; save it as a UTF-8 YAML file") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"config {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ParameterError(f"config {path} must be a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise ParameterError(f"config {path}: `extends` loops back to {base_path}")
    merged = _read(base_path, (*seen, path.resolve()))
    for key, value in raw.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    merged["name"] = raw.get("name", path.stem)
    return merged


def _merged(defaults: dict, raw: dict) -> dict:
    """Defaults updated by a YAML section, one level deep (a nested dict keeps the defaults it does not set)."""
    return {k: (dict(v, **raw.get(k, {})) if isinstance(v, dict) else raw.get(k, v)) for k, v in defaults.items()}


def _check(section: dict, attack: dict, explainers: list[str], path: Path) -> None:
    """Normalise the section's dataset/model entries (a bare name becomes ``{name: ...}``); unknown
    dataset/model/attack/explainer names and ε outside [0, 1] fail before any work."""
    from .. import attacks, explain

    section["datasets"] = [d if isinstance(d, dict) else {"name": d} for d in section["datasets"]]
    section["models"] = [m if isinstance(m, dict) else {"name": m} for m in section["models"]]
    from ..models.train import check_settings

    for d in section["datasets"]:
        check_settings({**DEFAULTS["train"], **section.get("train", {}), **d.get("train", {})})
        split = d.get("split", section.get("split", "test"))  # Grad-Attacks: test; RADAR-MIX: its own
        _check_data(d["name"], d.setdefault("size", 28), [split], int(attack["n_images"]), "attack.n_images")
    _check_models(section["datasets"], section["models"])
    for a in attack["names"]:
        attacks.params_for(a, attack["params"].get(a))
    for e in _as_list(attack["eps"]):
        attacks.check_eps(e)
    for x in explainers:
        explain.check_params(x, section["explain"].get("params", {}).get(x, {}))
    section["explain"]["target"] = targets = _as_list(section["explain"]["target"])
    for t in targets:
        explain.TARGETS[t]
    if int(attack["n_images"]) < 2:
        raise ParameterError("attack.n_images must be ≥ 2")


MAX_FOLDER_SIZE = 512


def _check_data(name: str, size: int, splits: list[str], n: int, key: str) -> None:
    """A dataset entry before any work: a known name at a size the set has (not multi-label); a MedMNIST file
    already on disk is the official one (its MD5: a truncated or altered file is one line, not a traceback when
    its splits are counted); a sample of ``n`` images (config key ``key``) its splits can give."""
    from .. import data
    from ..data.medmnist import MEDMNIST, fetch_medmnist, medmnist_filename

    data.check(name, size)
    if name not in MEDMNIST and size > MAX_FOLDER_SIZE:
        raise ParameterError(f"{name}: size {size} px is above the {MAX_FOLDER_SIZE} px this project allows for image "
                             "folders (the source images are 224 px or smaller: a larger size only up-samples); "
                             "lower size")
    if name in MEDMNIST and (data.data_dir() / "medmnist" / medmnist_filename(name, size)).exists():
        fetch_medmnist(name, size)
    data.check_sample(name, size, splits, n, key)


def _check_models(datasets: list[dict], model_entries: list[dict]) -> None:
    """Every (dataset, model) pair as the runs will build it (:func:`advxai.models.check`): a known model,
    parameters its builder takes (a typo gets the closest name), a size at which its Grad-CAM map is at least
    2×2."""
    from .. import models
    from ..models.train import check_settings

    for m in model_entries:
        check_settings({**DEFAULTS["train"], **(m.get("train") or {})})
        for d in datasets:
            params = {**m.get("params", {}), **d.get("model_params", {}).get(m["name"], {})}
            models.check(m["name"], d["size"], params)


def _as_list(v) -> list:
    return list(v) if isinstance(v, list | tuple) else [v]
