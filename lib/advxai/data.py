"""Datasets: MedMNIST `.npz` files and the raw folder layouts the seed papers used.

Every loader returns a :class:`Dataset` whose images are float32 in [0, 1], shaped (N, H, W, C), so that
attacks work in pixel space with ``clip_values=(0, 1)``. Where a file is missing it is downloaded from its
official source and MD5-checked; offline, the error names the file and where to put it. The raw chest X-ray
and ISIC 2018 sets are large (GBs), so they download only on request: :func:`fetch_raw` (``advxai fetch NAME``).

The data directory is ``$ADVXAI_DATA`` (default ``data/`` in the working directory) with the layout
``medmnist/<flag>[_<size>].npz`` and ``raw/chest_xray/...``, ``raw/OCT2017/...``, ``raw/ISIC2018/...`` (the
layout of the shared copies, so ``ADVXAI_DATA=../shared/data`` works as is; ``data/README.md`` describes it).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .artefacts import atomic_path, load_npz, save_json, save_npz
from .errors import DataError, ParameterError, UnknownNameError

ZENODO = "https://zenodo.org/records/10519652/files"
SIZES = (28, 64, 128, 224)  # MedMNIST+ sizes; each flag's own are the keys of its "md5"

# Every official MedMNIST v2/+ 2D flag (Zenodo record 10519652), copied from `medmnist/info.py` of the `medmnist`
# 3.0.2 wheel so that neither that package nor torch is needed: the MedMNIST task, channels (1 grey, 3 RGB),
# licence, labels in the official index order, and the MD5 of the file at each size (its name is
# medmnist_filename, its URL medmnist_url). One deliberate difference: bloodmnist's label 3 is shortened from
# "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)".
MEDMNIST: dict[str, dict] = {
    "pathmnist": {
        "task": "multi-class", "channels": 3, "license": "CC BY 4.0",
        "labels": ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
                   "cancer-associated stroma", "colorectal adenocarcinoma epithelium"],
        "md5": {28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
                128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec"},
    },
    "chestmnist": {
        "task": "multi-label, binary-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
                   "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"],
        "md5": {28: "02c8a6516a18b556561a56cbdd36c4a8", 64: "9de6cd0b934ebb5b7426cfba5efbae16",
                128: "db107e5590b27930b62dbaf558aebee3", 224: "45bd33e6f06c3e8cdb481c74a89152aa"},
    },
    "dermamnist": {
        "task": "multi-class", "channels": 3, "license": "CC BY-NC 4.0",
        "labels": ["actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi",
                   "vascular lesions"],
        "md5": {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
                128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"},
    },
    "octmnist": {
        "task": "multi-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
        "md5": {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
                128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"},
    },
    "pneumoniamnist": {
        "task": "binary-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["normal", "pneumonia"],
        "md5": {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
    },
    "retinamnist": {
        "task": "ordinal-regression", "channels": 3, "license": "CC BY 4.0",
        "labels": ["0", "1", "2", "3", "4"],
        "md5": {28: "bd4c0672f1bba3e3a89f0e4e876791e4", 64: "afda852cc34dcda56f86ad2b2457dbcc",
                128: "e48e916a24454daf90583d4e6efb1a18", 224: "eae7e3b6f3fcbda4ae613ebdcbe35348"},
    },
    "breastmnist": {
        "task": "binary-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["malignant", "normal, benign"],
        "md5": {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
                128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"},
    },
    "bloodmnist": {
        "task": "multi-class", "channels": 3, "license": "CC BY 4.0",
        "labels": ["basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte", "monocyte",
                   "neutrophil", "platelet"],
        "md5": {28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
                128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601"},
    },
    "tissuemnist": {
        "task": "multi-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule", "Glomerular endothelial cells",
                   "Interstitial endothelial cells", "Leukocytes", "Podocytes", "Proximal Tubule Segments",
                   "Thick Ascending Limb"],
        "md5": {28: "ebe78ee8b05294063de985d821c1c34b", 64: "123ece2eba09d0aa5d698fda57103344",
                128: "61b955355d7425a89687b06cca3ce0c2", 224: "b077128c4a949f0a4eb01517f9037b9c"},
    },
    "organamnist": {
        "task": "multi-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
                   "lung-left", "lung-right", "pancreas", "spleen"],
        "md5": {28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
                128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170"},
    },
    "organcmnist": {
        "task": "multi-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
                   "lung-left", "lung-right", "pancreas", "spleen"],
        "md5": {28: "b9ceb9546e10131b32923c5bbeaea2b1", 64: "3ce34a8724ea6f548e6db4744d03b6a9",
                128: "773c1f009daa3fe5d9a2a201b2a7ed94", 224: "050f5e875dc056f6768abf94ec9995d1"},
    },
    "organsmnist": {
        "task": "multi-class", "channels": 1, "license": "CC BY 4.0",
        "labels": ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
                   "lung-left", "lung-right", "pancreas", "spleen"],
        "md5": {28: "9ab87b696fb54e2a387ebe992d6ed5f1", 64: "53a6d115339d874c25e309a994ff46d3",
                128: "ded0c5fa01a95dc4978b956f613e9b8e", 224: "b354719e553fbbb2513d5533f52a4cb1"},
    },
}

# Tasks advxai can attack and score: one label per image. RetinaMNIST's ordinal regression on 5 diabetic
# retinopathy grades is treated as 5 classes; ChestMNIST (multi-label, 14 findings) is refused.
SINGLE_LABEL_TASKS = ("binary-class", "multi-class", "ordinal-regression")

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
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}

# ISIC 2018 Task 3 / HAM10000 (RADAR-MIX): official class order of the challenge's ground-truth CSV.
ISIC = {"folder": "ISIC2018", "labels": ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"],
        "license": "CC BY-NC 4.0",
        "howto": "download the ISIC 2018 Task 3 training/test images and ground truth from "
                 "https://challenge.isic-archive.com/data/#2018 and HAM10000_metadata.csv from Harvard Dataverse "
                 "(doi:10.7910/DVN/DBW86T) (`advxai fetch isic2018` does it all) into"}


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


def medmnist_filename(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def medmnist_url(flag: str, size: int) -> str:
    return f"{ZENODO}/{medmnist_filename(flag, size)}?download=1"


def download(url: str, dest: Path, md5: str, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` through a temporary file, check its MD5, then move it in place atomically.

    A failed or interrupted download, or a wrong MD5, leaves nothing at ``dest``.
    """
    try:
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                    while block := resp.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
            got = md5sum(tmp)
            if got != md5:
                raise DataError(f"{dest.name}: MD5 {got} != official {md5}; the download is corrupt, run again")
        return dest
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"cannot download {dest.name} from {url} ({exc}); put the official file at {dest}") from None


def fetch_medmnist(flag: str, size: int = 28, root: Path | None = None, url: str | None = None,
                   md5: str | None = None) -> Path:
    """Path of a verified MedMNIST file, downloading it (MD5-checked) when it is missing. ``md5`` replaces the
    official MD5, for a file made on purpose (the tests build small files in the official layout)."""
    info = _medmnist_info(flag, size)
    path = (root or data_dir()) / "medmnist" / medmnist_filename(flag, size)
    expected = md5 or info["md5"][size]
    if path.exists():
        got = md5sum(path)
        if got != expected:
            raise DataError(f"{path}: MD5 {got} != official {expected}; delete the file to download it again")
        return path
    if os.environ.get("ADVXAI_OFFLINE"):
        raise DataError(f"{path} is missing and ADVXAI_OFFLINE is set; download {medmnist_url(flag, size)} there")
    return download(url or medmnist_url(flag, size), path, expected)


def load_medmnist(flag: str, size: int = 28, root: Path | None = None, md5: str | None = None) -> Dataset:
    """A MedMNIST flag at ``size`` px, its layout and labels checked (``md5``: see :func:`fetch_medmnist`)."""
    info = _medmnist_info(flag, size)
    path = fetch_medmnist(flag, size, root, md5=md5)
    try:
        with np.load(path) as npz:
            arrays = {s: (npz[f"{s}_images"], npz[f"{s}_labels"]) for s in ("train", "val", "test")}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path} is not a valid MedMNIST file ({exc}); delete it to download it again") from None
    splits = {s: _medmnist_split(path, s, x, y, size, info) for s, (x, y) in arrays.items()}
    return Dataset(flag, size, list(info["labels"]), splits, md5 or info["md5"][size], info["license"],
                   {"source": medmnist_url(flag, size), "path": str(path), "task": info["task"]})


def _medmnist_split(path: Path, split: str, x: np.ndarray, y: np.ndarray, size: int, info: dict) -> tuple:
    """One split as float images (N, H, W, C) in [0, 1] and int labels (N,), after checking the official layout:
    uint8 images (N, size, size) grey or (N, size, size, 3) RGB, uint8 labels (N, 1) inside the label map (a
    wrong label would otherwise train silently on a class the map does not name)."""
    shape = (size, size) if info["channels"] == 1 else (size, size, info["channels"])
    if x.dtype != np.uint8 or x.shape[1:] != shape or y.shape != (len(x), 1):
        raise DataError(f"{path}: {split} images {x.dtype} {x.shape} and labels {y.shape} are not the official "
                        f"layout (uint8 (N, {', '.join(map(str, shape))}) and (N, 1)); delete it to download it again")
    n = len(info["labels"])
    if y.size and not 0 <= y.min() <= y.max() < n:
        raise DataError(f"{path}: {split} labels span {y.min()}..{y.max()}, outside the label map 0..{n - 1} "
                        f"({n} classes); delete it to download the official file again")
    return _to_float(x), y.reshape(-1).astype(np.int64)


def _medmnist_info(flag: str, size: int) -> dict:
    if flag not in MEDMNIST:
        raise UnknownNameError(f"unknown MedMNIST flag {flag!r}; known: {', '.join(sorted(MEDMNIST))}")
    info = MEDMNIST[flag]
    if info["task"] not in SINGLE_LABEL_TASKS:
        raise DataError(f"{flag} is {info['task']} ({len(info['labels'])} findings per image); advxai's attacks "
                        "and metrics are single-label: pick another flag")
    if size not in info["md5"]:
        raise DataError(f"{flag}: size must be one of {tuple(info['md5'])}, got {size}; set the dataset's size "
                        "to one of them")
    return info


def check(name: str, size: int = 28) -> None:
    """Refuse, in one line naming the fix, a dataset and size that :func:`load` would refuse, before any work
    (config validation calls it): an unknown name, a size a MedMNIST flag has no file for, a multi-label flag."""
    if name in MEDMNIST:
        _medmnist_info(name, size)
    elif name not in available():
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(available())}")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"{name}: size must be a positive number of pixels, got {size!r}")


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
    md5 = fingerprint(name, size, root)
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


# --- ISIC 2018 / HAM10000 --------------------------------------------------------------------------------


def _isic_files(base: Path) -> dict:
    """Training images with their labels and lesions (metadata CSV), test images with the official labels."""
    import pandas as pd

    meta_csv = base / "HAM10000_metadata.csv"
    test_csv = base / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv"
    if not meta_csv.exists() or not test_csv.exists():
        raise DataError(f"{base} lacks HAM10000_metadata.csv or the test ground truth; {ISIC['howto']} {base}")
    meta = pd.read_csv(meta_csv)
    labels = [lab.lower() for lab in ISIC["labels"]]
    unknown = sorted(set(meta.dx) - set(labels))
    if unknown:
        raise DataError(f"{meta_csv} has unknown dx values {unknown}; expected {labels}")
    test = pd.read_csv(test_csv)
    return {
        "train": ([base / "ISIC2018_Task3_Training_Input" / f"{i}.jpg" for i in meta.image_id],
                  np.array([labels.index(d) for d in meta.dx]), meta.lesion_id.to_numpy()),
        "test": ([base / "ISIC2018_Task3_Test_Input" / f"{i}.jpg" for i in test.image],
                 test[ISIC["labels"]].to_numpy().argmax(1), None),
    }


def _files_md5(files: dict) -> str:
    """A content fingerprint of the ISIC images: split, label, name and bytes of every listed image."""
    entries = []
    for split, (paths, y, _) in files.items():
        for p, k in zip(paths, y, strict=True):
            if not p.exists():
                raise DataError(f"image {p} listed in the ground truth is missing; {ISIC['howto']} {p.parent.parent}")
            entries.append((f"{split}/{k}/{p.name}", p))
    return _content_md5(entries)


def load_isic(size: int = 64, root: Path | None = None, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """ISIC 2018 Task 3: the 10,015 HAM10000 training images (labels from the metadata CSV) and the 1,512
    official test images (official ground truth), 7 classes in the challenge's order.

    Training images are full-field 4:3 and test images centre square crops, so both are centre-cropped to a
    square (a no-op for the test images) before resizing. Validation is ``val_fraction`` of the *lesions*
    (all images of a lesion stay on one side: HAM10000 has several images per lesion).
    """
    base = (root or data_dir()) / "raw" / ISIC["folder"]
    files = _isic_files(base)
    md5 = _files_md5(files)
    cache = cache_dir() / f"isic2018_{size}_{md5[:12]}.npz"
    arrays = _read_cache(cache)
    if arrays is None:
        arrays = {}
        for split, (paths, y, _) in files.items():
            x = np.empty((len(paths), size, size, 3), np.uint8)
            for i, p in enumerate(tqdm(paths, desc=f"read ISIC {split}", leave=False)):
                try:
                    with Image.open(p) as img:
                        x[i] = center_crop_resize(img, size, 3)
                except OSError as exc:
                    raise DataError(f"cannot read image {p} ({exc}); replace or delete it") from None
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y
        save_npz(cache, **arrays)
    lesions = files["train"][2]
    rng = np.random.default_rng(seed)
    uniq = rng.permutation(np.unique(lesions))
    val = np.isin(lesions, uniq[: max(1, round(val_fraction * len(uniq)))])
    x_tr, y_tr = _to_float(arrays["train_images"]), arrays["train_labels"]
    splits = {"train": (x_tr[~val], y_tr[~val]), "val": (x_tr[val], y_tr[val]),
              "test": (_to_float(arrays["test_images"]), arrays["test_labels"])}
    val_ids = [p.stem for p, v in zip(files["train"][0], val, strict=True) if v]
    return Dataset("isic2018", size, list(ISIC["labels"]), splits, md5, ISIC["license"],
                   {"path": str(base), "val_image_ids": val_ids})


def isic_masks(image_ids: list[str], size: int, root: Path | None = None) -> np.ndarray:
    """Lesion masks (N, size, size) in {0, 1} for ISIC training images, cropped and resized like the images
    (centre square crop, nearest neighbour), from ``HAM10000_segmentations_lesion_200x150.npz``."""
    path = (root or data_dir()) / "raw" / ISIC["folder"] / "HAM10000_segmentations_lesion_200x150.npz"
    if not path.exists():  # only the val split's localisation needs them: say where they come from
        raise DataError(f"{path} not found (lesion masks); run `advxai fetch isic2018`, which converts "
                        f"HAM10000_segmentations_lesion_tschandl.zip from {HAM_PAGE}")
    arrays = load_npz(path)
    index = {str(i): k for k, i in enumerate(arrays["image_id"])}
    missing = [i for i in image_ids if i not in index]
    if missing:
        raise DataError(f"no lesion mask for {missing[:3]}{'...' if len(missing) > 3 else ''} in {path}")
    out = np.empty((len(image_ids), size, size), np.uint8)
    for n, i in enumerate(image_ids):
        img = Image.fromarray(arrays["masks"][index[i]] * 255)
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.NEAREST)
        out[n] = np.asarray(img) > 127
    return out


def lesion_masks(ds: Dataset, split: str, idx: np.ndarray) -> np.ndarray | None:
    """Lesion masks (N, H, W) for images ``idx`` of a split when the dataset has them, else None. ISIC's
    validation split has them (held-out lesions of the masked HAM10000 training set); its test split has none."""
    if ds.name != "isic2018" or split != "val":
        return None
    ids = ds.info["val_image_ids"]
    return isic_masks([ids[i] for i in np.asarray(idx)], ds.size)


# --- downloading the raw sets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a raw set, what it becomes under ``raw/<folder>/`` and how it is checked."""

    file: str  # name at the source; downloaded to raw/<file> (raw/<file>.part until complete), deleted once unpacked
    url: str
    page: str  # where a person gets it by hand (then puts it at raw/<file> and runs the fetch again)
    gb: float  # approximate download size; unpacked JPEGs take about as much again
    dest: str  # what it becomes under raw/<folder>/ ("" is that folder itself)
    unpack: str = "zip"  # key of UNPACK
    top: str = ""  # "zip": the archive's folder whose content becomes dest
    counts: dict[str, int] = field(default_factory=dict)  # images per sub-folder of dest ("": dest); csv: rows
    columns: tuple[str, ...] = ()  # "csv": the columns the loader reads
    sha256: str | None = None  # None: not recorded yet (the fetch prints it, so that a maintainer can record it)


MENDELEY = "https://data.mendeley.com/datasets/rscbjbr9sj/2"
ISIC_S3 = "https://isic-challenge-data.s3.amazonaws.com/2018"
ISIC_PAGE = "https://challenge.isic-archive.com/data/#2018"
HAM_PAGE = "https://doi.org/10.7910/DVN/DBW86T"
# Harvard Dataverse files by persistent id. UNVERIFIED here (no network): CLBHCY for the metadata is taken from a
# third-party script, EGDUDF for the masks from the HAM10000 authors' README (github.com/ptschandl/HAM10000_dataset).
DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/:persistentId?persistentId=doi:10.7910/DVN/DBW86T"

# What `fetch_raw` downloads: name -> folder under raw/ and its files, in download order (the loader's files
# first, so that an unverified extra that fails last leaves a loadable set). Sizes are approximate; no SHA-256 is
# recorded yet. ChestXRay2017.zip is Mendeley v2, the paper's split: its train holds the 16 images (8 NORMAL,
# 8 PNEUMONIA) that Kaggle later moved to a `val` folder, so train is 1349/3883, not Kaggle's 1341/3875.
RAW: dict[str, dict] = {
    "chest_xray": {"folder": "chest_xray", "archives": [
        Archive("ChestXRay2017.zip", "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
                "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded", MENDELEY, 1.2, "", top="chest_xray",
                counts={"train/NORMAL": 1349, "train/PNEUMONIA": 3883, "test/NORMAL": 234, "test/PNEUMONIA": 390}),
    ]},
    "isic2018": {"folder": "ISIC2018", "archives": [
        Archive("ISIC2018_Task3_Training_Input.zip", f"{ISIC_S3}/ISIC2018_Task3_Training_Input.zip", ISIC_PAGE, 2.6,
                "ISIC2018_Task3_Training_Input", top="ISIC2018_Task3_Training_Input", counts={"": 10015}),
        Archive("ISIC2018_Task3_Test_Input.zip", f"{ISIC_S3}/ISIC2018_Task3_Test_Input.zip", ISIC_PAGE, 0.4,
                "ISIC2018_Task3_Test_Input", top="ISIC2018_Task3_Test_Input", counts={"": 1512}),
        Archive("ISIC2018_Task3_Test_GroundTruth.zip", f"{ISIC_S3}/ISIC2018_Task3_Test_GroundTruth.zip", ISIC_PAGE,
                0.001, "ISIC2018_Task3_Test_GroundTruth", top="ISIC2018_Task3_Test_GroundTruth"),
        Archive("ISIC2018_Task3_Training_GroundTruth.zip", f"{ISIC_S3}/ISIC2018_Task3_Training_GroundTruth.zip",
                ISIC_PAGE, 0.001, "ISIC2018_Task3_Training_GroundTruth", top="ISIC2018_Task3_Training_GroundTruth"),
        Archive("HAM10000_metadata.csv", f"{DATAVERSE}/CLBHCY&format=original", HAM_PAGE, 0.001,
                "HAM10000_metadata.csv", unpack="csv", counts={"": 10015}, columns=("image_id", "lesion_id", "dx")),
        Archive("HAM10000_segmentations_lesion_tschandl.zip", f"{DATAVERSE}/EGDUDF", HAM_PAGE, 0.011,
                "HAM10000_segmentations_lesion_200x150.npz", unpack="masks", counts={"": 10015}),
    ]},
}


def fetch_raw(name: str, root: Path | None = None, base_url: str | None = None, log=print) -> Path:
    """Download, verify and unpack raw set ``name`` (a key of :data:`RAW`) into ``<root>/raw/<folder>``, the layout
    :func:`load` reads; ``advxai fetch NAME`` runs it. ``base_url`` (default: ``$ADVXAI_RAW_MIRROR``, e.g. an
    institution's copy) fetches each file from ``<base_url>/<file>`` instead of its official source.

    Parts already unpacked are skipped, a file already at ``raw/<file>`` (say, downloaded by hand) is used as is
    and a partial download resumes, so after any failure the same call continues where it stopped.
    """
    if name not in RAW:
        raise UnknownNameError(f"no download for {name!r}; fetchable: {', '.join(RAW)} (MedMNIST flags download "
                               "when loaded)")
    raw = (root or data_dir()) / "raw"
    base = raw / RAW[name]["folder"]
    todo = _not_unpacked(name, base)
    base_url = base_url or os.environ.get("ADVXAI_RAW_MIRROR")
    gb = sum(a.gb for a in todo)
    log(f"{name}: {len(todo)} file(s) to fetch into {base}: about {gb:.1f} GB to download, about as much on disk "
        f"once unpacked, about {2 * gb:.1f} GB free needed while unpacking (sizes approximate)")
    for a in todo:
        archive, url = raw / a.file, f"{base_url.rstrip('/')}/{a.file}" if base_url else a.url
        if not archive.exists():
            if os.environ.get("ADVXAI_OFFLINE"):
                raise DataError(f"{archive} is missing and ADVXAI_OFFLINE is set; download it from {a.page} there")
            try:
                _download_resumable(url, archive, log)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                raise DataError(f"cannot download {a.file} from {url} ({exc}); run the fetch again to resume, or "
                                f"get it by hand from {a.page}, put it at {archive} and run again") from None
        _check_sha256(name, archive, a, log)
        _install(name, archive, a, base / a.dest)
        archive.unlink(missing_ok=True)
        log(f"{name}: {a.file} verified and unpacked to {base / a.dest}")
    return base


def _not_unpacked(name: str, base: Path) -> list[Archive]:
    return [a for a in RAW[name]["archives"] if not (base / a.dest).exists()]


def fetch_missing(names: Iterable[str], root: Path | None = None, log=print) -> list[str]:
    """Fetch the raw sets among ``names`` that are not (all) unpacked yet, so that ``advxai run`` / ``book`` (and
    ``make book``) on a fresh machine with a network build the whole book; returns the sets fetched. A set that
    cannot be fetched is one line here, not an error: its runs then fail with the loader's message and the rest of
    the grid goes on (as without a network). ``$ADVXAI_OFFLINE``: nothing is fetched."""
    fetched = []
    for name in dict.fromkeys(n for n in names if n in RAW):
        if os.environ.get("ADVXAI_OFFLINE") or not _not_unpacked(name, (root or data_dir()) / "raw" /
                                                                 RAW[name]["folder"]):
            continue
        try:
            fetch_raw(name, root, log=log)
            fetched.append(name)
        except DataError as exc:
            log(f"advxai: {name} not fetched, its runs will fail: {exc}")
    return fetched


def _download_resumable(url: str, archive: Path, log) -> None:
    """Download ``url`` to ``archive`` through ``<archive>.part``. A ``.part`` left by a dropped connection resumes
    with an HTTP Range request where the server honours it (206); otherwise (200, or 416) it starts again from
    byte 0. Only a complete download is renamed to ``archive``."""
    part = archive.with_name(archive.name + ".part")
    archive.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:
            raise
        part.unlink()  # 416: the range does not fit the file (it changed upstream): start again
        return _download_resumable(url, archive, log)
    with resp:
        resumed = have > 0 and resp.status == 206
        if have and not resumed:
            log(f"{archive.name}: the server does not resume downloads; starting again from byte 0")
        start = have if resumed else 0
        length = int(resp.headers.get("Content-Length") or 0)
        total = start + length if length else None
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=f"download {archive.name}")
        with open(part, "ab" if resumed else "wb") as out, bar:
            while block := resp.read(1 << 20):
                out.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if total is not None and got != total:
        raise DataError(f"download of {archive.name} stopped at {got} of {total} bytes; run the fetch again to resume")
    os.replace(part, archive)


def _check_sha256(name: str, archive: Path, a: Archive, log) -> None:
    with open(archive, "rb") as f:
        got = hashlib.file_digest(f, "sha256").hexdigest()
    if a.sha256 is None:
        log(f"{a.file}: SHA-256 {got} (none recorded in data.RAW yet: record it once this download is trusted)")
    elif got != a.sha256:
        archive.unlink()
        raise DataError(f"{a.file}: SHA-256 {got} != expected {a.sha256}; the download was corrupt and is deleted: "
                        f"run `advxai fetch {name}` again")


def _install(name: str, archive: Path, a: Archive, target: Path) -> None:
    """Verify and unpack ``archive`` into ``target`` atomically: a bad archive leaves nothing at ``target`` and is
    deleted, so that the next fetch downloads it again."""
    try:
        UNPACK[a.unpack](archive, a, target)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:  # ValueError: DataError, pandas
        archive.unlink(missing_ok=True)
        raise DataError(f"{a.file} is truncated, corrupt or not the expected release ({exc}); nothing was unpacked "
                        f"and it was deleted: run `advxai fetch {name}` again") from None
    except OSError as exc:
        raise DataError(f"cannot unpack {archive} into {target.parent} ({exc}); free disk space or fix permissions, "
                        "then run the fetch again") from None


def _unpack_zip(archive: Path, a: Archive, target: Path) -> None:
    """Extract the zip's folder ``a.top`` beside ``target`` (zipfile checks every member's CRC), check its image
    counts and that every image decodes, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{a.top}/") and not _clutter(m)]
            if not members:
                raise DataError(f"no folder {a.top}/ in it")
            zf.extractall(tmp, members)
        _verify_images(tmp / a.top, a.counts)
        os.replace(tmp / a.top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clutter(member: str) -> bool:
    """macOS resource forks and hidden files that zips made on a Mac carry (``__MACOSX/``, ``._x.jpeg``)."""
    return any(part.startswith(("__MACOSX", ".")) for part in PurePosixPath(member).parts)


def _verify_images(folder: Path, counts: dict[str, int]) -> None:
    """The expected number of images per sub-folder, and every image decodes (a JPEG at 1/8 scale: still reads
    every byte, so a truncated file fails, but it is fast)."""
    for sub, n in counts.items():
        got = sum(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / sub).glob("*"))
        if got != n:
            raise DataError(f"{sub or folder.name} has {got} images, expected {n}")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    for p in tqdm(images, desc=f"verify {folder.name}", leave=False):
        try:
            with Image.open(p) as img:
                img.draft(img.mode, (64, 64))
                img.load()
        except OSError as exc:
            raise DataError(f"image {p.relative_to(folder)} does not decode ({exc})") from None


def _unpack_csv(archive: Path, a: Archive, target: Path) -> None:
    """Move a CSV into place after checking its row count and that it has the columns the loader reads."""
    import pandas as pd

    table = pd.read_csv(archive)
    n = a.counts.get("", len(table))
    if len(table) != n or not set(a.columns) <= set(table.columns):
        raise DataError(f"it has {len(table)} rows and columns {list(table.columns)[:8]}, expected {n} rows with "
                        f"columns {list(a.columns)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(archive, target)


def _unpack_masks(archive: Path, a: Archive, target: Path) -> None:
    """Tschandl's 600×450 lesion PNGs (``ISIC_…_segmentation.png``) → the arrays :func:`isic_masks` reads: masks
    area-averaged to the 200×150 of the images, thresholded at one half, with their ``image_id``s."""
    with zipfile.ZipFile(archive) as zf:
        names = sorted(m for m in zf.namelist() if m.endswith("_segmentation.png") and not _clutter(m))
        n = a.counts.get("", len(names))
        if len(names) != n:
            raise DataError(f"it has {len(names)} lesion masks, expected {n}")
        masks = np.empty((len(names), 150, 200), np.uint8)
        for i, m in enumerate(tqdm(names, desc="convert lesion masks", leave=False)):
            try:
                with zf.open(m) as f, Image.open(f) as img:
                    masks[i] = np.asarray(img.convert("L").resize((200, 150), Image.Resampling.BOX)) >= 128
            except OSError as exc:
                raise DataError(f"mask {m} does not decode ({exc})") from None
    ids = [PurePosixPath(m).name.removesuffix("_segmentation.png") for m in names]
    save_npz(target, image_id=np.array(ids), masks=masks)


# How each kind of file becomes its `dest`: (archive, entry, target) -> None; raises DataError when it is bad.
UNPACK = {"zip": _unpack_zip, "csv": _unpack_csv, "masks": _unpack_masks}


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
        base = (root or data_dir()) / "raw" / FOLDERS[name]["folder"]
        present = [s for s in ("train", "val", "test") if (base / s).is_dir()]
        if "train" not in present or "test" not in present:
            raise DataError(f"{base}/{{train,test}} not found; {KERMANY_HOWTO} {base}")
        return _folder_md5(base, present, FOLDERS[name]["labels"])
    if name == "isic2018":
        return _files_md5(_isic_files((root or data_dir()) / "raw" / ISIC["folder"]))
    raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(available())}")


def available() -> list[str]:
    """Names :func:`load` accepts (multi-label MedMNIST flags are known but refused, see :func:`check`)."""
    single = [f for f, info in MEDMNIST.items() if info["task"] in SINGLE_LABEL_TASKS]
    return sorted(single) + sorted(FOLDERS) + ["isic2018"]


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
