"""AutoAttack's members (Croce & Hein 2020) and PGD with restarts, with the model's loss and gradient compiled: the
robustness stage's attacks, which run on every test image at four ε for every model.

ART's versions (the registry's ``autoattack-nofab`` and ``pgd`` entries, the references the tests hold these
against) compute each loss and gradient eagerly and, in Square, three forward passes over every image per query;
on 2 CPU cores one 500-image AutoAttack run took 20–30 min per model (docs/design.md, "Robust models"). Here:

* **APGD** (Croce & Hein 2020, Algorithm 1, with the reference code's step-size schedule): momentum 0.75, first
  step 2ε, the step halved at each checkpoint where the loss rose on fewer than ρ = 0.75 of the steps since the last
  one (at most ρ = 0.75, as the reference code counts), or where neither the step nor the best loss changed; each
  image restarts from its best point then. Loss cross-entropy (APGD-CE) or, targeted, the DLR ratio (APGD-T). An
  image counts as fooled if any iterate fools it; it returns the first iterate that did (the reference code keeps
  the last; robust accuracy is the same) and leaves the model's batch from then on, else its best-loss point. The
  first check counts rises from the start point's loss (the paper's reading; the reference code compares with a
  zero).
* **Square** L∞ (Andriushchenko et al. 2020, the authors' original algorithm): a random-stripe start, then per
  query one square window per image (its side from the authors' p schedule, its place and its sign per channel
  drawn per image, redrawn where it would change no pixel) set to x ± ε, kept where the margin loss drops; one
  forward pass per query, on the images not yet fooled. ART's Square (and AutoAttack's own copy) draws one window
  and one sign for all images; ART also recomputes the current loss each query.
* **PGD with restarts**: the compiled PGD (:mod:`advxai.attacks.compiled`) run again from a fresh random start on
  the images no earlier restart fooled (the robust accuracy equals running every restart on every image).

Each attack keeps ε (results projected and budget-checked by the caller, :func:`robust_generate`) and draws every
random number from the run's seed.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from ..registry import Registry
from . import compiled
from . import evasion as A

PORTS: Registry = Registry("compiled robustness attack")
_GRAPHS: dict = {}


def _graphs(model):
    """(logits, loss-and-gradient) compiled once per model: the loss is ``ce`` or ``dlr-t`` (targeted DLR)."""
    import tensorflow as tf

    cached = _GRAPHS.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]

    @tf.function(reduce_retracing=True)
    def logits(x):
        return model(x, training=False)

    def loss_fn(kind):
        @tf.function(reduce_retracing=True)
        def run(x, y, t):
            with tf.GradientTape() as tape:
                tape.watch(x)
                z = model(x, training=False)
                loss = (tf.nn.sparse_softmax_cross_entropy_with_logits(y, z) if kind == "ce" else
                        dlr_targeted(z, y, t))
            return loss, tape.gradient(loss, x), z
        return run

    graphs = {"logits": logits, "ce": loss_fn("ce"), "dlr-t": loss_fn("dlr-t")}
    _GRAPHS.clear()
    _GRAPHS[id(model)] = (model, graphs)
    return graphs


def dlr_targeted(z, y, t):
    """Croce & Hein 2020's targeted DLR loss, to be maximised: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12), π the
    logits sorted in decreasing order (needs four classes)."""
    import tensorflow as tf

    zs = tf.sort(z, axis=1, direction="DESCENDING")
    zy, zt = tf.gather(z, y, axis=1, batch_dims=1), tf.gather(z, t, axis=1, batch_dims=1)
    return -(zy - zt) / (zs[:, 0] - (zs[:, 2] + zs[:, 3]) / 2 + 1e-12)


def checkpoint_lengths(n_iter: int) -> list[int]:
    """The steps between APGD's step-size checks (the reference code): first 22 % of the budget, then 3 % less each
    time, at least 6 %."""
    k, dec, k_min = max(int(0.22 * n_iter), 1), max(int(0.03 * n_iter), 1), max(int(0.06 * n_iter), 1)
    out, used = [], 0
    while used + k <= n_iter:
        out.append(k)
        used += k
        k = max(k - dec, k_min)
    return out


def apgd(model, x, y, eps: float, n_iter: int = 100, seed: int = 0, loss: str = "ce", target=None,
         rho: float = 0.75, batch_size: int = 500) -> np.ndarray:
    """APGD on (x, y): untargeted cross-entropy, or targeted DLR towards ``target``. Returns, per image, the first
    iterate that fools the model (else the best-loss point)."""
    out = []
    rng = np.random.default_rng(seed)
    for i in range(0, len(x), batch_size):
        sl = slice(i, i + batch_size)
        out.append(_apgd_batch(model, x[sl], y[sl], None if target is None else target[sl], eps, n_iter, rng, loss,
                               rho))
    return np.concatenate(out) if out else np.asarray(x, np.float32).copy()


def _apgd_batch(model, x, y, target, eps, n_iter, rng, loss, rho):
    step_fn = _graphs(model)[loss]
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32)
    t = np.asarray(y if target is None else target, np.int32)
    n = len(x)
    proj = lambda v: np.clip(np.clip(v, x - eps, x + eps), 0, 1).astype(np.float32)  # noqa: E731
    r = rng.uniform(-1, 1, x.shape).astype(np.float32)  # the reference's start: ε · r / max|r| per image
    x_k = proj(x + eps * r / np.abs(r).reshape(n, -1).max(1).reshape(n, 1, 1, 1))

    def evaluate(v, rows=slice(None)):
        f, g, z = step_fn(v[rows], y[rows], t[rows])
        return f.numpy(), g.numpy(), z.numpy().argmax(1)

    f, g, pred = evaluate(x_k)
    fooled = pred != y  # targeted or not, an image is fooled when the model no longer predicts its class
    x_adv = np.where(fooled[:, None, None, None], x_k, x)
    x_best, f_best, g_best = x_k.copy(), f.copy(), g.copy()
    eta = np.full(n, 2 * eps, np.float32)
    x_prev = x_k.copy()
    checks = np.cumsum(checkpoint_lengths(n_iter))
    since, increases, last_f, f_best_check = 0, np.zeros(n), f.copy(), f_best.copy()
    reduced = np.ones(n, bool)
    for k in range(n_iter):
        e = eta[:, None, None, None]
        z = proj(x_k + e * np.sign(g))
        a = 1.0 if k == 0 else 0.75  # momentum from the second step on
        x_new = proj(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev))
        x_prev, x_k = x_k, x_new
        live = np.flatnonzero(~fooled)  # a fooled image keeps its first success: the model runs on the others only
        if not len(live):
            break
        f[live], g[live], pred_live = evaluate(x_k, live)
        hit = np.zeros(n, bool)
        hit[live] = pred_live != y[live]
        x_adv[hit & ~fooled] = x_k[hit & ~fooled]
        fooled |= hit
        increases += f > last_f
        last_f = f
        better = f > f_best
        x_best[better], g_best[better], f_best[better] = x_k[better], g[better], f[better]
        since += 1
        if k + 1 in checks:  # step-size check (conditions 1 and 2 of Algorithm 1)
            halve = (increases <= rho * since) | (~reduced & (f_best_check >= f_best))
            eta[halve] /= 2
            x_k[halve], g[halve] = x_best[halve], g_best[halve]
            reduced, f_best_check, since, increases = halve, f_best.copy(), 0, np.zeros(n)
    return np.where(fooled[:, None, None, None], x_adv, x_best)


def _p_schedule(p_init: float, it: int, n_iter: int) -> float:
    """Square's share of pixels per window (the authors' schedule, rescaled to the query budget)."""
    it = int(it / n_iter * 10000)
    steps = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
    return p_init / 2 ** sum(it > s for s in steps)


def square(model, x, y, eps: float, n_iter: int = 5000, p_init: float = 0.8, seed: int = 0) -> np.ndarray:
    """Square L∞, untargeted, margin loss z_y − max_{k≠y} z_k (fooled when ≤ 0)."""
    logits_fn = _graphs(model)["logits"]
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    n, h, w, c = x.shape

    def margin(v, lab):
        z = logits_fn(v).numpy().astype(np.float64)
        zy = z[np.arange(len(z)), lab]
        z[np.arange(len(z)), lab] = -np.inf
        return zy - z.max(1)

    x_best = np.clip(x + eps * rng.choice([-1.0, 1.0], size=(n, 1, w, c)), 0, 1).astype(np.float32)  # stripes
    m_best = margin(x_best, y)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    for it in range(n_iter - 1):
        idx = np.flatnonzero(m_best > 0)
        if not len(idx):
            break
        xc, xb = x[idx], x_best[idx]
        s = min(max(int(round(np.sqrt(_p_schedule(p_init, it, n_iter) * h * w))), 1), h - 1)
        x_new, sel = xb.copy(), np.arange(len(idx))
        for _ in range(100):  # draw each image's window; redraw where it would change no pixel (the authors' loop)
            if not len(sel):
                break
            vh, vw = rng.integers(0, h - s, len(sel)), rng.integers(0, w - s, len(sel))
            inside = ((rows >= vh[:, None, None]) & (rows < vh[:, None, None] + s) &
                      (cols >= vw[:, None, None]) & (cols < vw[:, None, None] + s))[..., None]  # (m, h, w, 1)
            vertex = np.clip(xc[sel] + eps * rng.choice([-1.0, 1.0], size=(len(sel), 1, 1, c)), 0, 1)
            x_new[sel] = np.where(inside, vertex, xb[sel])
            same = np.all(np.abs(x_new[sel] - xb[sel]) < 1e-7, axis=(1, 2, 3))
            sel = sel[same]
        m_new = margin(x_new, y[idx])
        better = m_new < m_best[idx]
        x_best[idx[better]], m_best[idx[better]] = x_new[better], m_new[better]
    return x_best


class _Member:
    """One ensemble member with the ART-style ``generate(x, y_onehot)`` that :class:`~advxai.attacks.evasion.
    FirstSuccess` calls: ``run(x, classes)`` gets the true classes, or a targeted member's target classes."""

    def __init__(self, run):
        self.run = run

    def generate(self, x, y):
        return self.run(x, y.argmax(1))


class _Predictor:
    def __init__(self, model):
        self.logits = _graphs(model)["logits"]

    def predict(self, x):
        return np.concatenate([self.logits(x[i:i + 500]).numpy() for i in range(0, len(x), 500)]) if len(x) else \
            np.zeros((0, 1), np.float32)


def autoattack_nofab(model, x, y, eps: float, seed: int = 0, apgd_iter: int = 100, n_targets: int = 9,
                     square_iter: int = 5000, p_init: float = 0.8, batch_size: int = 500):
    """AutoAttack's standard ensemble without FAB-T (the registry's ``autoattack-nofab``): APGD-CE, APGD-T on the
    ``n_targets`` most likely other classes (four or more classes: the DLR ratio needs π4), Square; each image keeps
    its first success (:class:`~advxai.attacks.evasion.FirstSuccess`)."""
    k = int(model.output.shape[-1])
    seeds = np.random.SeedSequence(seed).spawn(3)
    per_target = iter(seeds[1].spawn(k))  # each target's run its own random start, as the reference draws anew

    def targeted(xb, t):  # the true class is the clean prediction: the ensemble passes only images still correct
        true = _Predictor(model).predict(xb).argmax(1)
        return apgd(model, xb, true, eps, apgd_iter, next(per_target), "dlr-t", t, batch_size=batch_size)

    members = [("apgd-ce", _Member(lambda xb, yb: apgd(model, xb, yb, eps, apgd_iter, seeds[0],
                                                          batch_size=batch_size)), 0)]
    if k >= 4:
        members.append(("apgd-t", _Member(targeted), min(n_targets, k - 1)))
    members.append(("square", _Member(lambda xb, yb: square(model, xb, yb, eps, square_iter, p_init, seeds[2])), 0))
    ens = A.FirstSuccess(_Predictor(model), members)
    return ens.generate(np.asarray(x, np.float32), np.eye(k, dtype=np.float32)[np.asarray(y)])


def pgd_restarts(model, x, y, eps: float, seed: int = 0, max_iter: int = 50, step_ratio: float = 0.1,
                 eps_step=None, num_random_init: int = 5, batch_size: int = 500):
    """PGD with ``num_random_init`` random starts: each restart attacks the images no earlier one fooled."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    x_adv = x.copy()
    left = np.ones(len(x), bool)
    for r in range(max(1, num_random_init)):
        idx = np.flatnonzero(left)
        if not len(idx):
            break
        trial = compiled.pgd(model, x[idx], y[idx], eps, max_iter, step_ratio, eps_step, int(num_random_init > 0),
                             np.random.SeedSequence([seed, r]), batch_size)
        x_adv[idx] = trial
        left[idx[_Predictor(model).predict(trial).argmax(1) != y[idx]]] = False
    return x_adv


PORTS.register("autoattack-nofab")(autoattack_nofab)
PORTS.register("pgd")(pgd_restarts)


def robust_generate(model: keras.Model, x, y, name: str, eps: float, params: dict | None = None,
                    seed: int = 0) -> tuple[np.ndarray, float]:
    """Like :func:`advxai.attacks.generate` (same names, parameters and checks; ε-bounded, projected and
    budget-checked), by the compiled port where one exists, else by ART."""
    if name not in PORTS:
        return A.generate(model, x, y, name, eps, params, seed=seed)
    params = A.params_for(name, params)
    eps = A.check_eps(eps)
    x = A._check_images(model, x)
    if eps == 0:  # the clean reference, as in advxai.attacks.generate
        return x.copy(), 0.0
    keras.utils.set_random_seed(int(seed))
    t0 = time.perf_counter()
    x_adv = PORTS[name](model, x, np.asarray(y), eps, seed=seed, **params)
    secs = time.perf_counter() - t0
    x_adv = A.project_linf(x, x_adv, eps)
    A.check_budget(x, x_adv, eps, name)
    return x_adv, secs
