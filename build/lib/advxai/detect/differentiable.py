"""The detectors' scores as TensorFlow functions of the image, so that an adaptive attack can follow their gradient
end to end (Carlini & Wagner 2017; Tramèr et al. 2020: attack the real defence, not a stand-in).

A port mirrors the NumPy detector in three parts, each a registry: the views it reads (:data:`VIEWS_TF`, as
:mod:`advxai.detect.views` computes them), its features (:data:`PORTS`, as :mod:`advxai.detect.detectors`
computes them) and its fit (:data:`FITS_TF`, the fitted detector's own parameters: scaler, logistic weights,
Gaussians, one-class SVMs, the clean score distribution). The port's *value* is the real score (to float rounding;
``tests/test_detect_real.py`` checks each against the real detector on real images) and the attack is always
*judged* by the real detector in NumPy. Where the real score has no useful gradient, only the backward pass is
replaced (BPDA, Athalye et al. 2018: ``smooth + stop_gradient(exact − smooth)``), by one rule per cause:

* an input gradient (saliency, gradient × input, integrated gradients) is the first derivative of a ReLU network,
  whose own derivative is zero almost everywhere: the backward pass runs through the network's *softplus twin*
  (every ReLU replaced by softplus(βz)/β, β = :data:`SOFTPLUS_BETA`, the same weights);
* a step function of the image (the lit share of a Grad-CAM map, the two-sided scores' empirical CDF) is smoothed
  by a logistic of width ``tau``; bit-depth reduction and Lee et al.'s signed-gradient pre-processing pass the
  gradient straight through (Athalye et al.'s identity substitute).

Grad-CAM needs neither: these networks end in global average pooling and one dense layer, so its channel weights
are constant and its gradient through the activations is exact. :func:`backward` states the rule per detector.

Registry: detector name -> ``features(views, ref) -> (N, d)`` (float64 tensors).
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry

PORTS: Registry = Registry("differentiable detector")
VIEWS_TF: Registry = Registry("differentiable view")
FITS_TF: Registry = Registry("differentiable fit")
SOFTPLUS_BETA = 10.0  # softplus(10 z)/10 is within log(2)/10 of ReLU everywhere, and smooth
INPUT_GRADIENT_VIEWS = ("saliency", "gxi", "ig")  # views whose gradient needs the softplus twin (BPDA)
STEP_DETECTORS = {"class-map-survival": "smoothed step", "msp-2s": "smoothed step", "max-logit-2s": "smoothed step",
                  "energy-2s": "smoothed step", "feature-squeezing": "straight-through rounding",
                  "mahalanobis-lee": "straight-through pre-processing"}


def _tf():
    import tensorflow as tf

    return tf


def backward(detector: str) -> str:
    """How the adaptive attack's gradient passes through ``detector`` (the module's rule), in a few words:
    ``softplus twin`` (input gradients), ``smoothed step`` (a step function: the lit share of a map, the two-sided
    scores' empirical CDF), ``straight-through rounding`` (bit depth), else ``exact``."""
    from .detectors import DETECTORS

    parts = (["softplus twin"] if set(DETECTORS[detector].views) & set(INPUT_GRADIENT_VIEWS) else []) + (
        [STEP_DETECTORS[detector]] if detector in STEP_DETECTORS else [])
    return " + ".join(parts) or "exact"


def smooth_twin(model, beta: float = SOFTPLUS_BETA):
    """``model`` with every ReLU activation replaced by softplus(βz)/β, sharing every other layer (and so every
    weight) with ``model``: the backward network of BPDA for scores that read input gradients."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "relu":
            return keras.layers.Activation(lambda z: keras.ops.softplus(beta * z) / beta, name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


def median_2x2(x):
    """ART's ``SpatialSmoothing(window_size=2)`` (SciPy's ``median_filter``, mode ``reflect``): the window of a pixel
    is the pixel and its upper and left neighbours (edge repeated), and the median of four values is the third
    smallest (SciPy's rank ⌊4/2⌋). Differentiable almost everywhere (the gradient goes to the selected pixel)."""
    tf = _tf()
    p = tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]], mode="SYMMETRIC")
    h, w = x.shape[1], x.shape[2]
    four = tf.stack([p[:, :h, :w], p[:, :h, 1:], p[:, 1:, :w], p[:, 1:, 1:]], axis=-1)
    return tf.sort(four, axis=-1)[..., 2]


def bit_depth(x, bits: int):
    """ART's ``FeatureSqueezing``: round(x·(2^b − 1)) / (2^b − 1); its gradient is passed straight through."""
    tf = _tf()
    levels = float(2**bits - 1)
    return x + tf.stop_gradient(tf.round(x * levels) / levels - x)


def _zoom_matrix(n_in: int, n_out: int) -> np.ndarray:
    """SciPy's linear ``zoom`` along one axis as a matrix (n_out, n_in): applied to unit vectors, exact."""
    from scipy.ndimage import zoom

    return np.stack([zoom(np.eye(n_in)[i], n_out / n_in, order=1) for i in range(n_in)], axis=1).astype(np.float32)


def gradcam_fn(model):
    """x, targets -> Grad-CAM as :func:`advxai.explain.gradcam` computes it (ReLU(Σ α_k A_k), SciPy's linear zoom,
    tf-keras-vis' min–max normalisation), in TensorFlow and differentiable w.r.t. x (through A_k; the second
    derivative through a ReLU network is zero almost everywhere, so α_k moves only through the activations)."""
    import keras

    tf = _tf()
    from ..models import last_conv_layer

    layer = model.get_layer(last_conv_layer(model))
    both = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    h, w = layer.output.shape[1:3]
    mh = tf.constant(_zoom_matrix(h, model.input.shape[1]))
    mw = tf.constant(_zoom_matrix(w, model.input.shape[2]))

    def cam(x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts, z = both(x, training=False)
            score = tf.gather(z, targets, axis=1, batch_dims=1)
        grads = tape.gradient(score, acts)
        low = tf.nn.relu(tf.reduce_sum(acts * tf.reduce_mean(grads, axis=(1, 2), keepdims=True), -1))
        up = tf.einsum("Hh,nhw,Ww->nHW", mh, low, mw)
        lo = tf.reduce_min(up, axis=(1, 2), keepdims=True)
        hi = tf.reduce_max(up, axis=(1, 2), keepdims=True)
        return tf.clip_by_value((up - lo) / (hi - lo + 1e-7), 0.0, 1.0)

    return cam


# --- views: (net, x, ctx) -> tensor, ctx = {"targets", "second", "ig_steps", "cam"[, "gradient"]} -----------


def _input_gradient(net, x, targets):
    tf = _tf()
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = tf.gather(net(x, training=False), targets, axis=1, batch_dims=1)
    return tape.gradient(z, x)


VIEWS_TF.register("logits")(lambda net, x, c: net(x, training=False))
VIEWS_TF.register("image")(lambda net, x, c: x)
VIEWS_TF.register("gradcam")(lambda net, x, c: c["cam"](x, c["targets"]))
VIEWS_TF.register("gradcam-runnerup")(lambda net, x, c: c["cam"](x, c["second"]))
VIEWS_TF.register("gradcam-squeezed")(lambda net, x, c: c["cam"](median_2x2(x), c["targets"]))
def _gradient(net, x, c):
    return c["gradient"] if "gradient" in c else _input_gradient(net, x, c["targets"])


VIEWS_TF.register("saliency")(lambda net, x, c: _tf().reduce_sum(_tf().abs(_gradient(net, x, c)), -1))
VIEWS_TF.register("gxi")(lambda net, x, c: _tf().reduce_sum(_gradient(net, x, c) * x, -1))


@VIEWS_TF.register("ig")
def _ig(net, x, c):
    tf = _tf()
    steps = int(c["ig_steps"])
    alphas = tf.constant((np.arange(steps) + 0.5) / steps, tf.float32)[:, None, None, None, None]
    path = tf.reshape(alphas * x[None], (-1, *x.shape[1:]))  # the path's points as one batch: one gradient call
    grads = tf.reshape(_input_gradient(net, path, tf.tile(c["targets"], [steps])), (steps, -1, *x.shape[1:]))
    return tf.reduce_sum(x * tf.reduce_mean(grads, 0), -1)


@VIEWS_TF.register("squeezed")
def _squeezed(net, x, c):
    from .views import BIT_DEPTH, MEDIAN_WINDOW

    return {f"bit-depth-{BIT_DEPTH}": net(bit_depth(x, BIT_DEPTH), training=False),
            f"median-{MEDIAN_WINDOW}x{MEDIAN_WINDOW}": net(median_2x2(x), training=False)}


@VIEWS_TF.register("layers")
def _layers(net, x, c):
    names, acts = _pooled_layers(net)
    return dict(zip(names, acts(x), strict=True))


def _pooled_layers(model):
    import keras

    from .views import block_layers

    names = block_layers(model)
    sub = keras.Model(model.input, [model.get_layer(n).output for n in names])

    def acts(x):
        tf = _tf()
        outs = sub(x, training=False)
        outs = outs if len(names) > 1 else [outs]
        return [tf.reduce_mean(o, axis=(1, 2)) if len(o.shape) == 4 else o for o in outs]

    return names, acts


# --- features: the NumPy formulas of advxai.detect.detectors, in float64 --------------------------------------


def _flat(m):
    tf = _tf()
    return tf.reshape(tf.cast(m, tf.float64), (-1, int(np.prod(m.shape[1:]))))  # static width: the features need it


def _top_mass(p):
    """The mass of the top 10 % entries of each row."""
    k = max(1, int(p.shape[1]) // 10)
    return _tf().reduce_sum(_tf().math.top_k(p, k).values, 1)


def _entropy(p):
    tf = _tf()
    return -tf.reduce_sum(p * tf.math.log(tf.clip_by_value(p, 1e-12, 1.0)), 1)


def map_summary(maps):
    """:func:`advxai.detect.detectors.map_summary`."""
    tf = _tf()
    side = int(maps.shape[1])
    m = _flat(maps)
    mass = m / tf.maximum(tf.reduce_sum(m, 1, keepdims=True), 1e-12)
    yy, xx = (tf.constant(v, tf.float64) for v in np.divmod(np.arange(int(m.shape[1])), side))
    cy, cx = tf.linalg.matvec(mass, yy), tf.linalg.matvec(mass, xx)
    var = tf.linalg.matvec(mass, yy**2) - cy**2 + tf.linalg.matvec(mass, xx**2) - cx**2
    pos = var > 0
    spread = tf.where(pos, tf.sqrt(tf.where(pos, var, 1.0)), 0.0) / side  # sqrt's gradient at 0 is infinite
    return tf.stack([tf.reduce_mean(m, 1), tf.math.reduce_std(m, 1), _entropy(mass), _top_mass(mass), spread], 1)


def _percentile(sorted_rows, q: float):
    """NumPy's default (linear) percentile of rows already sorted ascending."""
    n = int(sorted_rows.shape[1])
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    return sorted_rows[:, lo] + (pos - lo) * (sorted_rows[:, hi] - sorted_rows[:, lo])


def dispersion(attributions):
    """:func:`advxai.detect.detectors.dispersion`."""
    tf = _tf()
    a = tf.abs(_flat(attributions))
    mean = tf.maximum(tf.reduce_mean(a, 1), 1e-12)
    s = tf.sort(a, axis=1)
    p = a / tf.maximum(tf.reduce_sum(a, 1, keepdims=True), 1e-12)
    return tf.stack([tf.math.log(mean), tf.math.reduce_std(a, 1) / mean,
                     (_percentile(s, 0.75) - _percentile(s, 0.25)) / mean, tf.reduce_max(a, 1) / mean,
                     _top_mass(p), _entropy(p) / np.log(int(a.shape[1]))], 1)


def output_features(logits):
    """:func:`advxai.detect.detectors.output_features`."""
    tf = _tf()
    z = tf.cast(logits, tf.float64)
    p = tf.nn.softmax(z)
    top2 = tf.math.top_k(z, 2).values
    return tf.stack([tf.reduce_max(p, 1), top2[:, 0] - top2[:, 1], _entropy(p)], 1)


def _pearson_gap(a, b):
    tf = _tf()
    a, b = _flat(a), _flat(b)
    a = a - tf.reduce_mean(a, 1, keepdims=True)
    b = b - tf.reduce_mean(b, 1, keepdims=True)
    den = tf.sqrt(tf.reduce_sum(a * a, 1) * tf.reduce_sum(b * b, 1))
    ok = den > 0
    return 1.0 - tf.where(ok, tf.reduce_sum(a * b, 1) / tf.where(ok, den, 1.0), 0.0)


def _logsumexp(v):
    return _tf().reduce_logsumexp(_tf().cast(v["logits"], _tf().float64), 1)


PORTS.register("msp")(lambda v, ref: -output_features(v["logits"])[:, :1])
PORTS.register("max-logit")(lambda v, ref: -_tf().reduce_max(_tf().cast(v["logits"], _tf().float64), 1)[:, None])
PORTS.register("energy")(lambda v, ref: -_logsumexp(v)[:, None])
PORTS.register("msp-2s")(lambda v, ref: output_features(v["logits"])[:, :1])
PORTS.register("max-logit-2s")(lambda v, ref: _tf().reduce_max(_tf().cast(v["logits"], _tf().float64), 1)[:, None])
PORTS.register("energy-2s")(lambda v, ref: -_logsumexp(v)[:, None])
PORTS.register("outputs")(lambda v, ref: output_features(v["logits"]))
PORTS.register("gradcam-summary")(lambda v, ref: map_summary(v["gradcam"]))
PORTS.register("dispersion")(lambda v, ref: _tf().concat([dispersion(v[k]) for k in INPUT_GRADIENT_VIEWS], 1))
PORTS.register("clean-density")(lambda v, ref: _tf().concat([PORTS["gradcam-summary"](v, ref),
                                                            PORTS["dispersion"](v, ref)], 1))
PORTS.register("outputs+explanations")(lambda v, ref: _tf().concat(
    [output_features(v["logits"]), PORTS["gradcam-summary"](v, ref), PORTS["dispersion"](v, ref)], 1))
PORTS.register("map-consistency")(lambda v, ref: _pearson_gap(v["gradcam"], v["gradcam-squeezed"])[:, None])


@PORTS.register("feature-squeezing")
def _feature_squeezing(v, ref):
    tf = _tf()
    p = tf.nn.softmax(tf.cast(v["logits"], tf.float64))
    gaps = [tf.reduce_sum(tf.abs(p - tf.nn.softmax(tf.cast(z, tf.float64))), 1) for z in v["squeezed"].values()]
    return tf.reduce_max(tf.stack(gaps, 1), 1)[:, None]


@PORTS.register("class-map-survival")
def _class_map_survival(v, ref, width: float = 0.02):
    tf = _tf()
    cols = []
    for k in ("gradcam", "gradcam-runnerup"):
        m = _flat(v[k])
        soft = tf.reduce_mean(tf.sigmoid((m - 0.1) / width), 1)
        hard = tf.reduce_mean(tf.cast(m > 0.1, tf.float64), 1)
        cols += [soft + tf.stop_gradient(hard - soft), tf.reduce_mean(m, 1)]
    return tf.stack(cols, 1)


@PORTS.register("mahalanobis")
def _mahalanobis(v, ref):
    """Per block, the smallest class-conditional Mahalanobis distance of the pooled activations."""
    tf = _tf()
    feats = []
    for k, a in v["layers"].items():
        mu, prec = (tf.constant(np.asarray(p, np.float64)) for p in ref.layers[k])
        d = tf.cast(a, tf.float64)[:, None, :] - mu[None]
        feats.append(tf.reduce_min(tf.einsum("nkd,de,nke->nk", d, prec, d), axis=1))
    return tf.stack(feats, 1)


@PORTS.register("mahalanobis-lee")
def _mahalanobis_lee(v, ref):
    """:func:`advxai.detect.detectors.mahalanobis_lee`: each block's distance after its own pre-processing step
    (the step's gradient passed straight through)."""
    from .detectors import LEE_MAGNITUDE

    tf = _tf()
    x, net = v["image"], ref.lee.model
    names, acts = _pooled_layers(net)

    def dist(xx, k):
        mu, prec = (tf.constant(np.asarray(p, np.float64)) for p in ref.layers[names[k]])
        d = tf.cast(acts(xx)[k], tf.float64)[:, None, :] - mu[None]
        return tf.reduce_min(tf.einsum("nkd,de,nke->nk", d, prec, d), axis=1)

    cols = []
    for k in range(len(names)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            dk = dist(x, k)
        moved = tf.clip_by_value(x - LEE_MAGNITUDE * tf.sign(tape.gradient(dk, x)), 0.0, 1.0)
        cols.append(dist(x + tf.stop_gradient(moved - x), k))
    return tf.stack(cols, 1)


@PORTS.register("signature")
def _signature(v, ref):
    tf = _tf()
    last = tf.cast(list(v["layers"].values())[-1], tf.float64)
    phi = (last - ref.baseline)[:, :, None] * ref.head[None]
    return tf.reshape(phi, (tf.shape(last)[0], -1))


def _svm_anomaly(pipeline):
    """−decision_function of a StandardScaler + RBF OneClassSVM, in TensorFlow."""
    tf = _tf()
    sc, svm = pipeline[0], pipeline[-1]
    sv = tf.constant(np.float64(svm.support_vectors_))
    dual = tf.constant(np.float64(svm.dual_coef_[0]))
    gamma, rho = float(svm._gamma), float(svm.intercept_[0])

    def f(a):
        z = (tf.cast(a, tf.float64) - sc.mean_) / sc.scale_
        d2 = tf.reduce_sum(z * z, 1, keepdims=True) - 2 * z @ tf.transpose(sv) + tf.reduce_sum(sv * sv, 1)[None]
        return -(tf.linalg.matvec(tf.exp(-gamma * d2), dual) + rho)

    return f


def _probe(pipeline):
    """predict_proba of a StandardScaler + LogisticRegression, in TensorFlow."""
    tf = _tf()
    sc, lin = pipeline[0], pipeline[-1]

    def f(a):
        z = ((tf.cast(a, tf.float64) - sc.mean_) / sc.scale_) @ lin.coef_.T + lin.intercept_
        return tf.concat([1 - tf.sigmoid(z), tf.sigmoid(z)], 1) if lin.coef_.shape[0] == 1 else tf.nn.softmax(z)

    return f


@PORTS.register("nic")
def _nic(v, ref):
    """The value and provenance invariants (one-class SVMs on the blocks, and on pairs of linear probes)."""
    tf = _tf()
    m, acts = ref.nic, v["layers"]
    p = {k: _probe(m["probes"][k])(acts[k]) for k in m["probes"]}
    cols = [_svm_anomaly(m["value"][k].pipeline)(acts[k]) for k in acts]
    cols += [_svm_anomaly(fn.pipeline)(tf.concat([p[i], p[j]], 1)) for (i, j), fn in m["provenance"].items()]
    return tf.stack(cols, 1)


@PORTS.register("map-cnn")
def _map_cnn(v, ref):
    tf = _tf()
    s = tf.cast(v["saliency"], tf.float32)
    s = s / tf.maximum(tf.reduce_max(tf.reshape(s, (tf.shape(s)[0], -1)), 1), 1e-12)[:, None, None]
    return tf.concat([v["image"], v["gradcam"][..., None], s[..., None]], axis=-1)


# --- fits: the fitted detector's own parameters (score.parts of advxai.detect.fits) -----------------------------


@FITS_TF.register("score")
def _fit_score(parts, tau):
    return lambda f: f[:, 0]


@FITS_TF.register("logistic")
def _fit_logistic(parts, tau):
    sc, lin = parts["pipeline"][0], parts["pipeline"][-1]
    return lambda f: _tf().linalg.matvec((f - sc.mean_) / sc.scale_, lin.coef_[0]) + lin.intercept_[0]


@FITS_TF.register("clean-density")
def _fit_clean_density(parts, tau):
    sc, gauss = parts["scaler"], parts["gaussian"]

    def f(feats):
        z = (feats - sc.mean_) / sc.scale_ - gauss.location_
        return _tf().einsum("nd,de,ne->n", z, gauss.precision_, z)

    return f


@FITS_TF.register("two-sided")
def _fit_two_sided(parts, tau):
    """|2F(s) − 1| with F the clean empirical CDF; the step CDF's gradient through a logistic kernel of width
    ``tau`` (5 % of the clean scores' inter-quartile range unless given)."""
    tf = _tf()
    clean = np.asarray(parts["clean"], np.float64)
    width = tau or 0.05 * (np.quantile(clean, 0.75) - np.quantile(clean, 0.25) + 1e-6)
    ref_s = tf.constant(clean)

    def f(feats):
        s = feats[:, 0]
        below = tf.reduce_sum(tf.cast(ref_s[None] < s[:, None], tf.float64), 1)
        above = tf.reduce_sum(tf.cast(ref_s[None] <= s[:, None], tf.float64), 1)
        hard = (below + above) / (2.0 * len(clean))  # the real score's mid-rank CDF
        soft = tf.reduce_mean(tf.sigmoid((s[:, None] - ref_s[None]) / width), 1)
        return tf.abs(2 * (soft + tf.stop_gradient(hard - soft)) - 1)

    return f


@FITS_TF.register("cnn")
def _fit_cnn(parts, tau):
    def f(images):
        z = parts["net"](images, training=False)
        return _tf().cast(z[:, 1] - z[:, 0], _tf().float64)

    return f


# --- the port ---------------------------------------------------------------------------------------------------


def port(detector: str, model, score, ref, ig_steps: int = 8, tau: float | None = None, surrogate: bool = False):
    """The fitted detector's score as a compiled TensorFlow function of the image: the real score's value, its
    gradient by :func:`backward`'s rule (``ig_steps`` as the detection run computes integrated gradients).
    ``surrogate``: for a detector read through the softplus twin, the twin's own score, value and gradient (what
    the attack's steps follow: a third of the cost, the exact value being an extra pass per step; its hinge is
    then set in the twin's units and the attack is still judged by the real detector)."""
    tf = _tf()
    from .detectors import DETECTORS

    spec = DETECTORS[detector]
    feats, fit = PORTS[detector], FITS_TF[spec.fit](score.parts, tau)
    twin = bool(set(spec.views) & set(INPUT_GRADIENT_VIEWS))
    nets = ([] if twin and surrogate else [model]) + ([smooth_twin(model)] if twin else [])
    cams = [gradcam_fn(n) if any(v.startswith("gradcam") for v in spec.views) else None for n in nets]

    def value(net, cam, x, targets, second):
        c = {"targets": targets, "second": second, "ig_steps": ig_steps, "cam": cam}
        if {"saliency", "gxi"} <= set(spec.views):  # one input gradient serves both
            c["gradient"] = _input_gradient(net, x, targets)
        return fit(feats({k: VIEWS_TF[k](net, x, c) for k in spec.views}, ref))

    def f(x):
        z = tf.stop_gradient(model(x, training=False))
        ranked = tf.argsort(z, axis=1, direction="DESCENDING", stable=True)
        targets = tf.cast(ranked[:, 0], tf.int32)
        second = tf.cast(ranked[:, 1], tf.int32) if z.shape[1] > 1 else targets
        out = [value(n, c, x, targets, second) for n, c in zip(nets, cams, strict=True)]
        if len(out) == 1:
            return tf.cast(out[0], tf.float32)
        exact, smooth = out
        return tf.cast(smooth + tf.stop_gradient(exact - smooth), tf.float32)

    return tf.function(f, reduce_retracing=True)
