"""MedMNIST v2/+ `.npz` files: the official facts of every 2D flag, download with MD5 check, loading."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..artefacts import atomic_path
from ..errors import DataError, UnknownNameError
from .base import Dataset, _to_float, data_dir, md5sum

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
