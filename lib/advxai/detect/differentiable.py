"""The detectors' scores as TensorFlow functions of the image, so that an adaptive attack can follow their gradient
end to end (Carlini & Wagner 2017; Tramèr et al. 2020: attack the real defence, not a stand-in).

Each port recomputes the registered detector from the image with the fitted detector's own parameters (scaler,
logistic weights, Gaussians, one-class SVMs, the clean score distribution): the view (logits, pooled activations,
Grad-CAM of the image and of its median-filtered copy), the detector's features, and its fit. Where the real score
is a step function of the image it is smoothed for the gradient only (the two-sided scores' empirical CDF: a
logistic kernel of width ``tau``, a BPDA-style substitute, Athalye et al. 2018); the attack is always *judged* by
the real detector in NumPy. ``tests/test_detect_real.py`` checks each port against the real score on real images.

Registry: detector name -> ``port(model, score, ref) -> f(x) -> (N,) score`` where ``score`` is the fitted score
function of :func:`advxai.detect.fits.fit` (its ``parts``) and ``ref`` the detectors' :class:`Reference`.
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry

PORTS: Registry = Registry("differentiable detector")


def _tf():
    import tensorflow as tf

    return tf


def median_2x2(x):
    """ART's ``SpatialSmoothing(window_size=2)`` (SciPy's ``median_filter``, mode ``reflect``): the window of a pixel
    is the pixel and its upper and left neighbours (edge repeated), and the median of four values is the third
    smallest (SciPy's rank ⌊4/2⌋). Differentiable almost everywhere (the gradient goes to the selected pixel)."""
    tf = _tf()
    p = tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]], mode="SYMMETRIC")
    h, w = x.shape[1], x.shape[2]
    four = tf.stack([p[:, :h, :w], p[:, :h, 1:], p[:, 1:, :w], p[:, 1:, 1:]], axis=-1)
    return tf.sort(four, axis=-1)[..., 2]


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


def _pearson_gap(a, b):
    tf = _tf()
    a = tf.reshape(a, (tf.shape(a)[0], -1))
    b = tf.reshape(b, (tf.shape(b)[0], -1))
    a = a - tf.reduce_mean(a, 1, keepdims=True)
    b = b - tf.reduce_mean(b, 1, keepdims=True)
    den = tf.sqrt(tf.reduce_sum(a * a, 1) * tf.reduce_sum(b * b, 1))
    return 1.0 - tf.where(den > 0, tf.reduce_sum(a * b, 1) / tf.where(den > 0, den, 1.0), 0.0)


@PORTS.register("map-consistency")
def _map_consistency(model, score, ref, tau=None):
    """1 − corr(Grad-CAM(x), Grad-CAM(median(x))), both for the class predicted on x."""
    tf = _tf()
    cam = gradcam_fn(model)

    def f(x):
        t = tf.stop_gradient(tf.argmax(model(x, training=False), 1, output_type=tf.int32))
        return _pearson_gap(cam(x, t), cam(median_2x2(x), t))

    return f


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


def _linear_pipeline(pipeline):
    """A scikit-learn StandardScaler + linear model as (mean, scale, coef, intercept) in float32."""
    sc, lin = pipeline[0], pipeline[-1]
    return (np.float32(sc.mean_), np.float32(sc.scale_), np.float32(lin.coef_), np.float32(lin.intercept_))


@PORTS.register("mahalanobis")
def _mahalanobis(model, score, ref, tau=None):
    """Per block, the smallest class-conditional Mahalanobis distance of the pooled activations; the fitted
    logistic regression's decision function on them."""
    tf = _tf()
    names, acts = _pooled_layers(model)
    gauss = [(tf.constant(np.float32(ref.layers[k][0])), tf.constant(np.float32(ref.layers[k][1]))) for k in names]
    mean, scale, coef, icpt = _linear_pipeline(score.parts["pipeline"])

    def f(x):
        feats = []
        for a, (mu, prec) in zip(acts(x), gauss, strict=True):
            d = a[:, None, :] - mu[None]
            feats.append(tf.reduce_min(tf.einsum("nkd,de,nke->nk", d, prec, d), axis=1))
        z = (tf.stack(feats, 1) - mean) / scale
        return tf.linalg.matvec(z, coef[0]) + icpt[0]

    return f


def _svm_anomaly(pipeline):
    """−decision_function of a StandardScaler + RBF OneClassSVM, in TensorFlow."""
    tf = _tf()
    sc, svm = pipeline[0], pipeline[-1]
    sv = tf.constant(np.float32(svm.support_vectors_))
    dual = tf.constant(np.float32(svm.dual_coef_[0]))
    gamma, rho = np.float32(svm._gamma), np.float32(svm.intercept_[0])
    mean, scale = np.float32(sc.mean_), np.float32(sc.scale_)

    def f(v):
        z = (v - mean) / scale
        d2 = tf.reduce_sum(z * z, 1, keepdims=True) - 2 * z @ tf.transpose(sv) + tf.reduce_sum(sv * sv, 1)[None]
        return -(tf.linalg.matvec(tf.exp(-gamma * d2), dual) + rho)

    return f


def _probe(pipeline):
    """predict_proba of a StandardScaler + LogisticRegression, in TensorFlow."""
    tf = _tf()
    mean, scale, coef, icpt = _linear_pipeline(pipeline)

    def f(v):
        z = ((v - mean) / scale) @ coef.T + icpt
        return tf.concat([1 - tf.sigmoid(z), tf.sigmoid(z)], 1) if coef.shape[0] == 1 else tf.nn.softmax(z)

    return f


@PORTS.register("nic")
def _nic(model, score, ref, tau=None):
    """The value and provenance invariants (one-class SVMs, linear probes) and the clean Gaussian over them."""
    tf = _tf()
    names, acts = _pooled_layers(model)
    m = ref.nic
    value = [_svm_anomaly(m["value"][k].pipeline) for k in names]
    probes = {k: _probe(m["probes"][k]) for k in m["probes"]}
    prov = [(a, b, _svm_anomaly(fn.pipeline)) for (a, b), fn in m["provenance"].items()]
    sc, gauss = score.parts["scaler"], score.parts["gaussian"]
    mean, scale = np.float32(sc.mean_), np.float32(sc.scale_)
    loc, prec = tf.constant(np.float32(gauss.location_)), tf.constant(np.float32(gauss.precision_))

    def f(x):
        a = dict(zip(names, acts(x), strict=True))
        p = {k: fn(a[k]) for k, fn in probes.items()}
        cols = [fn(a[k]) for k, fn in zip(names, value, strict=True)]
        cols += [fn(tf.concat([p[i], p[j]], 1)) for i, j, fn in prov]
        z = (tf.stack(cols, 1) - mean) / scale - loc
        return tf.einsum("nd,de,ne->n", z, prec, z)

    return f


def _two_sided(feature):
    """|2F(s) − 1| with F the clean empirical CDF smoothed by a logistic kernel of width ``tau`` (for the
    gradient only; the real score uses the step CDF)."""

    def port(model, score, ref, tau=None):
        tf = _tf()
        clean = np.asarray(score.parts["clean"], np.float32)
        width = np.float32(tau or 0.05 * (np.quantile(clean, 0.75) - np.quantile(clean, 0.25) + 1e-6))
        ref_s = tf.constant(clean)

        def f(x):
            s = feature(model(x, training=False))
            cdf = tf.reduce_mean(tf.sigmoid((s[:, None] - ref_s[None]) / width), 1)
            return tf.abs(2 * cdf - 1)

        return f

    return port


PORTS.register("msp-2s")(_two_sided(lambda z: _tf().reduce_max(_tf().nn.softmax(z), 1)))
PORTS.register("max-logit-2s")(_two_sided(lambda z: _tf().reduce_max(z, 1)))
PORTS.register("energy-2s")(_two_sided(lambda z: -_tf().reduce_logsumexp(z, 1)))


def port(detector: str, model, score, ref, tau: float | None = None):
    """The TensorFlow score of a fitted detector (:data:`PORTS`), compiled."""
    return _tf().function(PORTS[detector](model, score, ref, tau), reduce_retracing=True)
