"""Compiled, batched FGSM / BIM / PGD / DeepFool / C&W-L2 for the stages that attack many images.

ART's TensorFlow estimator computes each gradient eagerly, batch by batch: on 2 CPU cores it took 4.5 s for
one FGSM step over 624 images at 28 px and 190 s for DeepFool. A detection study needs every test image under
several attacks, so these run as ``tf.function`` s (same definitions as the registry's ART entries, same
defaults; tests compare them with ART's). C&W-L2 is ART's own algorithm (tanh space, binary search on the
constant, ART's halving/doubling line search) with the model's logits and gradients compiled: ART computes two
eager class gradients per step and a Keras ``predict`` per line-search trial. Other attacks of the registry (UAP,
APGD + Square) go through ART (:func:`advxai.attacks.sweep`). Every result is projected onto the ε-ball and
budget-checked by :mod:`advxai.attacks`.

The optional ``penalty`` makes PGD *adaptive*: it maximises ``min(CE(f(x), y), 2) − λ · penalty(x)``, e.g. the
score of a detector, so the adversarial example also hides from it (Carlini & Wagner 2017; Athalye et al. 2018).
Each image then returns its best iterate — the one that fools the model with the lowest penalty (the last one
where none fools it) — since fixed signed steps oscillate around the boundary rather than settle on it.
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


_GRAPHS: dict = {}  # one compiled PGD per (model, penalty): retracing costs more than a small batch


def _pgd_graph(model, penalty=None):
    key = (id(model), id(penalty))
    cached = _GRAPHS.get(key)
    if cached is None or cached[0] is not model or cached[1] is not penalty:
        if any(k[0] != id(model) for k in _GRAPHS):
            _GRAPHS.clear()  # one model's graphs at a time: the plain one and one per attacked detector
        _GRAPHS[key] = (model, penalty, _build_pgd(model, penalty))
    return _GRAPHS[key][2]


def _build_pgd(model, penalty):
    import tensorflow as tf

    # every argument a tensor (the weight, ε, the step and the number of steps): one trace serves every call
    @tf.function(reduce_retracing=True)
    def run(x, y, x0, eps, step, steps, weight):
        def body(i, xa, best, best_s):
            with tf.GradientTape() as tape:
                tape.watch(xa)
                loss, logits = _ce(model, xa, y)
                if penalty is not None:  # once fooled with margin, only the detector's score is pushed down
                    pen = penalty(xa)
                    loss = tf.minimum(loss, 2.0) - weight * pen
            g = tape.gradient(loss, xa)
            if penalty is not None:  # keep each image's best iterate: fooled, lowest score
                better = (tf.argmax(logits, 1, output_type=tf.int32) != y) & (pen < best_s)
                best = tf.where(better[:, None, None, None], xa, best)
                best_s = tf.where(better, pen, best_s)
            xa = xa + step * tf.sign(g)
            xa = tf.clip_by_value(tf.clip_by_value(xa, x - eps, x + eps), 0.0, 1.0)
            return i + 1, xa, best, best_s

        inf = tf.fill(tf.shape(y), tf.constant(np.inf, tf.float32))
        _, xa, best, best_s = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), x0, x0, inf))
        if penalty is None:
            return xa
        last = body(steps, xa, best, best_s)  # the final iterate is a candidate too
        return tf.where(tf.math.is_finite(last[3])[:, None, None, None], last[2], xa)

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
    import tensorflow as tf

    run = _pgd_graph(model, penalty)
    rng = np.random.default_rng(seed)
    x0 = x + (rng.uniform(-eps, eps, x.shape).astype(np.float32) if num_random_init else 0)
    x0 = np.clip(x0, 0, 1).astype(np.float32)
    step = float(eps_step) if eps_step is not None else step_ratio * eps
    args = [tf.constant(v, d) for v, d in ((eps, tf.float32), (step, tf.float32), (int(max_iter), tf.int32),
                                           (weight, tf.float32))]
    out = [run(x[i:i + batch_size], np.asarray(y[i:i + batch_size], np.int32), x0[i:i + batch_size], *args).numpy()
           for i in range(0, len(x), batch_size)]
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


def _cw_graphs(model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def logits(xa):
        return model(xa, training=False)

    @tf.function(reduce_retracing=True)
    def margin_gradient(xa, target):
        # ∂(z_y − z_j)/∂x with j the largest other logit: ART's class_gradient(y) − class_gradient(j), in one pass
        with tf.GradientTape() as tape:
            tape.watch(xa)
            z = model(xa, training=False)
            other = tf.argmax(z * (1 - target) + (tf.reduce_min(z, axis=1, keepdims=True) - 1) * target, axis=1)
            margin = tf.reduce_sum(z * target, axis=1) - tf.gather(z, other, axis=1, batch_dims=1)
        return tape.gradient(margin, xa)

    return logits, margin_gradient


def cw(model: keras.Model, x: np.ndarray, y: np.ndarray, eps: float = 0.0, seed: int = 0, confidence: float = 0.0,
       learning_rate: float = 0.01, binary_search_steps: int = 10, max_iter: int = 10, initial_const: float = 0.01,
       max_halving: int = 5, max_doubling: int = 5, batch_size: int = 100) -> np.ndarray:
    """Untargeted C&W-L2 (Carlini & Wagner 2017) exactly as ART's ``CarliniL2Method`` runs it, with compiled model
    calls: minimise ‖x' − x‖² + c · max(z_y − max_{j≠y} z_j + κ, 0) in tanh space; per step one gradient, then a
    line search that halves the learning rate until the loss falls (at most ``max_halving``) or doubles it while it
    keeps falling (``max_doubling``); ``binary_search_steps`` rounds on c. The smallest successful perturbation is
    kept; an image never fooled is returned unchanged. ε is unused (minimal L2); ``seed`` is accepted for the
    registry's signature (C&W is deterministic)."""
    from art.utils import original_to_tanh, tanh_to_original

    x = np.asarray(x, np.float32)
    logits, margin_gradient = _cw_graphs(model)
    onehot = np.eye(int(model.output.shape[-1]), dtype=np.float32)[np.asarray(y)]
    smoother = 0.999999

    def loss(xb, xa, tb, c):
        l2 = np.sum(np.square(xb - xa).reshape(len(xb), -1), axis=1)
        z = logits(np.asarray(xa, np.float32)).numpy()
        z_other = np.max(z * (1 - tb) + (np.min(z, axis=1) - 1)[:, None] * tb, axis=1)
        return z, l2, c * np.maximum(np.sum(z * tb, axis=1) - z_other + confidence, 0) + l2

    def gradient(xb, xa, xa_tanh, tb, c):
        g = margin_gradient(np.asarray(xa, np.float32), tb).numpy()
        g *= c.reshape(-1, *[1] * (xb.ndim - 1))  # in place, float32 throughout, as ART computes it
        g += 2 * (xa - xb)
        g *= (1 - np.square(np.tanh(xa_tanh))) / (2 * smoother)
        return g

    def expand(v):
        return v.reshape(-1, *[1] * (x.ndim - 1))

    out = x.copy()
    for start in range(0, len(x), batch_size):
        xb, tb = x[start:start + batch_size], onehot[start:start + batch_size]
        xb_tanh = original_to_tanh(xb, 0.0, 1.0, smoother)
        c_current, c_lower = initial_const * np.ones(len(xb)), np.zeros(len(xb))
        c_double = np.ones(len(xb), bool)
        best_l2, best_adv = np.inf * np.ones(len(xb)), xb.copy()
        for _ in range(binary_search_steps):
            if not np.any(c_current < 10e10):  # ART's upper bound on c
                break
            lr = learning_rate * np.ones(len(xb))
            xa, xa_tanh = xb.copy(), xb_tanh.copy()
            z, l2, cur = loss(xb, xa, tb, c_current)
            success = cur - l2 <= 0
            ever = success
            for _ in range(max_iter):
                better = success & (l2 < best_l2)
                best_l2[better], best_adv[better] = l2[better], xa[better]
                active = (c_current < 10e10) & (lr > 0)
                if not active.any():
                    break
                step = -gradient(xb[active], xa[active], xa_tanh[active], tb[active], c_current[active])
                prev, best_loss = cur.copy(), cur.copy()
                best_lr, halving = np.zeros(len(xb)), np.zeros(len(xb))
                for _ in range(max_halving):  # halve until the loss falls
                    do = cur[active] >= prev[active]
                    if not do.any():
                        break
                    sel = active.copy()
                    sel[active] = do
                    trial = tanh_to_original(xa_tanh[sel] + expand(lr[sel]) * step[do], 0.0, 1.0)
                    _, l2[sel], cur[sel] = loss(xb[sel], trial, tb[sel], c_current[sel])
                    best_lr[cur < best_loss] = lr[cur < best_loss]
                    best_loss[cur < best_loss] = cur[cur < best_loss]
                    lr[sel] /= 2
                    halving[sel] += 1
                lr[active] *= 2
                for _ in range(max_doubling):  # no halving needed: double while the loss keeps falling
                    do = (halving[active] == 1) & (cur[active] <= best_loss[active])
                    if not do.any():
                        break
                    sel = active.copy()
                    sel[active] = do
                    lr[sel] *= 2
                    trial = tanh_to_original(xa_tanh[sel] + expand(lr[sel]) * step[do], 0.0, 1.0)
                    _, l2[sel], cur[sel] = loss(xb[sel], trial, tb[sel], c_current[sel])
                    best_lr[cur < best_loss] = lr[cur < best_loss]
                    best_loss[cur < best_loss] = cur[cur < best_loss]
                lr[halving == 1] /= 2
                update = best_lr[active] > 0
                if update.any():
                    sel = active.copy()
                    sel[active] = update
                    xa_tanh[sel] = xa_tanh[sel] + expand(best_lr[sel]) * step[update]
                    xa[sel] = tanh_to_original(xa_tanh[sel], 0.0, 1.0)
                    z[sel], l2[sel], cur[sel] = loss(xb[sel], xa[sel], tb[sel], c_current[sel])
                    success = cur - l2 <= 0
                    ever = ever | success
            better = success & (l2 < best_l2)
            best_l2[better], best_adv[better] = l2[better], xa[better]
            c_double[ever] = False
            c_current[ever] = (c_lower + c_current)[ever] / 2
            c_old = c_current
            c_current[~ever & c_double] *= 2
            grow = ~ever & ~c_double
            c_current[grow] += (c_current - c_lower)[grow] / 2
            c_lower[~ever] = c_old[~ever]
        out[start:start + batch_size] = best_adv
    return out


FAST.register("cw")(cw)


def sweep(model: keras.Model, x: np.ndarray, y: np.ndarray, name: str, eps_grid, params: dict | None = None,
          seed: int = 0, fit=None) -> dict[float, np.ndarray]:
    """{ε: adversarial images}: the compiled attack where there is one, else the ART registry entry."""
    params = A.params_for(name, params)  # unknown parameter names fail as in the registry
    if name not in FAST:
        return {e: xa for e, (xa, _) in A.sweep(model, x, y, name, eps_grid, params, seed, fit, progress=False).items()}
    if A.spec(name).eps_free:  # C&W: ε unused, one run serves the grid
        xa = FAST[name](model, np.asarray(x, np.float32), y, 0.0, seed=seed, **params)
        return {A.check_eps(e): xa for e in eps_grid}
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
