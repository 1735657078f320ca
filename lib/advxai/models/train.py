"""Training recipe (augmentation per modality, LR schedule with warm-up, AdamW, label smoothing, class-balanced
loss, early stopping on a chosen validation metric) and evaluation with the seeds' Table II metrics."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from ..errors import ParameterError
from ..measure.metrics import classification_metrics, softmax
from ..registry import check_params
from .augment import AUGMENTATIONS, augmentation_for

SCHEDULES = ("plateau", "cosine")
MONITORS = ("val_loss", "val_balanced_accuracy", "none")
BALANCES = {True: 1.0, False: 0.0, "balanced": 1.0, "sqrt": 0.5, "none": 0.0}


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TF for deterministic kernels (same run -> same numbers)."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


MAX_CLASS_WEIGHT = 5.0  # bench/small_data.py: 7-class ISIC at 1,000 images, weights up to 13, fell below majority


def class_weights(y: np.ndarray, n_classes: int, power: float = 1.0) -> dict[int, float]:
    """Weights (n / (K · n_k))^p: p = ``power`` 1 is scikit-learn's 'balanced' (every class contributes equally),
    0.5 a softer square-root weighting, 0 none; p is lowered where needed so that no weight exceeds
    :data:`MAX_CLASS_WEIGHT` (a class of a few images weighted tenfold makes a noisy gradient: the rule the
    recipe follows on a small, imbalanced set; every book set stays under it). PneumoniaMNIST is 74 %
    pneumonia in train (largest balanced weight 1.9); HAM10000 67 % naevi (13 balanced, 3.6 square-root)."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise ParameterError(f"classes {missing} have no training images; check the dataset's labels")
    ratio = len(y) / (n_classes * counts)
    if ratio.max() ** power > MAX_CLASS_WEIGHT:
        power = float(np.log(MAX_CLASS_WEIGHT) / np.log(ratio.max()))
    return {k: float(r ** power) for k, r in enumerate(ratio)}


def balance_power(balance) -> float:
    try:
        return BALANCES[balance]
    except (KeyError, TypeError):
        raise ParameterError(f"balance must be one of true, false, 'sqrt'; got {balance!r}") from None


def check_settings(settings: dict) -> None:
    """A config's ``train`` section, checked before any work (the same checks ``fit`` makes)."""
    s = settings
    if s.get("epochs", 1) < 1 or s.get("batch_size", 1) < 1:
        raise ParameterError(f"train: epochs and batch_size must be ≥ 1, got {s.get('epochs')}, {s.get('batch_size')}")
    for name, known in [("schedule", SCHEDULES), ("monitor", MONITORS)]:
        if name in s and s[name] not in known:
            raise ParameterError(f"train: unknown {name} {s[name]!r}; known: {', '.join(known)}")
    if not 0 <= s.get("label_smoothing", 0) < 1 or s.get("weight_decay", 0) < 0:
        raise ParameterError("train: need 0 ≤ label_smoothing < 1 and weight_decay ≥ 0")
    if not 0 <= s.get("warmup", 0) < s.get("epochs", 1):
        raise ParameterError(f"train: warmup must be in [0, epochs), got {s.get('warmup')}")
    balance_power(s.get("balance", True))
    if s.get("augment", True) not in (True, False, None, "none"):
        AUGMENTATIONS[s["augment"]]
    adversarial_settings(s.get("adversarial"))


ADVERSARIAL = {"eps": None, "steps": 7}  # PGD adversarial training: ε (pixel units, required) and PGD steps


def adversarial_settings(adv) -> dict | None:
    """``train.adversarial``: none, or {eps, steps} of PGD adversarial training (Madry et al. 2018), checked."""
    if adv in (None, False):
        return None
    if not isinstance(adv, dict):
        raise ParameterError(f"train.adversarial must be a mapping such as {{eps: 0.0078, steps: 7}}, got {adv!r}")
    check_params("train.adversarial", adv, ADVERSARIAL)
    eps, steps = adv.get("eps"), adv.get("steps", ADVERSARIAL["steps"])
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps <= 1:
        raise ParameterError(f"train.adversarial.eps must be in (0, 1] (pixel units, e.g. 2/255 = 0.0078), got {eps!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ParameterError(f"train.adversarial.steps must be an integer ≥ 1, got {steps!r}")
    return {"eps": float(eps), "steps": steps}


class AdversarialTrainer(keras.Model):
    """PGD adversarial training (Madry et al. 2018): every step trains ``net`` on the PGD adversarial of its
    (augmented) batch instead of the batch — a uniform random start in the ε-ball, ``steps`` signed-gradient steps
    of α = 2.5·ε/steps on the plain cross-entropy, projected onto the ε-ball and [0, 1]. The adversarial is made with
    the network in inference mode (BatchNorm statistics frozen); the loss, class weights, optimiser and schedule are
    the recipe's. Validation and prediction see clean images."""

    def __init__(self, net: keras.Model, augment: keras.Model | None, eps: float, steps: int, seed: int = 0):
        super().__init__()
        self.net, self.augment, self.eps, self.steps = net, augment, float(eps), int(steps)
        self.alpha = 2.5 * self.eps / self.steps
        # seeded apart from the augmentation's generators (seeded ``seed``, ``seed + 1``, ...): generators seeded
        # alike draw the same numbers
        self.noise = keras.random.SeedGenerator(seed + 10_007)

    def call(self, x, training=False):
        return self.net(x, training=training)

    def adversarial(self, x, y):
        ce = keras.losses.CategoricalCrossentropy(from_logits=True)
        start = keras.random.uniform(tf.shape(x), -self.eps, self.eps, seed=self.noise)
        x_adv = tf.clip_by_value(x + start, 0.0, 1.0)
        for _ in range(self.steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                loss = ce(y, self.net(x_adv, training=False))
            step = x_adv + self.alpha * tf.sign(tape.gradient(loss, x_adv))
            x_adv = tf.clip_by_value(tf.clip_by_value(step, x - self.eps, x + self.eps), 0.0, 1.0)
        return tf.stop_gradient(x_adv)

    def train_step(self, data):
        x, y, weight = keras.utils.unpack_x_y_sample_weight(data)
        if self.augment is not None:
            x = tf.clip_by_value(self.augment(x, training=True), 0.0, 1.0)
        x = self.adversarial(x, y)
        with tf.GradientTape() as tape:
            logits = self.net(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=logits, sample_weight=weight, training=True)
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.optimizer.apply(grads, self.net.trainable_variables)
        return self.compute_metrics(x, y, logits, sample_weight=weight)


class EpochTimer(keras.callbacks.Callback):
    """Seconds of each epoch's training steps, validation excluded (it starts at ``on_test_begin``)."""

    def __init__(self):
        super().__init__()
        self.seconds, self._t0 = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._t0 is not None:
            self.seconds.append(time.perf_counter() - self._t0)
            self._t0 = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()


class BalancedAccuracy(keras.callbacks.Callback):
    """Adds ``val_balanced_accuracy`` (mean per-class recall on the validation split) to each epoch's logs,
    before early stopping reads them: on imbalanced sets validation loss rewards the majority class."""

    def __init__(self, x_val, y_val, n_classes: int):
        super().__init__()
        self.x, self.y, self.k = x_val, np.asarray(y_val), n_classes

    def on_epoch_end(self, epoch, logs=None):
        pred = predict_logits(self.model, self.x).argmax(1)
        recall = [np.mean(pred[self.y == k] == k) for k in range(self.k) if np.any(self.y == k)]
        logs["val_balanced_accuracy"] = float(np.mean(recall))


def fit(model: keras.Model, x_train, y_train, x_val, y_val, *, epochs: int = 30, batch_size: int = 64,
        lr: float = 1e-3, patience: int = 6, augment="anatomical", balance=True, schedule: str = "plateau",
        warmup: int = 0, weight_decay: float = 0.0, label_smoothing: float = 0.0, monitor: str = "val_loss",
        adversarial: dict | None = None, seed: int = 0, verbose: int = 2, jit_compile: bool = False) -> dict:
    """AdamW on (label-smoothed) softmax cross-entropy over logits, class-weighted by ``balance``.

    ``schedule``: ``plateau`` halves the LR when validation loss stalls; ``cosine`` warms up linearly for
    ``warmup`` epochs, then decays to 0 by the last epoch (Loshchilov & Hutter 2017). ``monitor``: the
    validation quantity early stopping watches (best weights restored); ``none`` trains every epoch and
    keeps the last weights, so the validation split stays a held-out split. ``adversarial``: {eps, steps} trains on
    PGD adversarials of each batch instead (:class:`AdversarialTrainer`). ``jit_compile``: XLA for the training
    step (see ``bench/train_speed.py``). Returns the history, the wall time and each epoch's training seconds
    (``train_seconds``: the epoch without its validation).
    """
    check_settings(dict(epochs=epochs, batch_size=batch_size, schedule=schedule, monitor=monitor, warmup=warmup,
                        weight_decay=weight_decay, label_smoothing=label_smoothing, balance=balance,
                        augment=augment or False, adversarial=adversarial))
    adversarial = adversarial_settings(adversarial)
    power = balance_power(balance)
    set_seed(seed)
    n_classes = int(model.output.shape[-1])
    steps = -(-len(y_train) // batch_size)
    rate = lr
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(lr / 10 if warmup else lr, (epochs - warmup) * steps,
                                                      warmup_target=lr if warmup else None,
                                                      warmup_steps=warmup * steps)
    # Augmentation runs as the first layers of a training-only wrapper, on the model's own (multi-threaded)
    # graph: as a tf.data map it ran on one core and made training input-bound. The saved model is ``model``.
    trainer = model
    aug = AUGMENTATIONS[augment](seed) if augment else None
    if adversarial:
        trainer = AdversarialTrainer(model, aug, adversarial["eps"], adversarial["steps"], seed)
    elif aug is not None:
        trainer = keras.Sequential([keras.Input(model.input_shape[1:]), aug,
                                    keras.layers.Lambda(lambda x: tf.clip_by_value(x, 0.0, 1.0)), model])
    trainer.compile(optimizer=keras.optimizers.AdamW(rate, weight_decay=weight_decay),
                    loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=jit_compile)
    one_hot = np.eye(n_classes, dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x_train, one_hot[y_train])).shuffle(len(y_train), seed=seed)
    ds = ds.batch(batch_size).prefetch(2)
    timer = EpochTimer()
    callbacks = [timer, BalancedAccuracy(x_val, y_val, n_classes)]
    if monitor != "none":
        mode = "min" if monitor == "val_loss" else "max"
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                                       restore_best_weights=True))
    if schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=max(1, patience // 2)))
    t0 = time.perf_counter()
    hist = trainer.fit(ds, validation_data=(x_val, one_hot[y_val]), epochs=epochs, verbose=verbose,
                     callbacks=callbacks, class_weight=class_weights(y_train, n_classes, power) if power else None)
    out = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    out["seconds"] = time.perf_counter() - t0
    out["train_seconds"] = timer.seconds
    if monitor == "none":
        out["best_epoch"] = len(out["loss"])
    else:
        pick = np.argmin if monitor == "val_loss" else np.argmax
        out["best_epoch"] = int(pick(out[monitor])) + 1
    return out


def build_and_fit(ds, model: str, model_params: dict, settings: dict, seed: int, verbose: int = 0):
    """Build ``model`` for dataset ``ds`` (initial weights seeded) and train it with ``settings`` (a config's
    ``train`` section, adapted to a small training set by :func:`small_data_settings`; ``augment: true`` picks the
    dataset's own augmentation). Returns (net, history), the batch size and learning rate trained with in it."""
    from . import nets

    net = nets.build(model, ds.input_shape, ds.n_classes, seed=seed, **model_params)
    x, y = ds.split("train")
    s = small_data_settings(settings, len(y))
    s["augment"] = augmentation_for(ds.name, s.get("augment", True))
    hist = fit(net, x, y, *ds.split("val"), seed=seed, verbose=verbose, **s)
    hist.update(augment=s["augment"], batch_size=s.get("batch_size", 64), lr=s.get("lr", 1e-3))  # as trained
    return net, hist


MIN_STEPS_PER_EPOCH = 30  # below it, a from-scratch CNN sees too few updates in a few epochs (bench/small_data.py)
MIN_UPDATES = 400  # a small set still gets this many updates in all (bench/small_data.py: 7-class ISIC, 500 images)


def small_data_settings(settings: dict, n_train: int) -> dict:
    """The recipe adapted to a small training set, by one rule. Where an epoch would be fewer than
    :data:`MIN_STEPS_PER_EPOCH` steps: the batch is halved (not below 8) until it is not, the learning rate scaled by
    the square root of the batch ratio (Adam's square-root rule, as the ISIC recipe does upwards); the epochs are
    raised until training takes :data:`MIN_UPDATES` updates; and full class balancing is softened to the
    square-root weighting (a rare class of a few images weighted fully makes a noisy gradient). Every set of the
    book has ≥ 55 steps per epoch at its batch size, so its training is unchanged."""
    s = dict(settings)
    batch = int(s.get("batch_size", 64))
    if -(-n_train // batch) >= MIN_STEPS_PER_EPOCH:
        return s
    new = batch
    while new > 8 and -(-n_train // new) < MIN_STEPS_PER_EPOCH:
        new //= 2
    s["batch_size"], s["lr"] = new, float(s.get("lr", 1e-3)) * (new / batch) ** 0.5
    s["epochs"] = max(int(s.get("epochs", 30)), -(-MIN_UPDATES // -(-n_train // new)))
    if balance_power(s.get("balance", True)) > BALANCES["sqrt"]:
        s["balance"] = "sqrt"
    return s


def reweighted_logits(logits: np.ndarray, weights: dict[int, float]) -> np.ndarray:
    """The decision an unweighted loss would make, from a model trained with class weights ``w``: weighted
    cross-entropy is minimised by q(k|x) ∝ w_k p(k|x), so subtracting log w_k from the logits undoes the
    weighting (logit adjustment, Menon et al. 2021). Shows the balanced loss' trade-off without retraining."""
    w = np.array([weights[k] for k in range(len(weights))], np.float64)
    return np.asarray(logits, np.float64) - np.log(w)


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits in batches, in inference mode (BatchNorm statistics frozen, dropout off)."""
    out = [model(x[i:i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, int(model.output.shape[-1])), np.float32)


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Table II metrics of ``model`` on (x, y)."""
    return classification_metrics(y, softmax(predict_logits(model, x)))
