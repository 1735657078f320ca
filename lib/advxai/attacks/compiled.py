"""Compiled, batched FGSM / BIM / PGD / DeepFool for the detection stage, which attacks every test image.

ART's TensorFlow estimator computes each gradient eagerly, batch by batch: on 2 CPU cores it took 4.5 s for
one FGSM step over 624 images at 28 px and 190 s for DeepFool. A detection study needs every test image under
several attacks, so these four run as one ``tf.function`` each (same definitions as the registry's ART
entries, same defaults; tests compare FGSM and BIM with ART's). Other attacks of the registry (C&W, UAP,
APGD + Square) go through ART (:func:`advxai.attacks.sweep`). Every result is projected onto the ε-ball and
budget-checked by :mod:`advxai.attacks`.

The optional ``penalty`` makes PGD *adaptive*: it maximises ``CE(f(x), y) − λ · penalty(x)``, e.g. the score of
a detector, so the adversarial example also hides from it (Carlini & Wagner 2017; Athalye et al. 2018).
"""

from __future__ import annotations

import keras
import numpy as np

from ..errors import ParameterError
from ..registry import Registry
from . import evasion as A

FAST: Registry = Registry("compiled attack")


def _ce(model, x, y):
    import tensorflow as tf

    logits = model(x, training=False)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits), logits


_GRAPHS: dict = {}  # one compiled PGD per (model, penalty, weight): retracing costs more than a small batch


def _pgd_graph(model, penalty=None, weight: float = 0.0):
    key = (id(model), id(penalty), float(weight))
    cached = _GRAPHS.get(key)
    if cached is None or cached[0] is not model or cached[1] is not penalty:
        _GRAPHS.clear()
        _GRAPHS[key] = (model, penalty, _build_pgd(model, penalty, weight))
    return _GRAPHS[key][2]


def _build_pgd(model, penalty, weight):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(x, y, x0, eps, step, steps):
        def body(i, xa):
            with tf.GradientTape() as tape:
                tape.watch(xa)
                loss, _ = _ce(model, xa, y)
                if penalty is not None:  # once fooled with margin, only the detector's score is pushed down
                    loss = tf.minimum(loss, 2.0) - weight * penalty(xa)
            g = tape.gradient(loss, xa)
            xa = xa + step * tf.sign(g)
            xa = tf.clip_by_value(tf.clip_by_value(xa, x - eps, x + eps), 0.0, 1.0)
            return i + 1, xa

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), x0))[1]

    return run


def pgd(model: keras.Model, x: np.ndarray, y: np.ndarray, eps: float, max_iter: int = 10, step_ratio: float = 0.25,
        eps_step: float | None = None, num_random_init: int = 1, seed: int = 0, batch_size: int = 256,
        penalty=None, weight: float = 0.0) -> np.ndarray:
    """L∞ PGD (Madry et al. 2018): ``num_random_init`` (0 or 1) uniform start in the ε-ball, ``max_iter`` signed
    gradient steps of ``eps_step`` (else ``step_ratio``·ε), each projected onto the ball and [0, 1].
    ``num_random_init = 0`` is BIM (Kurakin et al. 2017); ``max_iter = 1`` with step ε and no start is FGSM."""
    if num_random_init not in (0, 1):
        raise ParameterError("the compiled PGD takes num_random_init 0 or 1 (restarts: use the ART registry entry)")
    x = np.asarray(x, np.float32)
    run = _pgd_graph(model, penalty, weight)
    rng = np.random.default_rng(seed)
    x0 = x + (rng.uniform(-eps, eps, x.shape).astype(np.float32) if num_random_init else 0)
    x0 = np.clip(x0, 0, 1).astype(np.float32)
    step = float(eps_step) if eps_step is not None else step_ratio * eps
    out = [run(x[i:i + batch_size], np.asarray(y[i:i + batch_size], np.int32), x0[i:i + batch_size],
               np.float32(eps), np.float32(step), int(max_iter)).numpy() for i in range(0, len(x), batch_size)]
    return A.project_linf(x, np.concatenate(out), eps)


FAST.register("fgsm")(lambda model, x, y, eps, seed=0, batch_size=100: pgd(
    model, x, y, eps, max_iter=1, eps_step=eps, num_random_init=0, seed=seed))
FAST.register("pgd")(lambda model, x, y, eps, seed=0, max_iter=10, step_ratio=0.25, eps_step=None,
                     num_random_init=1, batch_size=100: pgd(model, x, y, eps, max_iter, step_ratio, eps_step,
                                                            num_random_init, seed))
FAST.register("bim")(lambda model, x, y, eps, seed=0, max_iter=10, step_ratio=0.1, eps_step=None, batch_size=100:
                     pgd(model, x, y, eps, max_iter, step_ratio, eps_step, 0, seed))


def _deepfool_graph(model, n_classes: int):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(xa, orig):
        # one linearised step towards the nearest other class (Moosavi-Dezfooli et al. 2016, Alg. 2)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xa)
            z = model(xa, training=False)
            z_orig = tf.gather(z, orig, axis=1, batch_dims=1)
            diffs = [z[:, k] - z_orig for k in range(n_classes)]
        grads = tf.stack([tape.gradient(d, xa) for d in diffs], axis=1)  # (N, K, H, W, C)
        f = tf.stack(diffs, axis=1)  # (N, K), 0 for the original class
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[2, 3, 4])) + 1e-8
        dist = tf.abs(f) / norm + tf.one_hot(orig, n_classes) * 1e10  # never step to the original class
        k = tf.argmin(dist, axis=1, output_type=tf.int32)
        fk, gk = tf.gather(f, k, axis=1, batch_dims=1), tf.gather(grads, k, axis=1, batch_dims=1)
        nk = tf.gather(norm, k, axis=1, batch_dims=1)
        r = ((tf.abs(fk) + 1e-4) / tf.square(nk))[:, None, None, None] * gk
        return r, tf.argmax(z, axis=1, output_type=tf.int32)

    return step


def deepfool(model: keras.Model, x: np.ndarray, y: np.ndarray, eps: float, seed: int = 0, max_iter: int = 50,
             nb_grads: int = 10, batch_size: int = 100) -> np.ndarray:
    """DeepFool (Moosavi-Dezfooli et al. 2016) as ART runs it: iterate linearised steps to the nearest decision
    boundary until the prediction changes (at most ``max_iter``), then apply the overshoot ε once:
    x + (1 + ε)(x_boundary − x), clipped to [0, 1]. Not ε-bounded. All classes are candidates (``nb_grads``
    is accepted for the registry's parameter set; the study's datasets have ≤ 10 classes)."""
    x = np.asarray(x, np.float32)
    n_classes = int(model.output.shape[-1])
    step = _deepfool_graph(model, n_classes)
    xa = x.copy()
    orig = np.asarray(model(x, training=False)).argmax(1).astype(np.int32)
    active = np.ones(len(x), bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        r, pred = step(xa[idx], orig[idx])
        still = pred.numpy() == orig[idx]
        xa[idx[still]] = np.clip(xa[idx[still]] + r.numpy()[still], 0, 1)
        active[idx[~still]] = False
    return np.clip(x + (1 + eps) * (xa - x), 0, 1).astype(np.float32)


FAST.register("deepfool")(deepfool)


def sweep(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps_grid, params: dict | None = None,
          seed: int = 0, fit=None) -> dict[float, np.ndarray]:
    """{ε: adversarial images}: the compiled attack where there is one, else the ART registry entry."""
    params = A.params_for(name, params)  # unknown parameter names fail as in the registry
    if name not in FAST:
        return {e: xa for e, (xa, _) in A.sweep(model, x, y, name, eps_grid, params, seed, fit, progress=False).items()}
    if A.spec(name).overshoot_only:  # DeepFool: one run to the boundary serves every overshoot
        x = np.asarray(x, np.float32)
        boundary = FAST[name](model, x, y, 0.0, seed=seed, **params)
        return {A.check_eps(e): np.clip(x + (1 + e) * (boundary - x), 0, 1).astype(np.float32) for e in eps_grid}
    out = {}
    for e in eps_grid:
        e = A.check_eps(e)
        xa = FAST[name](model, x, y, e, seed=seed, **params)
        if A.spec(name).eps_bounded:
            A.check_budget(x, xa, e, name)
        out[e] = xa
    return out
