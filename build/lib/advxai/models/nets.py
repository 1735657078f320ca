"""Model registry: name -> builder of a Keras 3 model that takes images in [0, 1] and outputs **logits**.

All normalisation lives inside the model so attacks work in pixel space; grey inputs are repeated to three
channels inside the model where an ImageNet architecture expects them. Logits (not softmax) because ART's
C&W and DeepFool misbehave on probabilities (see DESIGN.md), and Grad-CAM wants the pre-softmax score.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from ..errors import DataError, ParameterError
from ..registry import Registry, check_params, keyword_defaults
from .batchnorm import BatchNormalization

MODELS: Registry = Registry("model")


@keras.saving.register_keras_serializable(package="advxai")
class ImagenetPreprocess(layers.Layer):
    """[0, 1] pixels -> the input convention of a keras.applications net (``caffe``, ``tf`` or ``torch``)."""

    def __init__(self, mode: str = "tf", **kw):
        super().__init__(**kw)
        self.mode = mode

    def call(self, x):
        if self.mode == "raw":  # EfficientNet rescales 0-255 inputs itself
            return x * 255.0
        return keras.applications.imagenet_utils.preprocess_input(x * 255.0, mode=self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@MODELS.register("cnn")
def compact_cnn(input_shape, n_classes: int, weights=None, width: int = 16, stem_stride: int = 1,
                dropout: float = 0.3):
    """A compact VGG-style CNN for CPU: 3 blocks of two 3×3 conv + BN + ReLU, max-pooling after the first two.

    At 28 px the last conv map is 7×7; at 64 px with ``stem_stride=2`` it is 8×8 at the cost of a 28 px
    net (measured here: ≈12 s per epoch over 4.7k images on 2 cores at width 16).
    """
    if weights is not None:
        raise ParameterError("model 'cnn' has no pretrained weights; use weights: null")
    inp = keras.Input(input_shape, name="image")
    x = inp
    for block, mult in enumerate((1, 2, 4)):
        for j in range(2):
            last = block == 2 and j == 1
            stride = stem_stride if block == 0 and j == 0 else 1
            x = layers.Conv2D(width * mult, 3, strides=stride, padding="same", use_bias=False,
                              name="last_conv" if last else f"conv{block}_{j}")(x)
            # momentum 0.9: running statistics settle within an epoch (0.99 left them stale for ~5 epochs)
            x = BatchNormalization(momentum=0.9, name=f"bn{block}_{j}")(x)
            x = layers.Activation("relu", name=f"relu{block}_{j}")(x)
        if block < 2:
            x = layers.MaxPooling2D(name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name="cnn")


@MODELS.register("resnet")
def cifar_resnet(input_shape, n_classes: int, weights=None, depth: int = 8, width: int = 16, stem_stride: int = 1,
                 dropout: float = 0.0):
    """The CIFAR-sized residual network of He et al. (CVPR 2016, §4.2): a 3×3 stem, three stages of ``n`` basic
    blocks (two 3×3 conv + BN, identity shortcut; a 1×1 projection where the shape changes, their option B) with
    ``width``·(1, 2, 4) filters, the last two stages starting with stride 2, global average pooling; depth 6n + 2.

    ``depth=20`` is their ResNet-20; the default ``depth=8`` (n = 1) is the smallest of the family, the residual
    net of the MLPerf Tiny image-classification benchmark (Banbury et al. 2021), chosen because it reaches every
    dataset's bar at about the compact CNN's cost per epoch on 2 cores (docs/design.md, "The study's grid"). The
    Grad-CAM layer is the last block's output: 7×7 at 28 px, 8×8 at 64 px with ``stem_stride=2``.
    """
    if weights is not None:
        raise ParameterError("model 'resnet' has no pretrained weights; use weights: null")
    n = (depth - 2) // 6  # depth checked by models.check (6n + 2)

    def conv_bn(x, filters, stride, name):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        return BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)

    inp = keras.Input(input_shape, name="image")
    x = layers.Activation("relu", name="stem_relu")(conv_bn(inp, width, stem_stride, "stem"))
    for stage, mult in enumerate((1, 2, 4)):
        for b in range(n):
            name, stride = f"s{stage}b{b}", 2 if stage and not b else 1
            y = layers.Activation("relu", name=f"{name}_relu1")(conv_bn(x, width * mult, stride, f"{name}_1"))
            y = conv_bn(y, width * mult, 1, f"{name}_2")
            if stride != 1 or x.shape[-1] != width * mult:  # projection shortcut (option B)
                x = layers.Conv2D(width * mult, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
                x = BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(x)
            x = layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=f"resnet{depth}")


def _application(builder, mode: str, min_size: int, upsample: bool = False):
    """Wrap a keras.applications constructor: [0,1] input, grey->RGB, logits; refuse (or, with ``upsample``,
    resize up to ``min_size`` inside the model) inputs smaller than ``min_size``."""
    name = builder.__name__.lower()

    def build(input_shape, n_classes: int, weights=None, dropout: float = 0.0):
        h, w = input_shape[:2]
        small = min(h, w) < min_size
        inp = keras.Input(input_shape, name="image")
        x = inp
        if input_shape[-1] == 1:
            x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
        if small:
            x = layers.Resizing(min_size, min_size, name="upsample")(x)
        x = ImagenetPreprocess(mode, name="preprocess")(x)
        base = builder(include_top=False, weights=weights, input_tensor=x)
        x = layers.GlobalAveragePooling2D(name="gap")(base.output)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        out = layers.Dense(n_classes, name="logits")(x)
        return keras.Model(inp, out, name=name)

    def _refuse_size(size, **_) -> None:
        h, w = (size, size) if isinstance(size, int) else size
        if min(h, w) < min_size and not upsample:
            px = f"{h}" if h == w else f"{h}×{w}"
            raise ParameterError(f"{name} at {px} px leaves a Grad-CAM map smaller than 2×2; "
                                 f"use ≥ {min_size} px (or the cnn model)")

    build.refuse_size = _refuse_size
    return build


# min_size: the smallest input whose Grad-CAM layer (last_conv_layer) still has a map of at least 2×2, measured
# by building each net (ResNet, DenseNet and EfficientNet downsample 32× with rounding; InceptionV3 ≈ 32× after a
# 75 px stem). Below it the map is 1×1: Grad-CAM is then a constant, so build refuses those inputs. VGG's block5
# map is still 2×2 at Keras' 32 px minimum, so smaller inputs are upsampled to 32 px inside the model instead.
apps = keras.applications
for _name, _builder, _mode, _min, _upsample in [
    ("resnet50", apps.ResNet50, "caffe", 33, False),
    ("resnet50v2", apps.ResNet50V2, "tf", 33, False),
    ("vgg16", apps.VGG16, "caffe", 32, True),
    ("vgg19", apps.VGG19, "caffe", 32, True),
    ("inceptionv3", apps.InceptionV3, "tf", 107, False),
    ("densenet201", apps.DenseNet201, "torch", 61, False),
    ("efficientnetb0", apps.EfficientNetB0, "raw", 33, False),
]:
    MODELS.register(_name)(_application(_builder, _mode, _min, _upsample))


def _stem_refuse_size(name: str):
    """The size check of a net with two 2× reductions after its stem: its Grad-CAM map is size / (stem_stride · 4)
    on a side."""

    def refuse(size, stem_stride: int = 1, **_) -> None:
        size = size if isinstance(size, int) else min(size)
        if size // max(1, int(stem_stride)) // 4 < 2:
            raise ParameterError(f"{name} at {size} px with stem_stride {stem_stride} leaves a Grad-CAM map smaller "
                                 f"than 2×2; use ≥ {8 * max(1, int(stem_stride))} px or a smaller stem_stride")

    return refuse


compact_cnn.refuse_size = _stem_refuse_size("cnn")


def _resnet_refuse(size, depth: int = 8, **params) -> None:
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ParameterError(f"resnet depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, ...), got {depth!r}")
    _stem_refuse_size("resnet")(size, **params)


cifar_resnet.refuse_size = _resnet_refuse


def check(name: str, size, params: dict | None = None) -> None:
    """Refuse before any work what :func:`build` would refuse: an unknown model, a parameter its builder does not
    take (with the closest known one), and a size (pixels, or (height, width)) at which its Grad-CAM map would be
    smaller than 2×2."""
    builder = MODELS[name]
    params = dict(params or {})
    check_params(f"model {name!r}", params, keyword_defaults(builder, 2))
    refuse = getattr(builder, "refuse_size", None)
    if refuse is not None:
        refuse(int(size) if isinstance(size, int | float) else tuple(int(v) for v in size), **params)


def build(name: str, input_shape, n_classes: int, weights=None, seed: int | None = None, **kw) -> keras.Model:
    """Build a registered model. ``weights="imagenet"`` needs a network (Keras downloads them).

    ``seed`` seeds the weight initialisers (Keras draws them at build time, before training seeds anything:
    without it two runs of the same configuration trained different models).
    """
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    if len(input_shape) != 3:
        raise ParameterError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
    if n_classes < 2:
        raise ParameterError(f"need at least 2 classes, got {n_classes}")
    check(name, tuple(input_shape[:2]), kw)
    return MODELS[name](tuple(input_shape), n_classes, weights=weights, **kw)


def last_conv_layer(model: keras.Model) -> str:
    """Name of the last layer with a spatial (N, H, W, C) output that is not pooling: Grad-CAM's target.

    For the keras.applications nets this gives the conventional layers (ResNet50 ``conv5_block3_out``,
    VGG16 ``block5_conv3``, InceptionV3 ``mixed10``).
    """
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        if shape is None or len(layer.output.shape) != 4:
            continue
        if isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D | layers.Dropout):
            continue
        return layer.name
    raise ParameterError(f"model {model.name!r} has no convolutional layer for Grad-CAM")


def save(model: keras.Model, path: Path) -> Path:
    """Save as ``.keras`` through a temporary name so an interrupted save leaves no half-written model."""
    from ..artefacts import atomic_path

    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path)


def load(path: Path) -> keras.Model:
    """Load a ``.keras`` model in safe mode (no arbitrary code: our custom layers are registered)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"model file {path} not found; run the training stage first (advxai run CONFIG)")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot load model {path} ({str(exc).splitlines()[0]}); delete it and retrain") from None
