"""How a detector is fitted on a training fold: name -> ``fit(X, is_adv, ctx) -> score(X)`` (higher = adversarial).

* ``score`` — nothing to fit: the single feature is the score (MSP, max logit, energy);
* ``logistic`` — standardised, class-balanced logistic regression (Feinman, Ma, Lee and ML-LOO all combine their
  features this way);
* ``clean-density`` — a Ledoit–Wolf Gaussian on the *clean* rows only; score = Mahalanobis distance;
* ``two-sided`` — the single feature's distribution on the *clean* rows only; score = |2F(s) − 1| with F the
  clean empirical CDF (mid-ranks), so both tails are suspicious (a confidence score an attack can push either way);
* ``cnn`` — a small Keras CNN on image-shaped inputs (class-balanced, a few epochs);
* ``art-input`` / ``art-activation`` — ART's ``BinaryInputDetector`` / ``BinaryActivationDetector`` around the same
  small network (on the image, or on the classifier's last-block activations).

Every fit refuses a training set with one kind of example: a detector must see (or at least be offered) both.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..registry import Registry

FITS: Registry = Registry("detector fit")


def fit(kind: str, x: np.ndarray, is_adv: np.ndarray, ctx: dict | None = None):
    is_adv = np.asarray(is_adv).astype(int)
    if len(np.unique(is_adv)) < 2:
        raise ParameterError("the detector's training set must hold clean and adversarial examples; it has one kind")
    return FITS[kind](np.asarray(x), is_adv, dict(ctx or {}))


@FITS.register("score")
def _score(x, is_adv, ctx):
    return _fitted(lambda xx: np.asarray(xx, np.float64)[:, 0])


@FITS.register("logistic")
def _logistic(x, is_adv, ctx):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Newton–Cholesky: a few exact steps on these small (≤ a few hundred) feature sets, ~5× faster than L-BFGS here
    lr = LogisticRegression(solver="newton-cholesky", max_iter=100, C=float(ctx.get("C", 1.0)),
                            class_weight="balanced", random_state=ctx.get("seed", 0))
    model = make_pipeline(StandardScaler(), lr).fit(_finite(x), is_adv)
    return _fitted(lambda xx: model.decision_function(_finite(xx)), pipeline=model)


def _fitted(score, **parts):
    """The score function with what it was fitted to attached (``score.parts``): the adaptive attack ports it to
    TensorFlow (:mod:`advxai.detect.differentiable`)."""
    score.parts = parts
    return score


@FITS.register("clean-density")
def _clean_density(x, is_adv, ctx):
    from sklearn.covariance import LedoitWolf
    from sklearn.preprocessing import StandardScaler

    clean = _finite(x[is_adv == 0])  # the adversarial rows are deliberately ignored
    scale = StandardScaler().fit(clean)
    gauss = LedoitWolf().fit(scale.transform(clean))
    return _fitted(lambda xx: gauss.mahalanobis(scale.transform(_finite(xx))), scaler=scale, gaussian=gauss)


@FITS.register("two-sided")
def _two_sided(x, is_adv, ctx):
    clean = np.sort(_finite(x[is_adv == 0])[:, 0])  # the adversarial rows are deliberately ignored

    def score(xx):
        s = _finite(np.asarray(xx))[:, 0]
        below = np.searchsorted(clean, s, side="left")
        above = np.searchsorted(clean, s, side="right")
        cdf = (below + above) / (2.0 * len(clean))  # mid-rank empirical CDF in [0, 1]
        return np.abs(2.0 * cdf - 1.0)

    return _fitted(score, clean=clean)


def _finite(x):
    return np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=1e6, neginf=-1e6)


def small_cnn(input_shape, seed: int = 0):
    """Two 3×3 conv layers (8, 16 filters), global average pooling, two logits: a detector, not a classifier."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(int(seed))
    inp = keras.Input(input_shape)
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = layers.MaxPooling2D()(h) if len(input_shape) == 3 and input_shape[0] >= 8 else h
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, layers.Dense(2)(h))


def small_mlp(input_dim: int, seed: int = 0):
    import keras
    from keras import layers

    keras.utils.set_random_seed(int(seed))
    inp = keras.Input((input_dim,))
    return keras.Model(inp, layers.Dense(2)(layers.Dense(32, activation="relu")(inp)))


def _balanced(x, is_adv, seed):
    """Oversample the smaller class (class balance without per-sample weights, which ART's fit lacks)."""
    rng = np.random.default_rng(seed)
    idx = [np.flatnonzero(is_adv == c) for c in (0, 1)]
    n = max(len(i) for i in idx)
    take = np.concatenate([rng.choice(i, n, replace=len(i) < n) for i in idx])
    take = take[rng.permutation(len(take))]
    return x[take], is_adv[take]


@FITS.register("cnn")
def _cnn(x, is_adv, ctx):
    import keras

    net = small_cnn(x.shape[1:], ctx.get("seed", 0))
    net.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    xb, yb = _balanced(x.astype(np.float32), is_adv, ctx.get("seed", 0))
    net.fit(xb, yb, epochs=int(ctx.get("epochs", 6)), batch_size=64, verbose=0)
    return _fitted(lambda xx: _logit_gap(net.predict(np.asarray(xx, np.float32), batch_size=512, verbose=0)), net=net)


def _logit_gap(z):
    z = np.asarray(z, np.float64)
    return z[:, 1] - z[:, 0]


def _art_detector(net, input_shape):
    import keras
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(net, nb_classes=2, input_shape=tuple(input_shape),
                                  loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
                                  optimizer=keras.optimizers.Adam(3e-3))


@FITS.register("art-input")
def _art_input(x, is_adv, ctx):
    from art.defences.detector.evasion import BinaryInputDetector

    det = BinaryInputDetector(_art_detector(small_cnn(x.shape[1:], ctx.get("seed", 0)), x.shape[1:]))
    xb, yb = _balanced(x.astype(np.float32), is_adv, ctx.get("seed", 0))
    det.fit(xb, np.eye(2, dtype=np.float32)[yb], nb_epochs=int(ctx.get("epochs", 6)), batch_size=64)
    return lambda xx: _logit_gap(det.detect(np.asarray(xx, np.float32), batch_size=512)[0]["predictions"])


@FITS.register("art-activation")
def _art_activation(x, is_adv, ctx):
    import keras
    from art.defences.detector.evasion import BinaryActivationDetector
    from art.estimators.classification import TensorFlowV2Classifier

    from ..models import last_conv_layer

    model = ctx["model"]
    layer = ctx.get("layer") or last_conv_layer(model)
    # ART reads activations of Sequential models only: wrap the network up to the layer as one Sequential step
    trunk = keras.Model(model.input, model.get_layer(layer).output, name="trunk")
    seq = keras.Sequential([keras.Input(model.input.shape[1:]), trunk])
    clf = TensorFlowV2Classifier(seq, nb_classes=2, input_shape=tuple(model.input.shape[1:]))
    shape = tuple(trunk.output.shape[1:])
    det = BinaryActivationDetector(clf, _art_detector(small_cnn(shape, ctx.get("seed", 0)), shape), "trunk")
    xb, yb = _balanced(x.astype(np.float32), is_adv, ctx.get("seed", 0))
    det.fit(xb, np.eye(2, dtype=np.float32)[yb], nb_epochs=int(ctx.get("epochs", 6)), batch_size=64)
    return lambda xx: _logit_gap(det.detect(np.asarray(xx, np.float32), batch_size=512)[0]["predictions"])
