"""Detector registry: name -> which views of an input it reads, how it turns them into per-image features, and how
it is fitted. Each entry's docstring cites its source. Scores: higher = more likely adversarial.

Groups, by what a detector reads (the ``family`` of each entry) — the book's question is answered for the
explanation-map group, the others are its baselines:

* ``outputs`` — the model's outputs only: max softmax probability (Hendrycks & Gimpel 2017), max logit
  (Hendrycks et al. 2022), energy (Liu et al. 2020), each also read in both tails of its clean distribution
  (``-2s``: confident attacks are *too* confident), and a logistic regression on confidence, margin, entropy;
* ``deep features`` — activations: kernel density + Bayesian uncertainty (Feinman et al. 2017), LID (Ma et al.
  2018; ``lid-ref`` as their reference code computes it), Mahalanobis (Lee et al. 2018; ``mahalanobis-lee`` with
  their input pre-processing), ART's ``BinaryInputDetector`` / ``BinaryActivationDetector``, two detectors
  fitted on clean images only — ART's ``SubsetScanningDetector`` (Speakman et al. 2018) and an NIC-style
  invariant checker (Ma et al. 2019) — and attribution signatures of the penultimate units (Fidel et al. 2020):
  through the linear logits layer they are W(h − h̄), a linear map of activations, not a map
  of the image;
* ``explanation maps`` — detectors whose input is a saliency map of the image: Grad-CAM summary features, a small
  CNN on the stacked [image, Grad-CAM, saliency], attribution dispersion (ML-LOO, Yang et al. 2020) and a density
  fitted on clean explanations only, map consistency under a median filter, and whether the map of the runner-up
  class (the clean class, after a successful attack on a two-class model) survives — the last three fitted on
  clean images only;
* ``combinations`` — outputs and explanation maps together.

The reference statistics of the feature-space detectors (class means, covariance, kernel-density and LID
reference sets) come from clean *training* images (:func:`reference`), never from the images under test.
The formulas (:func:`kernel_density`, :func:`bayesian_uncertainty`, :func:`lid`, :func:`mahalanobis`) are
plain NumPy, tested against hand-computed values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from ..registry import Registry

FAMILIES = ("outputs", "deep features", "explanation maps", "combinations")
MAP_GROUP = "explanation maps"  # the group the book's question is about
OTHER_GROUPS = ("outputs", "deep features")  # what it is measured against (a combination reads maps too)


@dataclass(frozen=True)
class DetectorSpec:
    features: Callable  # (views, reference) -> (N, d) per-image features (or images for the CNN detectors)
    views: tuple[str, ...]  # what it reads of an input (:mod:`advxai.detect.views`)
    family: str
    fit: str = "logistic"  # how it is fitted (:data:`FITS`)

    @property
    def explanation(self) -> bool:
        """Whether it reads explanation maps of the image (the group the book's question is about)."""
        return self.family == MAP_GROUP


DETECTORS: Registry[DetectorSpec] = Registry("detector")


def register(name: str, views, family: str, fit: str = "logistic"):
    def deco(fn):
        DETECTORS.register(name)(DetectorSpec(fn, tuple(views), family, fit))
        return fn

    return deco


# --- formulas --------------------------------------------------------------------------------------------


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Free energy E(x) = −T log Σ_k exp(z_k / T) (Liu et al. 2020): high on inputs unlike the training data."""
    from scipy.special import logsumexp

    return -temperature * logsumexp(np.asarray(logits, np.float64) / temperature, axis=1)


def fit_gaussians(feats: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class means μ_c and the tied covariance Σ = (1/N) Σ_c Σ_{i∈c} (f_i − μ_c)(f_i − μ_c)ᵀ (Lee et al. 2018);
    returns (means (K, d), precision Σ⁺ (d, d))."""
    f = np.asarray(feats, np.float64)
    classes = np.unique(y)
    means = np.stack([f[y == c].mean(0) for c in classes])
    centred = f - means[np.searchsorted(classes, y)]
    return means, np.linalg.pinv(centred.T @ centred / len(f), hermitian=True)


def mahalanobis(feats: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c): the negative of Lee et al.'s confidence score M(x) (no input pre-processing)."""
    d = np.asarray(feats, np.float64)[:, None, :] - means[None]
    return np.einsum("nkd,de,nke->nk", d, precision, d).min(1)


def kernel_density(feats: np.ndarray, reference: np.ndarray, bandwidth: float) -> np.ndarray:
    """KD(x) = (1/|X_t|) Σ_{x_i ∈ X_t} exp(−‖f(x) − f(x_i)‖² / σ²) over the reference features of one class
    (Feinman et al. 2017, their Gaussian kernel with σ the bandwidth)."""
    d2 = ((np.asarray(feats, np.float64)[:, None, :] - np.asarray(reference, np.float64)[None]) ** 2).sum(-1)
    return np.exp(-d2 / bandwidth**2).mean(1)


def bayesian_uncertainty(samples: np.ndarray) -> np.ndarray:
    """U(x) = (1/T) Σ_t ŷ_tᵀ ŷ_t − (1/T Σ_t ŷ_t)ᵀ (1/T Σ_t ŷ_t) over T dropout samples (T, N, K) (Feinman et al.)."""
    s = np.asarray(samples, np.float64)
    mean = s.mean(0)
    return (s * s).sum(-1).mean(0) - (mean * mean).sum(-1)


def lid(feats: np.ndarray, reference: np.ndarray, k: int = 20, drop_nearest: bool = False) -> np.ndarray:
    """Maximum-likelihood LID (Ma et al. 2018, eq. 3): −((1/k) Σ_{i=1..k} log(r_i / r_k))⁻¹ with r_1 ≤ … ≤ r_k the
    distances to the k nearest reference points (a point's zero distance to itself is skipped).

    ``drop_nearest``: as Ma et al.'s reference code (``mle_batch``) computes it, the nearest neighbour is dropped
    for every query — right for a clean image of the reference batch (its nearest point is itself), but for any
    other query (every adversarial image) it drops a real neighbour, which raises LID (15–25 % on random data) and
    favours detection. The faithful switch, reported apart as ``lid-ref``."""
    d = np.sqrt(((np.asarray(feats, np.float64)[:, None, :] - np.asarray(reference, np.float64)[None]) ** 2).sum(-1))
    if not drop_nearest:
        d = np.where(d <= 1e-12, np.inf, d)
    if d.shape[1] < k + drop_nearest:
        raise ParameterError(f"LID needs at least k = {k} reference points, got {d.shape[1]}")
    r = np.sort(d, axis=1)[:, int(drop_nearest):k + int(drop_nearest)]
    return -1.0 / np.mean(np.log(r / r[:, -1:] + 1e-12), axis=1)


def map_summary(maps: np.ndarray) -> np.ndarray:
    """Five summary features of a map h, with q = h / Σh: mean and s.d. of h, entropy −Σ q log q, mass of the
    top 10 % pixels, spatial spread (s.d. of pixel coordinates weighted by q, in image sides)."""
    m = np.asarray(maps, np.float64).reshape(len(maps), -1)
    mass = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
    side = np.asarray(maps).shape[1]
    yy, xx = np.divmod(np.arange(m.shape[1]), side)
    cy, cx = mass @ yy, mass @ xx
    spread = np.sqrt(np.maximum(mass @ (yy**2) - cy**2 + mass @ (xx**2) - cx**2, 0)) / side
    k = max(1, m.shape[1] // 10)
    return np.column_stack([m.mean(1), m.std(1), -(mass * np.log(np.clip(mass, 1e-12, 1))).sum(1),
                            np.sort(mass, axis=1)[:, -k:].sum(1), spread])


def dispersion(attributions: np.ndarray) -> np.ndarray:
    """Dispersion of one attribution map per image (ML-LOO, Yang et al. 2020, use the inter-quartile range of
    leave-one-out attributions; here cheap gradient attributions): log mean |a|, coefficient of variation, IQR
    over the mean, max over the mean, top-10 % mass and normalised entropy of |a|."""
    a = np.abs(np.asarray(attributions, np.float64).reshape(len(attributions), -1))
    mean = np.maximum(a.mean(1), 1e-12)
    q25, q75 = np.percentile(a, [25, 75], axis=1)
    p = a / np.maximum(a.sum(1, keepdims=True), 1e-12)
    k = max(1, a.shape[1] // 10)
    return np.column_stack([np.log(mean), a.std(1) / mean, (q75 - q25) / mean, a.max(1) / mean,
                            np.sort(p, axis=1)[:, -k:].sum(1),
                            -(p * np.log(np.clip(p, 1e-12, 1))).sum(1) / np.log(a.shape[1])])


def squeeze_distance(logits: np.ndarray, squeezed: dict) -> np.ndarray:
    """Feature squeezing's score (Xu et al. 2018): max over squeezers of ‖p(x) − p(squeeze(x))‖₁, p the softmax."""
    from ..measure.metrics import softmax

    p = softmax(np.asarray(logits, np.float64))
    return np.max([np.abs(p - softmax(np.asarray(z, np.float64))).sum(1) for z in squeezed.values()], axis=0)


def map_inconsistency(maps: np.ndarray, other: np.ndarray) -> np.ndarray:
    """1 − Pearson correlation of two maps of each image (0: same map up to scale and offset; a blank map counts as
    uncorrelated): how far an explanation moves when the image is squeezed."""
    a = np.asarray(maps, np.float64).reshape(len(maps), -1)
    b = np.asarray(other, np.float64).reshape(len(other), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return 1.0 - np.where(denom > 0, (a * b).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def output_features(logits: np.ndarray) -> np.ndarray:
    """Confidence max_c p_c, margin z_(1) − z_(2), entropy −Σ p log p."""
    from ..measure.metrics import softmax

    z = np.asarray(logits, np.float64)
    p = softmax(z)
    top2 = np.sort(z, axis=1)[:, -2:]
    return np.column_stack([p.max(1), top2[:, 1] - top2[:, 0], -(p * np.log(np.clip(p, 1e-12, 1))).sum(1)])


# --- reference statistics from clean training images -----------------------------------------------------


@dataclass
class Reference:
    layers: dict  # layer -> (means, precision) of its pooled activations
    kd: dict  # class -> penultimate features of reference images of that class
    bandwidth: float
    lid: dict  # layer -> activations of a reference batch
    baseline: np.ndarray  # mean penultimate features (the SHAP baseline of the linear head)
    head: np.ndarray  # logits-layer weights (d, K)
    lid_k: int = 20
    nic: dict = field(default_factory=dict)  # the invariant checker's one-class models (:func:`nic_models`)
    scanner: object = None  # ART's SubsetScanningDetector with its clean background (:func:`subset_scanner`)
    lee: object = None  # images -> Lee et al.'s pre-processed Mahalanobis features (:func:`lee_features`)


def reference(model, x_train: np.ndarray, y_train: np.ndarray, n: int = 1000, lid_batch: int = 100,
              lid_k: int = 20, seed: int = 0) -> Reference:
    """Statistics of ``n`` clean training images (seeded draw): Gaussians per layer, KD reference features per
    class with the bandwidth σ = median distance between reference features (a scale-free choice where Feinman
    et al. tuned σ per dataset), LID reference batch of ``lid_batch`` images (Ma et al. use mini-batches of 100)."""
    from . import views as V

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), min(n, len(x_train)), replace=False)
    x, y = x_train[idx], np.asarray(y_train)[idx]
    acts = V.layers(model, x, {})
    last = acts[list(acts)[-1]]
    d = np.sqrt(((last[:200, None] - last[None, :200]) ** 2).sum(-1))
    layers = {k: fit_gaussians(v, y) for k, v in acts.items()}
    return Reference(
        layers=layers, lee=lee_features(model, layers),
        kd={int(c): last[y == c] for c in np.unique(y)}, bandwidth=float(np.median(d[d > 0])),
        lid={k: v[:lid_batch] for k, v in acts.items()}, baseline=last.mean(0),
        head=np.asarray(model.get_layer("logits").get_weights()[0], np.float64), lid_k=lid_k,
        nic=nic_models(acts, V.logits(model, x, {}).argmax(1), seed), scanner=subset_scanner(model, x[:500]))


def _one_class(x: np.ndarray, seed: int):
    """A one-class SVM (RBF, ν = 0.1) on standardised rows; returns anomaly = −decision function."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    svm = make_pipeline(StandardScaler(), OneClassSVM(nu=0.1, gamma="scale")).fit(x)
    score = lambda xx: -svm.decision_function(np.asarray(xx, np.float64))  # noqa: E731
    score.pipeline = svm  # read by the adaptive attack's TensorFlow port
    return score


def nic_models(acts: dict, pred: np.ndarray, seed: int = 0) -> dict:
    """NIC's invariants (Ma et al. 2019, "NIC: detecting adversarial samples with neural network invariant
    checking"), fitted on clean training images only: a *value* invariant per block (a one-class SVM on its
    pooled activations) and a *provenance* invariant per pair of consecutive blocks (a one-class SVM on the class
    probabilities that a linear probe of each block assigns; the probes learn the model's own predictions)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = list(acts)
    value = {k: _one_class(acts[k], seed) for k in names}
    if len(np.unique(pred)) < 2:  # a model that predicts one class: no provenance to learn, values only
        return {"value": value, "probes": {}, "provenance": {}}
    probes = {k: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(acts[k], pred) for k in names}
    probs = {k: probes[k].predict_proba(acts[k]) for k in names}
    pairs = list(zip(names[:-1], names[1:], strict=True))
    return {"value": value, "probes": probes,
            "provenance": {p: _one_class(np.hstack([probs[p[0]], probs[p[1]]]), seed) for p in pairs}}


def subset_scanner(model, background: np.ndarray):
    """ART's ``SubsetScanningDetector`` on the last conv block, its null model from clean training images."""
    import keras
    from art.defences.detector.evasion import SubsetScanningDetector
    from art.estimators.classification import TensorFlowV2Classifier

    from ..models import last_conv_layer

    # ART reads activations of Sequential models only: the network up to the layer as one Sequential step
    trunk = keras.Model(model.input, model.get_layer(last_conv_layer(model)).output, name="trunk")
    seq = keras.Sequential([keras.Input(model.input.shape[1:]), trunk])
    clf = TensorFlowV2Classifier(seq, nb_classes=2, input_shape=tuple(model.input.shape[1:]))
    return SubsetScanningDetector(clf, np.asarray(background, np.float32), "trunk", verbose=False)


# --- the registry ----------------------------------------------------------------------------------------


@register("msp", ["logits"], "outputs", fit="score")
def msp(v, ref):
    """Maximum softmax probability, negated (Hendrycks & Gimpel 2017): low confidence = suspicious."""
    return -output_features(v["logits"])[:, :1]


@register("max-logit", ["logits"], "outputs", fit="score")
def max_logit(v, ref):
    """Maximum logit, negated (Hendrycks et al. 2022, "Scaling out-of-distribution detection")."""
    return -np.asarray(v["logits"], np.float64).max(1, keepdims=True)


@register("energy", ["logits"], "outputs", fit="score")
def energy_score(v, ref):
    """Energy score E(x) = −log Σ exp(z_k) (Liu et al. 2020, "Energy-based out-of-distribution detection")."""
    return energy(v["logits"])[:, None]


@register("msp-2s", ["logits"], "outputs", fit="two-sided")
def msp_two_sided(v, ref):
    """MSP read in both tails of its distribution on clean images (fitted on clean images only): an attack that
    makes the model *more* confident than clean images ever are is as suspicious as one that makes it unsure."""
    return output_features(v["logits"])[:, :1]


@register("max-logit-2s", ["logits"], "outputs", fit="two-sided")
def max_logit_two_sided(v, ref):
    """Max logit read in both tails of its clean distribution (clean images only)."""
    return np.asarray(v["logits"], np.float64).max(1, keepdims=True)


@register("energy-2s", ["logits"], "outputs", fit="two-sided")
def energy_two_sided(v, ref):
    """Energy read in both tails of its clean distribution (clean images only)."""
    return energy(v["logits"])[:, None]


@register("feature-squeezing", ["logits", "squeezed"], "outputs", fit="score")
def feature_squeezing(v, ref):
    """Feature squeezing (Xu et al. 2018, "Feature squeezing: detecting adversarial examples in deep neural
    networks"): the largest L1 change of the softmax when the image is squeezed (ART's bit-depth reduction and 2×2
    median filter, :mod:`advxai.detect.views`). Nothing is fitted; attack-agnostic."""
    return squeeze_distance(v["logits"], v["squeezed"])[:, None]


@register("outputs", ["logits"], "outputs")
def outputs(v, ref):
    """Logistic regression on confidence, margin and entropy (the book's earlier outputs-only baseline)."""
    return output_features(v["logits"])


@register("kd-bu", ["layers", "mc"], "deep features")
def kd_bu(v, ref):
    """Kernel density of the penultimate features among training images of the predicted class, and Bayesian
    uncertainty from MC dropout (Feinman et al. 2017, "Detecting adversarial samples from artifacts"); logistic
    regression on both, as theirs. The compact CNN has dropout before its logits: its own rate is used."""
    last = v["layers"][list(v["layers"])[-1]]
    pred = np.asarray(v["logits"]).argmax(1)
    kd = np.zeros(len(last))
    for c, feats in ref.kd.items():
        sel = pred == c
        if sel.any():
            kd[sel] = kernel_density(last[sel], feats, ref.bandwidth)
    return np.column_stack([np.log(kd + 1e-300), bayesian_uncertainty(v["mc"])])


@register("lid", ["layers"], "deep features")
def lid_features(v, ref):
    """Local intrinsic dimensionality of each block's activations w.r.t. a batch of clean training images
    (Ma et al. 2018, "Characterizing adversarial subspaces using LID"), k = 20; logistic regression."""
    return np.column_stack([lid(v["layers"][k], ref.lid[k], ref.lid_k) for k in ref.lid])


@register("lid-ref", ["layers"], "deep features")
def lid_reference_code(v, ref):
    """LID as Ma et al.'s reference code (``mle_batch``) computes it: the nearest reference point is dropped for
    every query, also for adversarial images that are not in the reference batch (:func:`lid`,
    ``drop_nearest``). Reported apart from ``lid`` (eq. 3 of the paper)."""
    return np.column_stack([lid(v["layers"][k], ref.lid[k], ref.lid_k, drop_nearest=True) for k in ref.lid])


@register("mahalanobis", ["layers"], "deep features")
def mahalanobis_features(v, ref):
    """Class-conditional Gaussians with tied covariance on each block's pooled activations; per layer the
    smallest Mahalanobis distance, combined by logistic regression (Lee et al. 2018, "A simple unified
    framework for detecting out-of-distribution samples and adversarial attacks"; without their input
    pre-processing: a variant; ``mahalanobis-lee`` adds it)."""
    return np.column_stack([mahalanobis(v["layers"][k], *ref.layers[k]) for k in ref.layers])


LEE_MAGNITUDE = 0.002  # Lee et al. pick ε from {0, 0.0005, …, 0.01} on validation adversarials; here fixed mid-grid


@register("mahalanobis-lee", ["image"], "deep features")
def mahalanobis_lee(v, ref):
    """Lee et al. 2018 with their input pre-processing (eq. 4): per block l, the image moved against the gradient
    of its smallest Mahalanobis distance M_l, x̂_l = clip(x − ε·sign ∇ₓ M_l(x)) (it raises the confidence score of
    clean images more than of adversarial ones), and the feature is M_l(x̂_l) (:func:`lee_features`); the feature
    ensemble is their logistic regression over layers, fitted on the training folds (they fit it on validation
    adversarials). ε = :data:`LEE_MAGNITUDE` on the [0, 1] pixel scale: no attack is held apart to tune it."""
    return ref.lee(np.asarray(v["image"], np.float32))


def lee_features(model, gaussians: dict, magnitude: float = LEE_MAGNITUDE):
    """images -> (N, blocks) M_l(x̂_l) of :func:`mahalanobis_lee`, ``gaussians``: block -> (class means, precision)
    of :func:`fit_gaussians`; compiled, in batches."""
    import tensorflow as tf

    from ..explain.gradients import batched
    from .differentiable import _pooled_layers

    names, acts = _pooled_layers(model)
    gauss = [tuple(tf.constant(np.asarray(p, np.float32)) for p in gaussians[k]) for k in names]

    def dist(x):
        out = []
        for a, (mu, prec) in zip(acts(x), gauss, strict=True):
            d = a[:, None, :] - mu[None]
            out.append(tf.reduce_min(tf.einsum("nkd,de,nke->nk", d, prec, d), axis=1))
        return tf.stack(out, 1)

    @tf.function(reduce_retracing=True)
    def features(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            d = tf.unstack(dist(x), axis=1)  # per block, inside the tape: its gradient alone
        moved = [tf.clip_by_value(x - magnitude * tf.sign(tape.gradient(dk, x)), 0.0, 1.0) for dk in d]
        return tf.stack([dist(xk)[:, k] for k, xk in enumerate(moved)], 1)

    def score(x):
        return batched(features, np.asarray(x, np.float32)).astype(np.float64)

    score.model = model  # read by the adaptive attack's TensorFlow port
    return score


@register("art-input", ["image"], "deep features", fit="art-input")
def art_input(v, ref):
    """ART's ``BinaryInputDetector`` (Al-Dujaili et al. / Metzen et al. 2017 style): a binary CNN on the raw image."""
    return np.asarray(v["image"], np.float32)


@register("art-activation", ["image"], "deep features", fit="art-activation")
def art_activation(v, ref):
    """ART's ``BinaryActivationDetector`` (Metzen et al. 2017, "On detecting adversarial perturbations"): a binary
    classifier on the activations of the classifier's last conv block."""
    return np.asarray(v["image"], np.float32)


@register("subset-scanning", ["image"], "deep features", fit="score")
def subset_scanning(v, ref):
    """ART's ``SubsetScanningDetector`` (Speakman et al. 2018, "Subset scanning over neural network activations";
    adversarial use: Cintas et al. 2020): the Berk–Jones score of the most anomalous subset of the last conv block's
    activations, each activation's p-value taken against clean training images. Nothing is fitted on the folds;
    attack-agnostic."""
    report, _ = ref.scanner.detect(np.asarray(v["image"], np.float32))
    return np.asarray(report["scores"], np.float64)[:, None]


@register("nic", ["layers", "logits"], "deep features", fit="clean-density")
def nic(v, ref):
    """NIC-style invariant checking (Ma et al. 2019): the value and provenance invariants' anomaly scores
    (:func:`nic_models`, fitted on clean training images), combined by a Gaussian fitted on the clean images of the
    training folds (NIC combines them with one more one-class model)."""
    acts = v["layers"]
    m = ref.nic
    probs = {k: m["probes"][k].predict_proba(acts[k]) for k in m["probes"]}
    value = [m["value"][k](acts[k]) for k in acts]
    prov = [f(np.hstack([probs[a], probs[b]])) for (a, b), f in m["provenance"].items()]
    return np.column_stack(value + prov)


@register("gradcam-summary", ["gradcam"], "explanation maps")
def gradcam_summary(v, ref):
    """The book's earlier explanation detector: five summary features of the Grad-CAM map, logistic regression."""
    return map_summary(v["gradcam"])


@register("map-cnn", ["image", "gradcam", "saliency"], "explanation maps", fit="cnn")
def map_cnn(v, ref):
    """A small CNN on the stacked [image, Grad-CAM, saliency] (saliency scaled to [0, 1] per image): a detector
    that learns from the explanation maps themselves (cf. Watson & Al Moubayed 2020, who classify SHAP maps)."""
    s = np.asarray(v["saliency"], np.float32)
    s = s / np.maximum(s.reshape(len(s), -1).max(1), 1e-12)[:, None, None]
    return np.concatenate([v["image"], v["gradcam"][..., None], s[..., None]], axis=-1).astype(np.float32)


@register("signature", ["layers"], "deep features")
def signature(v, ref):
    """Attribution signature (Fidel et al. 2020, "When explainability meets adversarial learning"): SHAP values of
    the penultimate units for every class. For the linear logits layer they are exact: φ_jk = W_jk (h_j − h̄_j)
    with h̄ the mean clean training features (the SHAP baseline). Logistic regression on the signature. A linear
    map of the penultimate activations, so a deep-feature detector: it reads no map of the image."""
    last = v["layers"][list(v["layers"])[-1]]
    phi = (last - ref.baseline)[:, :, None] * ref.head[None]
    return phi.reshape(len(last), -1)


@register("dispersion", ["saliency", "gxi", "ig"], "explanation maps")
def attribution_dispersion(v, ref):
    """ML-LOO-style dispersion (Yang et al. 2020, "ML-LOO: detecting adversarial examples with feature
    attribution") of three cheap attributions (saliency, gradient × input, integrated gradients); logistic
    regression."""
    return np.column_stack([dispersion(v[k]) for k in ("saliency", "gxi", "ig")])


@register("clean-density", ["gradcam", "saliency", "gxi", "ig"], "explanation maps", fit="clean-density")
def clean_density(v, ref):
    """Explanation features (Grad-CAM summary + attribution dispersion) scored by their Mahalanobis distance to
    the clean explanations of the training folds (a Ledoit–Wolf Gaussian fitted on clean images only): an
    anomaly score in the spirit of Watson & Al Moubayed 2020. It never sees an attack, so no attack can teach
    it the wrong direction."""
    return np.column_stack([gradcam_summary(v, ref), attribution_dispersion(v, ref)])


@register("map-consistency", ["gradcam", "gradcam-squeezed"], "explanation maps", fit="score")
def map_consistency(v, ref):
    """Feature squeezing applied to the explanation: 1 − correlation between the Grad-CAM of the image and that of
    its 2×2 median-filtered version, both for the class predicted on the image. A clean image's map should survive
    the filter; an adversarial perturbation is high-frequency and the filter removes much of it. Nothing is fitted
    (attack-agnostic); after Xu et al. 2018, on the map a clinician is shown instead of the output."""
    return map_inconsistency(v["gradcam"], v["gradcam-squeezed"])[:, None]


@register("class-map-survival", ["gradcam", "gradcam-runnerup"], "explanation maps", fit="clean-density")
def class_map_survival(v, ref):
    """Does the Grad-CAM of the runner-up class survive? In the RADAR-MIX runs the attacked image's map for the
    clean class was blank for most images fooled by BIM or PGD: after a successful attack on a two-class model the
    runner-up class *is* the clean class. Features: the share of each map (predicted, runner-up) that is lit (> 0.1)
    and its mean, scored by their Mahalanobis distance to the clean images' (fitted on clean images only)."""
    out = []
    for k in ("gradcam", "gradcam-runnerup"):
        m = np.asarray(v[k], np.float64).reshape(len(v[k]), -1)
        out += [(m > 0.1).mean(1), m.mean(1)]
    return np.column_stack(out)


@register("outputs+explanations", ["logits", "gradcam", "saliency", "gxi", "ig"], "combinations")
def outputs_and_explanations(v, ref):
    """Output features + Grad-CAM summary + attribution dispersion, one logistic regression."""
    return np.column_stack([output_features(v["logits"]), gradcam_summary(v, ref), attribution_dispersion(v, ref)])


def views_for(names) -> list[str]:
    """Every view the named detectors read, in a fixed order."""
    return list(dict.fromkeys(v for n in names for v in DETECTORS[n].views))
