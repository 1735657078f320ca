"""Atomic artefact I/O: every file is written to a temporary name in its folder and renamed into place,
so an interrupted run never leaves a half-written array, table or record behind."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path, suffix: str = ".part"):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it. ``suffix``:
    for writers that insist on an extension (Keras saves only to ``*.keras``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600: results are shared with the group like any file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_npz(path: Path, **arrays) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found; run the stage that makes it first (advxai run CONFIG)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); delete it and rerun its stage") from None


def save_json(path: Path, obj) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    return Path(path)


def load_json(path: Path):
    return json.loads(Path(path).read_text())
