"""Which images a run draws: class-balanced samples, split sizes known before loading."""

from __future__ import annotations

import numpy as np

from ..errors import DataError, ParameterError
from .base import data_dir
from .medmnist import MEDMNIST, medmnist_filename


def split_size(name: str, size: int, split: str) -> int | None:
    """Images in a split, when that is known without loading the set: a MedMNIST file present on disk (its
    label array's length); ``None`` otherwise (folder sets are counted when loaded)."""
    path = data_dir() / "medmnist" / medmnist_filename(name, size)
    if name not in MEDMNIST or not path.exists():
        return None
    try:
        with np.load(path) as f:
            return len(f[f"{split}_labels"])
    except (KeyError, OSError, ValueError):  # a damaged file: load() names it with the fix
        return None


def check_sample(name: str, size: int, splits: list[str], n: int, key: str) -> None:
    """Refuse, before any work, a sample of ``n`` images (config key ``key``) larger than the splits it is drawn
    from, where their size is known (:func:`split_size`); otherwise the draw itself refuses it."""
    sizes = [split_size(name, size, s) for s in splits]
    if n and None not in sizes and n > sum(sizes):
        raise ParameterError(f"{key} = {n} exceeds the {sum(sizes)} images of {name}'s {' + '.join(splits)} split at "
                             f"{size} px; lower {key}")


def balanced_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` images with (as near as possible) equal counts per class, drawn with a seeded RNG.

    The seeds attack 100 class-balanced test images. When ``n`` is not divisible by the number of classes
    the first classes get one more; a class with too few images gives all it has and the others make up the
    difference, so the sample always has ``n`` images. More images than the split holds is an error.
    """
    classes, caps = np.unique(y, return_counts=True)
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    if n > len(y):
        raise ParameterError(f"n_images = {n} exceeds the {len(y)} images of the split; lower n_images")
    per, left = np.zeros(len(classes), int), n
    while left:  # share what is left equally among the classes that still have images
        open_ = np.flatnonzero(per < caps)
        share, extra = divmod(left, len(open_))
        for i, k in enumerate(open_):
            add = min(share + (i < extra), caps[k] - per[k])
            per[k], left = per[k] + add, left - add
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(y == k))[:m] for k, m in zip(classes, per, strict=True)]
    return np.sort(np.concatenate(idx))
