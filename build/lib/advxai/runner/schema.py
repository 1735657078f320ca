"""The config's JSON Schema, built from the defaults of :mod:`advxai.runner.config`, and its check with
``jsonschema``: every key known, every value of its type and in its range, names safe as folders and as text,
all before any work. ``advxai schema`` prints it (an editor's YAML plug-in completes and checks a config with it).

Types come from the defaults (a key whose default is a bool takes only true/false, an int only an integer, a float
a number, a mapping a mapping, a list a list); ranges are declared in :data:`RANGES`, by key, and apply wherever the
key appears, the free-form parameter maps (an attack's, an explainer's, a model's) included. Which names those maps
may hold is the registries' check (the builder's signature, with did-you-mean); the schema checks their values.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import jsonschema

from ..errors import ParameterError

# What a config's own name and a model's label may hold: they become folder names under --results and text in the
# book, so no path separator, no leading dot and nothing HTML or a shell reads specially ("·" joins seed labels).
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+·-]{0,63}")
SAFE_PATTERN = f"^{SAFE_NAME.pattern}(?!\\n)$"  # Python's $ also matches before a final newline
SAFE_MESSAGE = ("must be 1–64 letters, digits or _ . + · - (starting with a letter, digit or _; set `name:` or rename "
                "the file): it names folders under --results and text in the book")

# Declared ranges by key, wherever the key appears (sections, per-entry overrides, attack/explainer parameters).
AT_LEAST_1 = {"epochs", "batch_size", "n_boot", "n_reference", "mc_samples", "ig_steps", "folds", "max_iter",
              "n_background", "nb_grads", "num_random_init", "square_iter", "apgd_iter", "steps", "size",
              "binary_search_steps", "nb_restarts", "num_samples", "n_targets", "nsamples", "num_features",
              "n_segments", "max_rows", "depth", "width", "stem_stride"}
AT_LEAST_0 = {"n_images", "warmup", "patience", "weight_decay", "label_smoothing", "n_explain", "lr",
              "learning_rate", "step_ratio", "confidence", "delta", "topk", "initial_const"}
UNIT_INTERVAL = {"eps", "eps_curve", "label_smoothing", "topk", "p_init", "step_ratio", "delta",
                 "attacker_eps_ratio", "dropout"}
RANGES = {**{k: {"minimum": 1} for k in AT_LEAST_1}, **{k: {"minimum": 0} for k in AT_LEAST_0}}
for _k in UNIT_INTERVAL:
    RANGES[_k] = {**RANGES.get(_k, {}), "minimum": 0, "maximum": 1}

SCALAR_OR_LIST = {"eps", "target", "splits"}  # one value stands for a one-element list
BOOL_OR_NAME = {"augment", "balance"}  # true/false or a name (an augmentation, "sqrt"): the recipe checks the name
FREE_FORM = {"params", "model_params", "attacks"}  # name -> parameters: names checked by the registries

TYPES = {"boolean": "true or false", "integer": "an integer", "number": "a number", "object": "a mapping",
         "array": "a list", "string": "text", "null": "null"}


def _typed(default) -> dict:
    """The schema type of a default value (strings and nulls: names or options, checked by their registries)."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (dict, "object"), (list, "array")):
        if isinstance(default, kind):
            return {"type": name}
    return {}


def field(key: str, default, train: dict) -> dict:
    """The schema of one key given its default (a nested mapping of defaults becomes a closed object)."""
    s = _typed(default)
    if key in BOOL_OR_NAME:
        s = {"type": ["boolean", "string"]}
    if key == "train":
        return train
    if isinstance(default, dict) and key not in FREE_FORM:
        s = closed({k: field(k, v, train) for k, v in default.items()}) if default else {"type": "object"}
    if key in FREE_FORM:
        s["additionalProperties"] = PARAMETERS
    if key == "n_explain":
        s["additionalProperties"] = {"type": "integer", **RANGES["n_explain"]}
    item_default = default[0] if isinstance(default, list) and default else None
    if isinstance(default, list):
        s["items"] = {**_typed(item_default), **RANGES.get(key, {})}
    if key == "names":
        s["minItems"] = 1
    if key in SCALAR_OR_LIST and isinstance(default, list):
        s["type"] = ["array", "number" if key == "eps" else "string"]
        s.update(RANGES.get(key, {}))
    elif key == "eps" and isinstance(default, dict):  # detection: attack -> its ε (one or a list)
        s["additionalProperties"] = {"type": ["array", "number"], "items": {"type": "number", **RANGES["eps"]},
                                     **RANGES["eps"]}
    elif key in RANGES and not isinstance(default, list | dict):
        s.update(RANGES[key])
    return s


# Any builder's parameters: declared ranges by name (the names and their types are the registry's check).
PARAMETERS = {"$ref": "#/$defs/parameters"}


def closed(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _entries(keys: dict) -> dict:
    """A list of datasets or models: each a bare name or a mapping of ``keys``."""
    return {"type": "array", "items": {"type": ["string", "object"], "minLength": 1, "properties": keys,
                                       "additionalProperties": False, "required": ["name"]}}


def build_schema() -> dict:
    """The whole config's JSON Schema (draft 2020-12)."""
    from .config import DEFAULTS, DETECTION, PARTS, RADARMIX, ROBUSTNESS
    from .runs import STAGES

    train = closed({k: field(k, v, {}) for k, v in DEFAULTS["train"].items()})
    train["properties"]["adversarial"] = {"type": ["object", "null"], "properties": RANGES}
    datasets = _entries({"name": {"type": "string"}, "size": {"type": "integer", **RANGES["size"]},
                         "model_params": field("model_params", {}, train), "train": train,
                         "split": {"type": "string"}})
    models = _entries({"name": {"type": "string"}, "params": PARAMETERS, "train": train,
                       "label": {"type": "string", "pattern": SAFE_PATTERN}})

    def part(defaults: dict) -> dict:
        s = closed({k: field(k, v, train) for k, v in defaults.items()})
        s["properties"].update(datasets=datasets, models=models)
        # one section, or a list of them: object keywords apply to a mapping, ``items`` to a list
        return {**s, "type": ["object", "array"], "items": s}

    top = {k: field(k, v, train) for k, v in DEFAULTS.items()}
    top["seeds"] = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    top["per_seed"] = {"type": "array", "items": {"enum": list(PARTS)}, "uniqueItems": True}
    top["estimates"] = closed({stage: {"type": "number", "minimum": 0} for stage in STAGES})
    top.update(name={"type": "string", "pattern": SAFE_PATTERN}, datasets=datasets, models=models,
               radarmix=part(RADARMIX), detection=part(DETECTION), robustness=part(ROBUSTNESS))
    top["robustness"]["type"] = "object"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "advxai experiment config",
            **closed(top), "$defs": {"parameters": {"type": "object", "properties": RANGES}}}


# integers are integers: jsonschema's default checker takes 3.0 as an integer, a YAML reader means a float
_STRICT = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_STRICT)


def validate(raw: dict, path: Path) -> None:
    """Check a config's YAML (after ``extends``) against the schema; the first error, one line: where, the bad
    value, the fix, a did-you-mean for an unknown key."""
    errors = sorted(Validator(build_schema()).iter_errors(raw), key=lambda e: (len(e.absolute_path), e.validator))
    if errors:
        raise ParameterError(f"config {path}: {message(errors[0])}")


def where(error: jsonschema.ValidationError) -> str:
    out = ""
    for p in error.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def message(e: jsonschema.ValidationError) -> str:
    """A validation error as the fix a user needs."""
    at, value = where(e), e.instance
    if e.validator == "additionalProperties":
        known = list(e.schema.get("properties", {}))
        key = next(k for k in value if k not in known)
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
        return f"unknown key {at + '.' if at else ''}{key!r}{hint}"
    if e.validator == "type":
        kinds = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
        words = " or ".join(TYPES[k] for k in kinds)
        if set(kinds) == {"object", "array"}:
            words = "a mapping or a list of them"
        if "pattern" in e.schema:
            return f"{at} {value!r} {SAFE_MESSAGE}"
        if "maximum" in e.schema:
            words += f" in [{e.schema['minimum']:g}, {e.schema['maximum']:g}]"
        return f"{at or 'the file'} must be {words}, got {value!r}{yaml_hint(value)}"
    if e.validator in ("minimum", "maximum"):
        bound = e.validator_value
        if e.validator == "minimum":
            return f"{at} must {'not be negative' if bound == 0 else f'be at least {bound}'}, got {value!r}"
        return f"{at} must be at most {bound}, got {value!r}"
    if e.validator == "minItems":
        return f"{at} is empty; name at least one, or leave the key out"
    if e.validator == "pattern" or (e.validator == "minLength" and "pattern" in e.schema):
        return f"{at} {value!r} {SAFE_MESSAGE}"
    if e.validator == "minLength":
        return f"{at} must not be empty; give a name"
    if e.validator == "required":
        missing = next(k for k in e.validator_value if k not in value)
        return f"{at} has no {missing!r}; e.g. {{{missing}: ...}} (or the bare name instead of a mapping)"
    if e.validator == "uniqueItems":
        return f"{at} lists a value twice ({value!r}); keep each once"
    if e.validator == "enum":
        return f"{at} must be one of {', '.join(map(str, e.validator_value))}, got {value!r}"
    return f"{at}: {e.message}"


def yaml_hint(value) -> str:
    """Why a number may have arrived as text: YAML 1.1 reads ``3e-3`` (no dot) as a string."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    return f" (YAML reads {value} as text: write it with a dot, e.g. {number:.1e})"
