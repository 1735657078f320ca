"""Datasets: MedMNIST `.npz` files and the raw folder layouts the seed papers used.

Every loader returns a :class:`Dataset` whose images are float32 in [0, 1], shaped (N, H, W, C), so that
attacks work in pixel space with ``clip_values=(0, 1)``. Where a file is missing it is downloaded from its
official source and MD5-checked; offline, the error names the file and where to put it.

The data directory is ``$ADVXAI_DATA`` (default ``data/`` in the working directory) with the layout
``medmnist/<flag>[_<size>].npz`` and ``raw/chest_xray/...``, ``raw/OCT2017/...`` (the layout of the
shared copies, so ``ADVXAI_DATA=../shared/data`` works as is).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .artefacts import atomic_path, load_npz, save_npz
from .errors import DataError, UnknownNameError

ZENODO = "https://zenodo.org/records/10519652/files"
SIZES = (28, 64, 128, 224)

# Official MedMNIST v2/+ single-label 2D sets: flag -> (labels, MD5 per size). Facts copied from the
# MedMNIST `info.py` (Zenodo record 10519652) so that the `medmnist` package (and torch) is not needed.
MEDMNIST: dict[str, dict] = {
    "pneumoniamnist": {
        "labels": ["normal", "pneumonia"],
        "md5": {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
        "license": "CC BY 4.0",
    },
    "octmnist": {
        "labels": ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
        "md5": {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
                128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"},
        "license": "CC BY 4.0",
    },
    "dermamnist": {
        "labels": ["actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi",
                   "vascular lesions"],
        "md5": {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
                128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"},
        "license": "CC BY-NC 4.0",
    },
    "breastmnist": {
        "labels": ["malignant", "normal, benign"],
        "md5": {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
                128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"},
        "license": "CC BY 4.0",
    },
    "bloodmnist": {
        "labels": ["basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte",
                   "monocyte", "neutrophil", "platelet"],
        "md5": {28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
                128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601"},
        "license": "CC BY 4.0",
    },
    "pathmnist": {
        "labels": ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                   "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma epithelium"],
        "md5": {28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
                128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec"},
        "license": "CC BY 4.0",
    },
}

# Raw folder datasets of the seeds: name -> (sub-folder of raw/, classes, splits on disk, how to get it).
# Kermany et al. 2018 sit behind a Kaggle / Mendeley login, so the project cannot fetch them itself.
KERMANY_HOWTO = ("download 'ChestXRay2017.zip' / 'OCT2017.tar.gz' from https://data.mendeley.com/datasets/"
                 "rscbjbr9sj/2 (or Kaggle paultimothymooney/chest-xray-pneumonia, kermany2018) and unpack it to")
FOLDERS: dict[str, dict] = {
    "chest_xray": {"folder": "chest_xray", "labels": ["NORMAL", "PNEUMONIA"], "license": "CC BY 4.0"},
    "oct2017": {"folder": "OCT2017", "labels": ["CNV", "DME", "DRUSEN", "NORMAL"], "license": "CC BY 4.0"},
}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}

# ISIC 2018 Task 3 / HAM10000 (RADAR-MIX): official class order of the challenge's ground-truth CSV.
ISIC = {"folder": "ISIC2018", "labels": ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"],
        "license": "CC BY-NC 4.0",
        "howto": "download the ISIC 2018 Task 3 training/test images and ground truth from "
                 "https://challenge.isic-archive.com/data/#2018 and HAM10000_metadata.csv from Harvard Dataverse "
                 "(doi:10.7910/DVN/DBW86T) into"}


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


def fetch_medmnist(flag: str, size: int = 28, root: Path | None = None, url: str | None = None) -> Path:
    """Path of a verified MedMNIST file, downloading it (MD5-checked) when it is missing."""
    info = _medmnist_info(flag, size)
    path = (root or data_dir()) / "medmnist" / medmnist_filename(flag, size)
    expected = info["md5"][size]
    if path.exists():
        got = md5sum(path)
        if got != expected:
            raise DataError(f"{path}: MD5 {got} != official {expected}; delete the file to download it again")
        return path
    if os.environ.get("ADVXAI_OFFLINE"):
        raise DataError(f"{path} is missing and ADVXAI_OFFLINE is set; download {medmnist_url(flag, size)} there")
    return download(url or medmnist_url(flag, size), path, expected)


def load_medmnist(flag: str, size: int = 28, root: Path | None = None) -> Dataset:
    path = fetch_medmnist(flag, size, root)
    try:
        with np.load(path) as npz:
            splits = {s: (_to_float(npz[f"{s}_images"]), npz[f"{s}_labels"].reshape(-1).astype(np.int64))
                      for s in ("train", "val", "test")}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path} is not a valid MedMNIST file ({exc}); delete it to download it again") from None
    info = MEDMNIST[flag]
    return Dataset(flag, size, list(info["labels"]), splits, md5sum(path), info["license"],
                   {"source": medmnist_url(flag, size), "path": str(path)})


def _medmnist_info(flag: str, size: int) -> dict:
    if flag not in MEDMNIST:
        raise UnknownNameError(f"unknown MedMNIST flag {flag!r}; known: {', '.join(sorted(MEDMNIST))}")
    if size not in SIZES:
        raise DataError(f"MedMNIST size must be one of {SIZES}, got {size}")
    return MEDMNIST[flag]


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


def _read_folder(folder: Path, labels: list[str], size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    files, y = _list_images(folder, labels)
    x = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, f in enumerate(tqdm(files, desc=f"read {folder.name}", leave=False)):
        try:
            with Image.open(f) as img:
                x[i] = center_crop_resize(img, size, channels)
        except OSError as exc:
            raise DataError(f"cannot read image {f} ({exc}); replace or delete it") from None
    return x, y


def load_folder(name: str, size: int = 64, root: Path | None = None, val_fraction: float = 0.1,
                seed: int = 0, channels: int = 1) -> Dataset:
    """Kaggle ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}`` or ``OCT2017/{train,test}/{CNV,...}``.

    Images are centre-cropped and resized like MedMNIST. Where the folder has no ``val`` split (or one too
    small to stop on: Kaggle's has 16 images), a stratified ``val_fraction`` of train becomes validation.
    Decoded arrays are cached in :func:`cache_dir` under a name keyed by the file list's fingerprint.
    """
    info = FOLDERS[name]
    base = (root or data_dir()) / "raw" / info["folder"]
    labels = info["labels"]
    md5 = fingerprint(name, size, root)
    present = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    cache = cache_dir() / f"{name}_{size}_{channels}_{md5[:12]}.npz"
    arrays = _read_cache(cache)
    if arrays is None:
        arrays = {}
        for s in present:
            arrays[f"{s}_images"], arrays[f"{s}_labels"] = _read_folder(base / s, labels, size, channels)
        save_npz(cache, **arrays)
    splits = {s: (_to_float(arrays[f"{s}_images"]), arrays[f"{s}_labels"]) for s in present}
    if len(splits.get("val", ((), ()))[1]) < 100:
        splits["train"], splits["val"] = stratified_split(*splits["train"], val_fraction, seed)
    return Dataset(name, size, list(labels), splits, md5, info["license"], {"path": str(base)})


def _folder_md5(base: Path, splits: list[str], labels: list[str]) -> str:
    """A content fingerprint of a folder dataset: names and sizes of every image (cheap, order-stable)."""
    h = hashlib.md5()
    for s in splits:
        files, y = _list_images(base / s, labels)
        empty = [lab for k, lab in enumerate(labels) if not np.any(y == k)]
        if empty:  # a split without a class cannot be trained on or evaluated (AUC, specificity)
            raise DataError(f"{base / s} has no images of class(es) {empty}; every class needs images in every split")
        for f, k in zip(files, y, strict=True):
            h.update(f"{s}/{k}/{f.name}/{f.stat().st_size}\n".encode())
    return h.hexdigest()


def _read_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return load_npz(path)
    except DataError:
        path.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
        return None


def stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == k))[: max(1, round(fraction * np.sum(y == k)))]
                          for k in np.unique(y)])
    mask = np.zeros(len(y), bool)
    mask[val] = True
    return (x[~mask], y[~mask]), (x[mask], y[mask])


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
    h = hashlib.md5()
    for split, (paths, y, _) in files.items():
        for p, k in zip(paths, y, strict=True):
            if not p.exists():
                raise DataError(f"image {p} listed in the ground truth is missing; {ISIC['howto']} {p.parent.parent}")
            h.update(f"{split}/{k}/{p.name}/{p.stat().st_size}\n".encode())
    return h.hexdigest()


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


# --- registry ------------------------------------------------------------------------------------------


def load(name: str, size: int = 28, root: Path | None = None, **kw) -> Dataset:
    """Load a dataset by registry name: a MedMNIST flag (``pneumoniamnist``…) or a folder set (``chest_xray``)."""
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
    return sorted(MEDMNIST) + sorted(FOLDERS) + ["isic2018"]


def balanced_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` images with (as near as possible) equal counts per class, drawn with a seeded RNG.

    The seeds attack 100 class-balanced test images. When ``n`` is not divisible by the number of classes
    the first classes get one more; a class with too few images gives all it has.
    """
    classes = np.unique(y)
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    rng = np.random.default_rng(seed)
    per = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    idx = [rng.permutation(np.flatnonzero(y == k))[:m] for k, m in zip(classes, per, strict=True)]
    return np.sort(np.concatenate(idx))
