import numpy as np
import pytest

from advxai import models, train
from advxai.errors import DataError, ParameterError, UnknownNameError


def test_logits_output_and_save_load_roundtrip(trained, test_batch, tmp_path):
    x, _ = test_batch
    path = models.save(trained, tmp_path / "m.keras")
    loaded = models.load(path)  # safe mode
    np.testing.assert_allclose(train.predict_logits(loaded, x), train.predict_logits(trained, x), atol=1e-5)
    logits = train.predict_logits(trained, x)
    assert not np.allclose(logits.sum(1), 1.0)  # logits, not probabilities
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="not found; run the training stage"):
        models.load(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot load model .* delete it and retrain"):
        models.load(tmp_path / "bad.keras")


def test_build_errors_and_imagenet_nets_take_grey_inputs():
    with pytest.raises(UnknownNameError, match="unknown model 'alexnet'"):
        models.build("alexnet", (28, 28, 1), 2)
    with pytest.raises(ParameterError, match=r"\(H, W, C\)"):
        models.build("cnn", (28, 28), 2)
    with pytest.raises(ParameterError, match="at least 2 classes"):
        models.build("cnn", (28, 28, 1), 1)
    net = models.build("inceptionv3", (28, 28, 1), 2)  # grey -> RGB and upsampled to 75 px inside
    assert net.output.shape[-1] == 2 and net.get_layer("upsample") is not None


def test_training_reaches_better_than_chance(pneumonia, trained):
    m = train.evaluate(trained, *pneumonia.split("test"))
    assert m["auc"] > 0.85
    with pytest.raises(ParameterError, match="no training images"):
        train.class_weights(np.zeros(10, int), 2)
