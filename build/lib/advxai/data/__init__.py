"""Data layer: the datasets the book attacks, as float32 images in [0, 1] shaped (N, H, W, C).

MedMNIST `.npz` files and the raw folder layouts the seed papers used (Kermany chest X-ray, ISIC 2018). Where a
file is missing it is downloaded from its official source and MD5-checked; the raw sets download on request
(:func:`fetch_raw`, ``advxai fetch NAME``). The data directory is ``$ADVXAI_DATA`` (default ``data/``) with the layout
``medmnist/<flag>[_<size>].npz`` and ``raw/chest_xray/...``, ``raw/OCT2017/...``, ``raw/ISIC2018/...``.

Modules: ``catalog`` (the registry: names, checks, :func:`load`), ``base`` (the :class:`Dataset`, folders, MD5s),
``medmnist``, ``folders`` (Kermany sets, patient-grouped validation), ``isic`` (lesion-grouped validation, masks),
``fetch`` (downloads), ``samples`` (class-balanced draws). This package's names are the data API:
``from advxai import data; data.load("pneumoniamnist", 28)``.

May import: ``advxai.errors``, ``advxai.artefacts`` only (nothing that knows about models)."""

from __future__ import annotations

from .base import IMAGE_SUFFIXES, Dataset, cache_dir, center_crop_resize, data_dir, file_hashes, md5sum
from .catalog import available, check, fingerprint, load
from .fetch import DATAVERSE, HAM_PAGE, ISIC_PAGE, ISIC_S3, MENDELEY, RAW, UNPACK, Archive, fetch_missing, fetch_raw
from .folders import FOLDERS, KERMANY_HOWTO, folder_fingerprint, load_folder, patient_ids, patient_split
from .isic import ISIC, isic_masks, lesion_masks, load_isic
from .medmnist import (
    MEDMNIST,
    SINGLE_LABEL_TASKS,
    SIZES,
    ZENODO,
    download,
    fetch_medmnist,
    load_medmnist,
    medmnist_filename,
    medmnist_url,
)
from .samples import balanced_subset, check_sample, split_size

__all__ = [
    "IMAGE_SUFFIXES", "Dataset", "data_dir", "cache_dir", "md5sum", "center_crop_resize", "file_hashes",
    "ZENODO", "SIZES", "MEDMNIST", "SINGLE_LABEL_TASKS", "medmnist_filename", "medmnist_url", "download",
    "fetch_medmnist", "load_medmnist", "KERMANY_HOWTO", "FOLDERS", "folder_fingerprint", "load_folder", "patient_ids",
    "patient_split", "ISIC", "load_isic", "isic_masks", "lesion_masks", "Archive", "MENDELEY", "ISIC_PAGE",
    "HAM_PAGE", "DATAVERSE", "ISIC_S3", "RAW", "fetch_raw", "fetch_missing", "UNPACK", "split_size",
    "check_sample", "balanced_subset", "check", "load", "fingerprint", "available",
]
