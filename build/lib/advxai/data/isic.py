"""ISIC 2018 Task 3 / HAM10000: images, lesion-grouped validation, official test split, lesion masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..artefacts import load_npz, save_npz
from ..errors import DataError
from .base import Dataset, _content_md5, _read_cache, _to_float, cache_dir, center_crop_resize, data_dir
from .fetch import HAM_PAGE

# ISIC 2018 Task 3 / HAM10000 (RADAR-MIX): official class order of the challenge's ground-truth CSV.
ISIC = {"folder": "ISIC2018", "labels": ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"],
        "license": "CC BY-NC 4.0",
        "howto": "download the ISIC 2018 Task 3 training/test images and ground truth from "
                 "https://challenge.isic-archive.com/data/#2018 and HAM10000_metadata.csv from Harvard Dataverse "
                 "(doi:10.7910/DVN/DBW86T) (`advxai fetch isic2018` does it all) into"}


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
