import dataclasses
import hashlib
import http.server
import io
import os
import re
import shutil
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from advxai import data
from advxai.errors import DataError, UnknownNameError

from conftest import real_slice


def test_pneumoniamnist_real_file(pneumonia):
    assert pneumonia.md5 == "28209eda62fecd6e6a2d98b1501bb15f"
    shapes = {s: x.shape for s, (x, _) in pneumonia.splits.items()}
    assert shapes == {"train": (4708, 28, 28, 1), "val": (524, 28, 28, 1), "test": (624, 28, 28, 1)}
    assert pneumonia.counts()["test"] == {"normal": 234, "pneumonia": 390}
    x, _ = pneumonia.split("train")
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0


def test_balanced_subset_is_balanced_seeded_and_sorted(pneumonia):
    _, y = pneumonia.split("test")
    idx = data.balanced_subset(y, 100, seed=3)
    assert np.bincount(y[idx]).tolist() == [50, 50]
    assert np.array_equal(idx, data.balanced_subset(y, 100, seed=3))
    assert not np.array_equal(idx, data.balanced_subset(y, 100, seed=4))
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(y[data.balanced_subset(y, 7)]).tolist() == [4, 3]


def test_unknown_names_and_bad_sizes():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist'; known: .*pneumoniamnist"):
        data.load("mnist")
    with pytest.raises(DataError, match="size must be one of"):
        data.load("pneumoniamnist", 32)


def test_corrupt_or_wrong_file_is_refused(tmp_path, data_root):
    real = (data_root / "medmnist" / "pneumoniamnist.npz").read_bytes()
    (tmp_path / "medmnist").mkdir()
    bad = tmp_path / "medmnist" / "pneumoniamnist.npz"
    bad.write_bytes(real[: len(real) // 2])  # truncated
    with pytest.raises(DataError, match="MD5 .* != official 28209eda.*delete the file"):
        data.load("pneumoniamnist", 28, root=tmp_path)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _RangeHandler(_Quiet):
    """Honours ``Range: bytes=N-`` with 206 like S3's and Mendeley's file servers (SimpleHTTPRequestHandler ignores
    it); drops the connection after ``cuts[0]`` bytes of the next response while ``cuts`` has entries."""

    seen: list  # the Range header of each request
    cuts: list

    def do_GET(self):
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        rng = self.headers.get("Range")
        self.seen.append(rng)
        start = int(rng.removeprefix("bytes=").removesuffix("-")) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:start + self.cuts.pop(0)] if self.cuts else body[start:])


def _serve(folder: Path, handler):
    """A real HTTP server on 127.0.0.1 serving a folder (the download path is tested, not mocked)."""
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_root(tmp_path):
    yield from _serve(tmp_path / "served", _Quiet)


@pytest.fixture
def range_root(tmp_path):
    """A server that resumes downloads: (folder, url, handler class with the ``seen`` and ``cuts`` lists)."""
    handler = type("Handler", (_RangeHandler,), {"seen": [], "cuts": []})
    for served, url in _serve(tmp_path / "served_range", handler):
        yield served, url, handler


def test_download_checks_md5_and_is_atomic(tmp_path, http_root, data_root):
    served, url = http_root
    shutil.copy(data_root / "medmnist" / "pneumoniamnist.npz", served / "good.npz")
    root = tmp_path / "root"
    path = data.fetch_medmnist("pneumoniamnist", 28, root=root, url=f"{url}/good.npz")
    assert data.md5sum(path) == "28209eda62fecd6e6a2d98b1501bb15f"
    assert data.load("pneumoniamnist", 28, root=root).counts()["val"] == {"normal": 135, "pneumonia": 389}

    (served / "bad.npz").write_bytes(path.read_bytes()[:1000])  # a corrupt download
    root2 = tmp_path / "root2"
    with pytest.raises(DataError, match="MD5 .* official .* corrupt"):
        data.fetch_medmnist("pneumoniamnist", 28, root=root2, url=f"{url}/bad.npz")
    assert list((root2 / "medmnist").iterdir()) == []  # no partial file left behind


def test_offline_error_names_file_and_place(tmp_path):
    with pytest.raises(DataError, match=r"cannot download pneumoniamnist_64.npz .* put the official file at "):
        data.fetch_medmnist("pneumoniamnist", 64, root=tmp_path, url="http://127.0.0.1:9/none.npz")
    assert not any((tmp_path / "medmnist").iterdir())


def test_folder_layout_real_images(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    root = real_slice(tmp_path / "d", per_class=10)
    ds = data.load("chest_xray", 32, root=root, val_fraction=0.2)
    assert ds.labels == ["NORMAL", "PNEUMONIA"]
    assert ds.split("test")[0].shape == (20, 32, 32, 1)
    n_train, n_val = len(ds.split("train")[1]), len(ds.split("val")[1])
    assert n_train + n_val == 20 and 0 < n_val == ds.info["val_images"] == len(ds.info["val_files"])
    assert ds.info["val_split"] == "grouped by patient"
    # val arrays, labels and file names stay aligned: each val label is the class folder of its file
    assert [ds.labels.index(f.split("/")[0]) for f in ds.info["val_files"]] == ds.split("val")[1].tolist()
    train_files = {f"{p.parent.name}/{p.name}" for p in (root / "raw" / "chest_xray" / "train").glob("*/*")}
    val_patients = set(data.patient_ids("chest_xray", ds.info["val_files"]))
    train_patients = set(data.patient_ids("chest_xray", train_files - set(ds.info["val_files"])))
    assert len(val_patients) == ds.info["val_patients"] and not val_patients & train_patients
    assert list((tmp_path / "cache").glob("chest_xray_32_1_*.npz"))  # decoded once, cached
    again = data.load("chest_xray", 32, root=root, val_fraction=0.2)
    assert np.array_equal(again.split("test")[0], ds.split("test")[0]) and again.md5 == ds.md5
    assert again.info["val_files"] == ds.info["val_files"]  # the cached names give the same split
    assert np.array_equal(again.split("val")[0], ds.split("val")[0])
    other = data.load("chest_xray", 32, root=root, val_fraction=0.2, seed=1)
    assert other.info["val_files"] != ds.info["val_files"]


@pytest.fixture(scope="module")
def chest_train_listing(data_root):
    """Labels and patients of all 5,216 real chest X-ray training images, from the listing (no decoding)."""
    files = sorted((data_root / "raw" / "chest_xray" / "train").glob("*/*.jpeg"))
    y = np.array([["NORMAL", "PNEUMONIA"].index(f.parent.name) for f in files])
    return y, data.patient_ids("chest_xray", [f"{f.parent.name}/{f.name}" for f in files])


def test_every_real_file_name_has_a_patient(data_root, chest_train_listing):
    y, patients = chest_train_listing
    assert len(y) == 5216 and len(np.unique(patients)) == 2846
    assert all(p.startswith(("IM-", "NORMAL2-IM-")) for p in patients[y == 0])
    assert all(p.startswith("person") for p in patients[y == 1])
    test_names = [f.name for f in (data_root / "raw" / "chest_xray" / "test").glob("*/*.jpeg")]
    assert len(data.patient_ids("chest_xray", test_names)) == 624
    examples = {"person1_virus_6.jpeg": "person1", "person1000_bacteria_2931.jpeg": "person1000",
                "person447_virus_921_1.jpeg": "person447", "IM-0115-0001.jpeg": "IM-0115",
                "IM-0429-0001-0002.jpeg": "IM-0429", "NORMAL2-IM-0007-0001.jpeg": "NORMAL2-IM-0007",
                "NORMAL2-IM-0552-0001-0002.jpeg": "NORMAL2-IM-0552"}
    assert data.patient_ids("chest_xray", list(examples)).tolist() == list(examples.values())
    oct_files = sorted((data_root / "raw" / "OCT2017" / "val").glob("*/*.jpeg"))
    oct_ids = data.patient_ids("oct2017", [f"{f.parent.name}/{f.name}" for f in oct_files])
    assert len(oct_ids) == 32 and len(set(oct_ids)) == 25
    assert data.patient_ids("oct2017", ["CNV-6294785-2.jpeg", "NORMAL-6294785-1.jpeg"]).tolist() == ["6294785"] * 2


def test_patient_split_is_grouped_stratified_and_seeded(chest_train_listing):
    y, patients = chest_train_listing
    val = data.patient_split(y, patients, 0.1, seed=0)
    assert not set(patients[val]) & set(patients[~val])  # no patient on both sides
    assert abs(val.mean() - 0.1) < 0.01
    assert abs(y[val].mean() - y[~val].mean()) < 0.02  # class shares within 2 points
    y2, p2 = y[::3], patients[::3]  # a third of the images: same code path, faster
    again = data.patient_split(y2, p2, 0.1, seed=5)
    assert np.array_equal(again, data.patient_split(y2, p2, 0.1, seed=5))
    assert not np.array_equal(again, data.patient_split(y2, p2, 0.1, seed=6))
    with pytest.raises(DataError, match="val_fraction 0.9 gives 1 folds"):
        data.patient_split(y2, p2, 0.9, seed=0)


def test_unparseable_file_name_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    root = real_slice(tmp_path / "d", per_class=3)
    normal = root / "raw" / "chest_xray" / "train" / "NORMAL"
    shutil.copyfile(next(normal.iterdir()).resolve(), normal / "scan_01.jpeg")
    with pytest.raises(DataError, match=r"chest_xray: cannot tell the patient of image 'NORMAL/scan_01.jpeg'") as err:
        data.load("chest_xray", 32, root=root)
    assert "\n" not in str(err.value)


def test_fingerprint_hashes_bytes_with_a_per_file_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    root = real_slice(tmp_path / "d", per_class=2)
    image = next((root / "raw" / "chest_xray" / "train" / "NORMAL").iterdir())
    target = image.resolve()
    image.unlink()
    shutil.copyfile(target, image)  # a copy we may edit (the real files are read-only)
    calls = []
    real_md5sum = data.md5sum
    monkeypatch.setattr(data, "md5sum", lambda p: calls.append(p) or real_md5sum(p))

    first = data.fingerprint("chest_xray", 32, root=root)
    assert len(calls) == 8 and (tmp_path / "cache" / "file_hashes.json").exists()
    assert data.fingerprint("chest_xray", 32, root=root) == first and len(calls) == 8  # warm: no bytes read

    raw = bytearray(image.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte changed, same size
    image.write_bytes(bytes(raw))
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime even on coarse-clock filesystems
    changed = data.fingerprint("chest_xray", 32, root=root)
    assert changed != first and len(calls) == 9 and calls[-1] == image  # only the edited file is re-read

    (tmp_path / "cache" / "file_hashes.json").write_text("{not json")  # a corrupt cache is ignored and rebuilt
    assert data.fingerprint("chest_xray", 32, root=root) == changed and len(calls) == 17
    assert data.fingerprint("chest_xray", 32, root=root) == changed and len(calls) == 17


def test_folder_missing_and_corrupt_image(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="chest_xray/{train,test} not found; download .*mendeley"):
        data.load("chest_xray", 32, root=tmp_path / "nothing")
    root = real_slice(tmp_path / "d", per_class=2)
    for f in (root / "raw" / "chest_xray" / "test" / "PNEUMONIA").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"no images of class\(es\) \['PNEUMONIA'\]; every class needs images"):
        data.load("chest_xray", 32, root=root)
    root = real_slice(tmp_path / "e", per_class=2)
    bad = root / "raw" / "chest_xray" / "test" / "NORMAL" / "broken.jpeg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image .*broken.jpeg.*replace or delete it"):
        data.load("chest_xray", 32, root=root)
    assert not list(Path(tmp_path / "cache").glob("*.npz"))


def _isic_slice(tmp_path: Path, n_train: int = 40, n_test: int = 14) -> Path:
    """A small ISIC 2018 tree of links to real images and the real CSV rows that describe them."""
    import pandas as pd

    src = data.data_dir() / "raw" / "ISIC2018"
    dst = tmp_path / "raw" / "ISIC2018"
    meta = pd.read_csv(src / "HAM10000_metadata.csv")
    meta = meta[meta.lesion_id.isin(meta.lesion_id.drop_duplicates().iloc[:n_train])]
    gt = pd.read_csv(src / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv").iloc[:n_test]
    for sub, ids in (("ISIC2018_Task3_Training_Input", meta.image_id), ("ISIC2018_Task3_Test_Input", gt.image)):
        (dst / sub).mkdir(parents=True)
        for i in ids:
            (dst / sub / f"{i}.jpg").symlink_to(src / sub / f"{i}.jpg")
    meta.to_csv(dst / "HAM10000_metadata.csv", index=False)
    (dst / "ISIC2018_Task3_Test_GroundTruth").mkdir()
    gt.to_csv(dst / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv", index=False)
    return tmp_path


def test_isic_real_slice_labels_crop_and_lesion_split(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    root = _isic_slice(tmp_path / "d")
    ds = data.load("isic2018", 32, root=root, val_fraction=0.25)
    assert ds.labels == ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"] and ds.license == "CC BY-NC 4.0"
    meta = pd.read_csv(root / "raw" / "ISIC2018" / "HAM10000_metadata.csv")
    assert len(ds.split("train")[1]) + len(ds.split("val")[1]) == len(meta)
    assert ds.split("test")[0].shape == (14, 32, 32, 3)
    gt = pd.read_csv(root / "raw" / "ISIC2018" / "ISIC2018_Task3_Test_GroundTruth" /
                     "ISIC2018_Task3_Test_GroundTruth.csv")
    assert np.array_equal(ds.split("test")[1], gt[ds.labels].to_numpy().argmax(1))
    # the split is by lesion: val holds 10 of the 40 lesions, and no lesion has images on both sides
    in_val = meta.image_id.isin(ds.info["val_image_ids"])
    assert in_val.sum() == len(ds.split("val")[1])
    assert meta[in_val].lesion_id.nunique() == 10
    assert not set(meta[in_val].lesion_id) & set(meta[~in_val].lesion_id)


def test_isic_missing_ground_truth_is_named(tmp_path):
    with pytest.raises(DataError, match="lacks HAM10000_metadata.csv or the test ground truth; download the ISIC"):
        data.load("isic2018", 32, root=tmp_path)


def test_isic_lesion_masks_align_with_images(data_root):
    masks = data.isic_masks(["ISIC_0027419", "ISIC_0025030"], 32)
    assert masks.shape == (2, 32, 32) and set(np.unique(masks)) <= {0, 1}
    assert 0.02 < masks.mean() < 0.98  # a lesion, not the whole frame
    with pytest.raises(DataError, match="no lesion mask for \\['ISIC_0034524'\\]"):
        data.isic_masks(["ISIC_0034524"], 32)  # a test image: masks exist for training images only
