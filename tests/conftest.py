"""Shared fixtures. Tests run on the real data: ``$ADVXAI_DATA`` (CI: ../shared/data) must hold
``medmnist/pneumoniamnist.npz`` and ``raw/chest_xray``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if "ADVXAI_DATA" not in os.environ and SHARED.exists():
    os.environ["ADVXAI_DATA"] = str(SHARED)


# Fixtures that build a grid, the book or a cluster: a test that uses one is end to end, in the slow tier
# (`make test-fast` runs the rest: every formula, registry, config check, key rule and the layout rule).
SLOW_FIXTURES = {"tiny_grid", "grid", "built_book", "server", "cluster", "tiny"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_root() -> Path:
    from advxai import data

    root = data.data_dir()
    if not (root / "medmnist" / "pneumoniamnist.npz").exists():
        pytest.fail(f"real data missing: set ADVXAI_DATA to a folder with medmnist/pneumoniamnist.npz (got {root})")
    return root


@pytest.fixture(scope="session")
def pneumonia(data_root):
    from advxai import data

    return data.load("pneumoniamnist", 28)


@pytest.fixture(scope="session")
def trained(pneumonia):
    """A small CNN trained for 2 epochs on real PneumoniaMNIST: good enough to be attacked and explained."""
    from advxai import models
    from advxai.models import train

    net = models.build("cnn", pneumonia.input_shape, 2, width=8, seed=0)
    train.fit(net, *pneumonia.split("train"), *pneumonia.split("val"), epochs=2, batch_size=128, augment=False,
              verbose=0)
    return net


@pytest.fixture(scope="session")
def test_batch(pneumonia):
    from advxai import data

    x, y = pneumonia.split("test")
    idx = data.balanced_subset(y, 24, seed=0)
    return x[idx], y[idx]


@pytest.fixture(scope="session")
def tiny_grid(tmp_path_factory, data_root):
    """configs/tiny.yaml run once through papermill, two runs at a time as the command line runs it (the serial
    executor gives the same tables: tests/test_pipeline.py): (results, book, records)."""
    from advxai.runner import pipeline

    results = tmp_path_factory.mktemp("results")
    book = tmp_path_factory.mktemp("book")
    records = pipeline.run_grid(ROOT / "configs" / "tiny.yaml", results, executor="parallel", workers=2, book=book,
                                log=lambda *a, **k: None)
    return results, book, records


def real_slice(tmp_path: Path, per_class: int = 6) -> Path:
    """A tiny Kaggle-layout chest_xray folder made of links to real images (train/test × NORMAL/PNEUMONIA)."""
    src = Path(os.environ["ADVXAI_DATA"]) / "raw" / "chest_xray"
    for split in ("train", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            d = tmp_path / "raw" / "chest_xray" / split / cls
            d.mkdir(parents=True)
            for f in sorted((src / split / cls).glob("*.jpeg"))[:per_class]:
                (d / f.name).symlink_to(f)
    return tmp_path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
