"""Raw folder datasets of the seeds (Kermany chest X-ray, OCT): loading, patient ids, patient-grouped validation,
byte fingerprints."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..artefacts import save_npz
from ..errors import DataError
from .base import IMAGE_SUFFIXES, Dataset, _content_md5, _read_cache, _to_float, cache_dir, center_crop_resize, data_dir

# Raw folder datasets of the seeds: name -> (sub-folder of raw/, classes, splits on disk, how to get it).
# Kermany et al. 2018 (Mendeley Data): fetch_raw downloads the chest X-rays; OCT2017 (several GB) is fetched by hand.
KERMANY_HOWTO = ("download 'ChestXRay2017.zip' / 'OCT2017.tar.gz' from https://data.mendeley.com/datasets/"
                 "rscbjbr9sj/2 (for chest_xray `advxai fetch chest_xray` does it; or Kaggle "
                 "paultimothymooney/chest-xray-pneumonia, kermany2018) and unpack it to")
# "patient": regexes that capture the patient id from a file's stem (the first that matches wins); validation
# is split by patient so that no patient has images on both sides.
FOLDERS: dict[str, dict] = {
    "chest_xray": {
        "folder": "chest_xray", "labels": ["NORMAL", "PNEUMONIA"], "license": "CC BY 4.0",
        "patient": (re.compile(r"(person\d+)_(?:bacteria|virus)_\d+(?:_\d+)?"),  # person1_virus_6, ..._921_1
                    re.compile(r"((?:NORMAL2-)?IM-\d+)-\d+(?:-\d+)?")),  # IM-0115-0001, NORMAL2-IM-0007-0001-0002
    },
    "oct2017": {
        "folder": "OCT2017", "labels": ["CNV", "DME", "DRUSEN", "NORMAL"], "license": "CC BY 4.0",
        "patient": (re.compile(r"(?:CNV|DME|DRUSEN|NORMAL)-(\d+)-\d+"),),  # CNV-6294785-1: one id across classes
    },
}


def _list_images(folder: Path, labels: list[str]) -> tuple[list[Path], np.ndarray]:
    files, ys = [], []
    for k, lab in enumerate(labels):
        found = sorted(p for p in (folder / lab).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        ys += [k] * len(found)
    return files, np.asarray(ys, dtype=np.int64)


def _read_folder(folder: Path, labels: list[str], size: int, channels: int) -> tuple[np.ndarray, ...]:
    """Decoded images, labels and ``CLASS/file`` names of one split, in listing order (names travel with the
    images into the cache, so the patient of every cached image is known without listing again)."""
    files, y = _list_images(folder, labels)
    x = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, f in enumerate(tqdm(files, desc=f"read {folder.name}", leave=False)):
        try:
            with Image.open(f) as img:
                x[i] = center_crop_resize(img, size, channels)
        except OSError as exc:
            raise DataError(f"cannot read image {f} ({exc}); replace or delete it") from None
    return x, y, np.array([f"{f.parent.name}/{f.name}" for f in files], dtype=str)


def folder_fingerprint(name: str, root: Path | None = None) -> str:
    """The content fingerprint of folder set ``name`` (:func:`_folder_md5` over the splits on disk)."""
    base = (root or data_dir()) / "raw" / FOLDERS[name]["folder"]
    present = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    if "train" not in present or "test" not in present:
        raise DataError(f"{base}/{{train,test}} not found; {KERMANY_HOWTO} {base}")
    return _folder_md5(base, present, FOLDERS[name]["labels"])


def load_folder(name: str, size: int = 64, root: Path | None = None, val_fraction: float = 0.1,
                seed: int = 0, channels: int = 1) -> Dataset:
    """Kaggle ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}`` or ``OCT2017/{train,test}/{CNV,...}``.

    Images are centre-cropped and resized like MedMNIST. Where the folder has no ``val`` split (or one too
    small to stop on: Kaggle's has 16 images), about ``val_fraction`` of the train *patients* become validation
    (:func:`patient_split`), so early stopping is never tuned on images of training patients.
    Decoded arrays are cached in :func:`cache_dir` under a name keyed by the files' fingerprint.
    """
    info = FOLDERS[name]
    base = (root or data_dir()) / "raw" / info["folder"]
    labels = info["labels"]
    md5 = folder_fingerprint(name, root)
    present = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    cache = cache_dir() / f"{name}_{size}_{channels}_{md5[:12]}.npz"
    arrays = _read_cache(cache, [f"{s}_files" for s in present])
    if arrays is None:
        arrays = {}
        for s in present:
            arrays[f"{s}_images"], arrays[f"{s}_labels"], arrays[f"{s}_files"] = _read_folder(
                base / s, labels, size, channels)
        save_npz(cache, **arrays)
    splits = {s: (_to_float(arrays[f"{s}_images"]), arrays[f"{s}_labels"]) for s in present}
    meta = {"path": str(base), "val_split": "folder"}
    if len(splits.get("val", ((), ()))[1]) < 100:
        (x, y), files = splits["train"], arrays["train_files"]
        patients = patient_ids(name, files)
        val = patient_split(y, patients, val_fraction, seed)
        splits["train"], splits["val"] = (x[~val], y[~val]), (x[val], y[val])
        meta.update(val_split="grouped by patient", train_patients=len(np.unique(patients[~val])),
                    val_patients=len(np.unique(patients[val])), val_images=int(val.sum()),
                    val_files=files[val].tolist())
    return Dataset(name, size, list(labels), splits, md5, info["license"], meta)


def patient_ids(name: str, files: Iterable[str]) -> np.ndarray:
    """The patient of each image file (``CLASS/file.jpeg`` or a bare name) of folder dataset ``name``."""
    patterns = FOLDERS[name]["patient"]
    return np.array([_patient_id(name, str(f), patterns) for f in files], dtype=str)


def _patient_id(name: str, file: str, patterns: tuple[re.Pattern, ...]) -> str:
    stem = PurePosixPath(file).stem
    for pattern in patterns:
        if match := pattern.fullmatch(stem):
            return match.group(1)
    raise DataError(f"{name}: cannot tell the patient of image {file!r} from its name (expected a stem matching "
                    f"{' or '.join(p.pattern for p in patterns)}); rename it or add its pattern to FOLDERS")


def patient_split(y: np.ndarray, patients: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Validation mask: one fold of a seeded ``StratifiedGroupKFold`` with ``round(1/fraction)`` folds, so no
    patient has images on both sides and each class keeps about its share of train."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = round(1 / fraction) if fraction > 0 else 0
    n_patients = len(np.unique(patients))
    if not 2 <= n_splits <= n_patients:
        raise DataError(f"val_fraction {fraction} gives {n_splits} folds for {n_patients} train patients; "
                        "round(1 / val_fraction) must be at least 2 and at most the number of patients")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, val = next(folds.split(np.zeros(len(y)), y, patients))
    mask = np.zeros(len(y), bool)
    mask[val] = True
    return mask


def _folder_md5(base: Path, splits: list[str], labels: list[str]) -> str:
    """A content fingerprint of a folder dataset: split, class, name and bytes of every image (order-stable)."""
    entries = []
    for s in splits:
        files, y = _list_images(base / s, labels)
        empty = [lab for k, lab in enumerate(labels) if not np.any(y == k)]
        if empty:  # a split without a class cannot be trained on or evaluated (AUC, specificity)
            raise DataError(f"{base / s} has no images of class(es) {empty}; every class needs images in every split")
        entries += [(f"{s}/{k}/{f.name}", f) for f, k in zip(files, y, strict=True)]
    return _content_md5(entries)
