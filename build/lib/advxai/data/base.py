"""The dataset object and what every loader shares: the data and cache folders, MD5s, decoding."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..artefacts import load_npz, save_json
from ..errors import DataError, UnknownNameError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


@dataclass
class Dataset:
    """Images in [0, 1] shaped (N, H, W, C) and integer labels (N,), per split."""

    name: str
    size: int
    labels: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    md5: str  # MD5 of the source file, or of the sorted file list + bytes for folder datasets
    license: str = ""
    info: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"][0].shape[1:])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.splits:
            raise UnknownNameError(f"split {name!r} not in {self.name} (has {sorted(self.splits)})")
        return self.splits[name]

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: {self.labels[k]: int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)}
                for s, (_, y) in self.splits.items()}


def data_dir() -> Path:
    """The data root: ``$ADVXAI_DATA`` or ``./data``."""
    return Path(os.environ.get("ADVXAI_DATA", "data")).expanduser()


def cache_dir() -> Path:
    """Decoded-image caches: ``$ADVXAI_CACHE`` or ``~/.cache/advxai`` (the data root may be read-only)."""
    return Path(os.environ.get("ADVXAI_CACHE", "~/.cache/advxai")).expanduser()


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _to_float(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


# --- raw folder layouts --------------------------------------------------------------------------------


def center_crop_resize(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """MedMNIST-style preprocessing: centre crop to the short edge, then resize (bicubic) to ``size``."""
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def _content_md5(entries: list[tuple[str, Path]]) -> str:
    """MD5 over ``key/MD5-of-bytes`` lines: renaming, relabelling or editing any image changes it."""
    h = hashlib.md5()
    for (key, _), digest in zip(entries, file_hashes([p for _, p in entries]), strict=True):
        h.update(f"{key}/{digest}\n".encode())
    return h.hexdigest()


def file_hashes(paths: list[Path]) -> list[str]:
    """MD5 of each file's bytes, cached in ``cache_dir()/file_hashes.json`` by (absolute path, size, mtime_ns),
    so that a warm run only stats the files. The cache is shared by all datasets and written atomically."""
    store = cache_dir() / "file_hashes.json"
    cached = _read_hash_cache(store)
    digests, changed = [], False
    for p in paths:
        st, key = p.stat(), str(p.absolute())
        entry = cached.get(key)
        if not (isinstance(entry, list) and len(entry) == 3 and entry[:2] == [st.st_size, st.st_mtime_ns]):
            entry = cached[key] = [st.st_size, st.st_mtime_ns, md5sum(p)]
            changed = True
        digests.append(entry[2])
    if changed:
        save_json(store, cached)
    return digests


def _read_hash_cache(path: Path) -> dict:
    """The per-file hash cache, or an empty one when it is missing or unreadable (it is rebuilt, never trusted)."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cached if isinstance(cached, dict) else {}


def _read_cache(path: Path, keys: Iterable[str] = ()) -> dict | None:
    """Arrays of a decoded-image cache, or None (rebuild) when it is missing, corrupt or lacks ``keys``."""
    if not path.exists():
        return None
    try:
        arrays = load_npz(path)
    except DataError:
        path.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
        return None
    return arrays if set(keys) <= set(arrays) else None
