"""The explainer registry and what it is called through: one map per image in [0, 1] for given target classes;
which class each map explains (targets); the maps of clean and attacked versions at once."""

from __future__ import annotations

import keras
import numpy as np

from ..errors import ParameterError
from ..registry import Registry, keyword_defaults
from ..registry import check_params as check_kw

EXPLAINERS: Registry = Registry("explainer")


_COMPILED: dict = {}


def compiled_for(model: keras.Model, key: str, build):
    """One compiled function ``build()`` per (model, ``key``), kept while that model object lives: keyed by a weak
    reference to the model itself (an ``id()`` can be reused by a new model once the old one is freed)."""
    import weakref

    ref, fns = _COMPILED.get("model"), _COMPILED.get("fns", {})
    if ref is None or ref() is not model:
        _COMPILED.clear()  # one model at a time: do not keep old models alive
        _COMPILED.update(model=weakref.ref(model), fns={})
        fns = _COMPILED["fns"]
    if key not in fns:
        fns[key] = build()
    return fns[key]


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Per-image min–max to [0, 1] (constant maps become 0), like tf-keras-vis' ``normalize_cam``."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def check_params(name: str, params: dict) -> None:
    """Refuse, before any work, an unknown explainer or a parameter it does not take (closest name suggested)."""
    check_kw(f"explainer {name!r}", params, keyword_defaults(EXPLAINERS[name], 3))


def explain(name: str, model: keras.Model, x: np.ndarray, targets: np.ndarray | None = None, **kw) -> np.ndarray:
    """Maps (N, H, W) in [0, 1] of explainer ``name`` for ``targets`` (default: the model's own prediction)."""
    fn = EXPLAINERS[name]
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input.shape[1:]):
        raise ParameterError(f"images must be (N, {', '.join(map(str, model.input.shape[1:]))}), got {x.shape}")
    if targets is None:
        from ..models.train import predict_logits

        targets = predict_logits(model, x).argmax(1)
    targets = np.asarray(targets)
    if len(targets) != len(x):
        raise ParameterError(f"{len(targets)} targets for {len(x)} images")
    if x.shape[-1] not in (1, 3):
        raise ParameterError(f"explainers take grey (C=1) or RGB (C=3) images, got C={x.shape[-1]}")
    return fn(model, x, targets, **kw)


# --- explanation targets: which class each map explains --------------------------------------------------
# (clean-image target, attacked-image target) from the true labels y and the clean / attacked predictions.
TARGETS: Registry = Registry("explanation target")
TARGETS.register("predicted")(lambda y, pc, pa: (pc, pa))  # each map explains its own prediction (a deployed view)
TARGETS.register("label")(lambda y, pc, pa: (y, y))  # the true class (the seeds' Grad-CAM)
TARGETS.register("clean")(lambda y, pc, pa: (pc, pc))  # the clean prediction on both: map change without class change


def explain_versions(name: str, model: keras.Model, x: np.ndarray, y: np.ndarray, advs: dict[str, np.ndarray],
                     preds: dict[str, np.ndarray], targets: list[str], repeated: tuple[str, ...] = (),
                     **kw) -> dict[str, dict[str, np.ndarray]]:
    """Maps of explainer ``name`` for clean images ``x`` and every attacked version, for each target.

    ``advs[a]`` holds the attacked images (E, N, H, W, C) of attack ``a`` at each ε, ``preds`` the predicted
    classes (``preds["clean"]`` (N,), ``preds[a]`` (E, N)). Returns ``{target: {"clean": (N, H, W),
    a: (E, N, H, W)}}``. A map of the same image for the same class is computed once and reused (the
    ``clean`` target equals ``predicted`` wherever the attack did not change the prediction), and attacks in
    ``repeated`` (ε-free, e.g. C&W: the same images at every ε) are explained once.
    """
    done: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # version -> [(targets, maps)] computed so far

    def maps_for(version: str, imgs: np.ndarray, t: np.ndarray) -> np.ndarray:
        out, todo = None, np.ones(len(t), bool)
        for t_prev, m_prev in done.get(version, []):
            same = todo & (t_prev == t)
            if same.any():
                out = m_prev.copy() if out is None else out
                out[same] = m_prev[same]
                todo &= ~same
        if todo.any():
            new = explain(name, model, imgs[todo], t[todo], **kw)
            out = np.zeros((len(t), *new.shape[1:]), np.float32) if out is None else out
            out[todo] = new
        done.setdefault(version, []).append((t.copy(), out))
        return out

    result = {}
    for target in targets:
        fn = TARGETS[target]
        res = {"clean": maps_for("clean", x, np.asarray(fn(y, preds["clean"], preds["clean"])[0]))}
        for a, xa in advs.items():
            once = a in repeated
            stack = [maps_for(f"{a}/{k}", xa[k], np.asarray(fn(y, preds["clean"], preds[a][k])[1]))
                     for k in range(1 if once else len(xa))]
            res[a] = np.repeat(stack[0][None], len(xa), axis=0) if once else np.stack(stack)
        result[target] = res
    return result
