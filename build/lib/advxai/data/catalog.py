"""The dataset registry: which names exist, checking a name and size, loading one, its fingerprint."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError, UnknownNameError
from .base import Dataset, data_dir
from .folders import FOLDERS, folder_fingerprint, load_folder
from .isic import ISIC, _files_md5, _isic_files, load_isic
from .medmnist import MEDMNIST, SINGLE_LABEL_TASKS, _medmnist_info, load_medmnist


def check(name: str, size: int = 28) -> None:
    """Refuse, in one line naming the fix, a dataset and size that :func:`load` would refuse, before any work
    (config validation calls it): an unknown name, a size a MedMNIST flag has no file for, a multi-label flag."""
    if name in MEDMNIST:
        _medmnist_info(name, size)
    elif name not in available():
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(available())}")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"{name}: size must be a positive number of pixels, got {size!r}")


# --- registry ------------------------------------------------------------------------------------------


def load(name: str, size: int = 28, root: Path | None = None, **kw) -> Dataset:
    """Load a dataset by registry name: a MedMNIST flag (``pneumoniamnist``…) or a folder set (``chest_xray``)."""
    check(name, size)
    if name in MEDMNIST:
        return load_medmnist(name, size, root)
    if name in FOLDERS:
        return load_folder(name, size, root, **kw)
    if name == "isic2018":
        return load_isic(size, root, **kw)
    raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(available())}")


def fingerprint(name: str, size: int, root: Path | None = None) -> str:
    """The data's MD5 without loading it: MedMNIST's official MD5 (checked on load), or a folder's fingerprint."""
    if name in MEDMNIST:
        return _medmnist_info(name, size)["md5"][size]
    if name in FOLDERS:
        return folder_fingerprint(name, root)
    if name == "isic2018":
        return _files_md5(_isic_files((root or data_dir()) / "raw" / ISIC["folder"]))
    raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(available())}")


def available() -> list[str]:
    """Names :func:`load` accepts (multi-label MedMNIST flags are known but refused, see :func:`check`)."""
    single = [f for f, info in MEDMNIST.items() if info["task"] in SINGLE_LABEL_TASKS]
    return sorted(single) + sorted(FOLDERS) + ["isic2018"]
