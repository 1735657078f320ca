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
from PIL import Image

from advxai import artefacts, data
from advxai.errors import DataError, ParameterError, UnknownNameError

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
    monkeypatch.setattr(data.base, "md5sum", lambda p: calls.append(p) or real_md5sum(p))

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


# --- MedMNIST: every official 2D flag -------------------------------------------------------------------

N_CLASSES = {"pathmnist": 9, "chestmnist": 14, "dermamnist": 7, "octmnist": 4, "pneumoniamnist": 2, "retinamnist": 5,
             "breastmnist": 2, "bloodmnist": 8, "tissuemnist": 8, "organamnist": 11, "organcmnist": 11,
             "organsmnist": 11}
RGB = {"pathmnist", "dermamnist", "bloodmnist", "retinamnist"}
SINGLE_LABEL = [f for f in N_CLASSES if f != "chestmnist"]


def test_medmnist_table_has_every_2d_flag_and_size():
    assert list(data.MEDMNIST) == list(N_CLASSES)  # the official order
    md5s = {(f, s): m for f, info in data.MEDMNIST.items() for s, m in info["md5"].items()}
    assert len(md5s) == 48 and {s for _, s in md5s} == set(data.SIZES)
    assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in md5s.values()) and len(set(md5s.values())) == 48
    assert {f: len(info["labels"]) for f, info in data.MEDMNIST.items()} == N_CLASSES
    assert {f for f, info in data.MEDMNIST.items() if info["channels"] == 3} == RGB
    assert data.MEDMNIST["retinamnist"]["task"] == "ordinal-regression"  # 5 grades, loaded as 5 classes
    assert data.medmnist_url("organsmnist", 28) == f"{data.ZENODO}/organsmnist.npz?download=1"
    assert data.medmnist_url("organsmnist", 224) == f"{data.ZENODO}/organsmnist_224.npz?download=1"
    assert set(data.available()) == set(SINGLE_LABEL) | {"chest_xray", "oct2017", "isic2018"}


def _medmnist_file(root: Path, flag: str, size: int, **override) -> str:
    """A small file in the official layout of ``flag`` at its official path under ``root``; returns its MD5."""
    info = data.MEDMNIST[flag]
    n, rng, arrays = len(info["labels"]), np.random.default_rng(0), {}
    for split, count in (("train", 2 * n), ("val", n), ("test", n)):
        shape = (count, size, size) + ((3,) if info["channels"] == 3 else ())
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % n).astype(np.uint8).reshape(-1, 1)
    path = root / "medmnist" / data.medmnist_filename(flag, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **(arrays | override))
    return data.md5sum(path)


@pytest.mark.parametrize("flag,size", [(f, data.SIZES[i % 4]) for i, f in enumerate(SINGLE_LABEL)])
def test_each_single_label_flag_loads_its_official_layout(tmp_path, flag, size):
    md5 = _medmnist_file(tmp_path, flag, size)
    ds = data.load_medmnist(flag, size, root=tmp_path, md5=md5)
    n, channels = N_CLASSES[flag], 3 if flag in RGB else 1
    assert ds.n_classes == len(ds.labels) == n and ds.md5 == md5 and ds.info["task"] == data.MEDMNIST[flag]["task"]
    for split, count in (("train", 2 * n), ("val", n), ("test", n)):
        x, y = ds.split(split)
        assert x.shape == (count, size, size, channels) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
        assert y.dtype == np.int64 and y.tolist() == [k % n for k in range(count)]

    md5 = _medmnist_file(tmp_path / "bad", flag, size, test_labels=np.full((n, 1), n, np.uint8))
    with pytest.raises(DataError, match=rf"test labels span {n}..{n}, outside the label map 0..{n - 1} \({n} cl"):
        data.load_medmnist(flag, size, root=tmp_path / "bad", md5=md5)


def test_medmnist_file_of_the_wrong_layout_is_refused(tmp_path):
    grey = np.zeros((18, 28, 28), np.uint8)  # pathmnist is RGB
    md5 = _medmnist_file(tmp_path, "pathmnist", 28, train_images=grey)
    with pytest.raises(DataError, match=r"train images uint8 \(18, 28, 28\) .* not the official layout "
                                        r"\(uint8 \(N, 28, 28, 3\) and \(N, 1\)\)") as err:
        data.load_medmnist("pathmnist", 28, root=tmp_path, md5=md5)
    assert "\n" not in str(err.value)


def test_chestmnist_is_refused_in_one_line(tmp_path):
    for refuse in (lambda: data.check("chestmnist", 28), lambda: data.load("chestmnist", 64, root=tmp_path),
                   lambda: data.fingerprint("chestmnist", 28)):
        with pytest.raises(DataError, match=r"^chestmnist is multi-label, binary-class \(14 findings per image\); "
                                            r"advxai's attacks and metrics are single-label: pick another flag$"):
            refuse()
    assert not (tmp_path / "medmnist").exists()  # refused before any download


def test_unknown_flag_and_missing_size_name_the_fix():
    with pytest.raises(UnknownNameError, match=r"^unknown dataset 'organmnist'; known: .*organamnist, organcmnist"):
        data.check("organmnist", 28)  # the MedMNIST v1 name
    with pytest.raises(DataError, match=r"^octmnist: size must be one of \(28, 64, 128, 224\), got 32; set the "
                                        r"dataset's size to one of them$"):
        data.check("octmnist", 32)
    with pytest.raises(DataError, match="^chest_xray: size must be a positive number of pixels, got 0$"):
        data.check("chest_xray", 0)
    for name, size in (("retinamnist", 224), ("isic2018", 64), ("oct2017", 300)):
        data.check(name, size)  # accepted


# --- raw sets: download, verify, unpack atomically ------------------------------------------------------


def _chest_zip(path: Path, per_class: int = 4) -> dict[str, int]:
    """ChestXRay2017.zip in the official layout, chest_xray/{train,test}/{NORMAL,PNEUMONIA}/, from the first real
    images of each class, plus the clutter a zip made on a Mac carries (to be ignored); returns the counts."""
    src, counts = data.data_dir() / "raw" / "chest_xray", {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for split in ("train", "test"):
            for cls in ("NORMAL", "PNEUMONIA"):
                files = sorted((src / split / cls).glob("*.jpeg"))[:per_class]
                for f in files:
                    zf.write(f, f"chest_xray/{split}/{cls}/{f.name}")
                counts[f"{split}/{cls}"] = len(files)
        zf.writestr(f"__MACOSX/chest_xray/test/PNEUMONIA/._{files[0].name}", b"\0\5\26\7")
        zf.writestr("chest_xray/.DS_Store", b"\0\0\0\1Bud1")
    return counts


def _chest_registry(monkeypatch, **changes):
    """Change fields of the chest X-ray archive's registry entry for one test."""
    entry = data.RAW["chest_xray"]
    monkeypatch.setitem(data.RAW, "chest_xray",
                        dict(entry, archives=[dataclasses.replace(entry["archives"][0], **changes)]))


@pytest.fixture
def chest_zip(tmp_path, monkeypatch):
    """A small real ChestXRay2017.zip, and a registry entry that expects its counts (the real one expects 5,856)."""
    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "ChestXRay2017.zip"
    _chest_registry(monkeypatch, counts=_chest_zip(path))
    return path


def _quiet(*_):
    pass


def test_fetch_raw_unpacks_a_verified_archive_the_loader_reads(tmp_path, http_root, chest_zip):
    served, url = http_root
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    root, lines = tmp_path / "root", []
    base = data.fetch_raw("chest_xray", root=root, base_url=url, log=lines.append)
    assert base == root / "raw" / "chest_xray"
    assert lines[0].startswith(f"chest_xray: 1 file(s) to fetch into {base}: about 1.2 GB to download")
    sha = hashlib.sha256(chest_zip.read_bytes()).hexdigest()
    assert f"ChestXRay2017.zip: SHA-256 {sha} (none recorded in data.RAW yet" in lines[1]
    assert sorted(p.name for p in (root / "raw").iterdir()) == ["SHA256SUMS", "chest_xray"]  # no archive, .part, tmp
    assert (root / "raw" / "SHA256SUMS").read_text() == f"{sha}  ChestXRay2017.zip\n"  # `sha256sum -c` reads it
    assert not list(base.rglob(".*")) and not list(base.rglob("__MACOSX"))  # the Mac clutter stayed in the zip
    ds = data.load("chest_xray", 28, root=root, val_fraction=0.5)
    assert ds.counts()["test"] == {"NORMAL": 4, "PNEUMONIA": 4} and ds.split("test")[0].shape == (8, 28, 28, 1)
    assert len(ds.split("train")[1]) + len(ds.split("val")[1]) == 8

    lines.clear()  # fetched: a second call has nothing to do (and needs no network)
    data.fetch_raw("chest_xray", root=root, base_url="http://127.0.0.1:9", log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("chest_xray: 0 file(s) to fetch")


def test_run_fetches_only_the_missing_raw_sets(tmp_path, http_root, chest_zip, monkeypatch):
    """What `advxai run` / `book` do before planning: fetch a missing raw set (from $ADVXAI_RAW_MIRROR here), leave
    present sets and MedMNIST flags alone, and turn a failed fetch into one line (its runs fail, others go on)."""
    served, url = http_root
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    monkeypatch.delenv("ADVXAI_OFFLINE", raising=False)
    monkeypatch.setenv("ADVXAI_RAW_MIRROR", url)
    root, lines = tmp_path / "root", []
    assert data.fetch_missing(["pneumoniamnist", "chest_xray"], root=root, log=lines.append) == ["chest_xray"]
    assert data.load("chest_xray", 28, root=root, val_fraction=0.5).counts()["test"] == {"NORMAL": 4, "PNEUMONIA": 4}
    monkeypatch.setenv("ADVXAI_RAW_MIRROR", "http://127.0.0.1:9")  # nothing listens: present sets need no network
    lines.clear()
    assert data.fetch_missing(["chest_xray"], root=root, log=lines.append) == [] and lines == []
    assert data.fetch_missing(["chest_xray"], root=tmp_path / "other", log=lines.append) == []
    assert len(lines) == 2 and lines[1].startswith("advxai: chest_xray not fetched, its runs will fail: cannot "
                                                   "download ChestXRay2017.zip from http://127.0.0.1:9/")
    assert not (tmp_path / "other" / "raw" / "chest_xray").exists()
    monkeypatch.setenv("ADVXAI_OFFLINE", "1")
    lines.clear()
    assert data.fetch_missing(["chest_xray"], root=tmp_path / "third", log=lines.append) == [] and lines == []


def test_archive_put_by_hand_is_verified_without_downloading(tmp_path, chest_zip, monkeypatch):
    raw = tmp_path / "root" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(chest_zip, raw / "ChestXRay2017.zip")
    data.fetch_raw("chest_xray", root=tmp_path / "root", base_url="http://127.0.0.1:9", log=_quiet)
    assert len(list((raw / "chest_xray").glob("*/*/*.jpeg"))) == 16
    shutil.copy(chest_zip, raw / "ChestXRay2017.zip")
    shutil.rmtree(raw / "chest_xray")
    _chest_registry(monkeypatch, counts=data.RAW["chest_xray"]["archives"][0].counts | {"train/NORMAL": 1349})
    with pytest.raises(DataError, match=r"not the expected release \(train/NORMAL has 4 images, expected 1349\)"):
        data.fetch_raw("chest_xray", root=tmp_path / "root", log=_quiet)
    assert [p.name for p in raw.iterdir()] == ["SHA256SUMS"]  # the first fetch's record; no archive, no set


def test_partial_download_restarts_when_the_server_cannot_resume(tmp_path, http_root, chest_zip):
    served, url = http_root  # SimpleHTTPRequestHandler ignores Range: 200 with the whole file
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    raw = tmp_path / "root" / "raw"
    raw.mkdir(parents=True)
    (raw / "ChestXRay2017.zip.part").write_bytes(b"stale bytes of an older attempt" * 100)
    lines = []
    data.fetch_raw("chest_xray", root=tmp_path / "root", base_url=url, log=lines.append)
    assert "ChestXRay2017.zip: the server does not resume downloads; starting again from byte 0" in lines
    assert len(list((raw / "chest_xray").glob("*/*/*.jpeg"))) == 16 and not (raw / "ChestXRay2017.zip.part").exists()


def test_dropped_download_resumes_with_a_range_request(tmp_path, range_root, chest_zip):
    served, url, handler = range_root
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    size, half = chest_zip.stat().st_size, chest_zip.stat().st_size // 2
    handler.cuts.append(half)  # the first response stops halfway, as when a connection drops
    root = tmp_path / "root"
    with pytest.raises(DataError, match=rf"stopped at {half} of {size} bytes; run the fetch again to resume"):
        data.fetch_raw("chest_xray", root=root, base_url=url, log=_quiet)
    assert [p.name for p in (root / "raw").iterdir()] == ["ChestXRay2017.zip.part"]  # kept, nothing unpacked
    data.fetch_raw("chest_xray", root=root, base_url=url, log=_quiet)
    assert handler.seen == [None, f"bytes={half}-"]  # only the missing half was asked for
    assert len(list((root / "raw" / "chest_xray").glob("*/*/*.jpeg"))) == 16


def _damaged(zip_bytes: bytes, damage: str) -> bytes:
    raw, mid = bytearray(zip_bytes), len(zip_bytes) // 2
    if damage == "truncated":
        del raw[len(raw) * 2 // 3:]
    elif damage == "corrupt":
        raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])  # bytes flipped in the middle
    else:  # a sound zip holding a truncated JPEG (its CRC matches): only decoding the image finds it
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as src, zipfile.ZipFile(out := io.BytesIO(), "w") as dst:
            for i, m in enumerate(src.namelist()):
                dst.writestr(m, src.read(m)[: None if i else 5000])
        return out.getvalue()
    return bytes(raw)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "undecodable"])
def test_bad_archive_leaves_nothing_unpacked(tmp_path, http_root, chest_zip, damage):
    served, url = http_root
    (served / "ChestXRay2017.zip").write_bytes(_damaged(chest_zip.read_bytes(), damage))
    root = tmp_path / "root"
    with pytest.raises(DataError, match=r"^ChestXRay2017.zip is truncated, corrupt or not the expected release \(.*\); "
                                        r"nothing was unpacked and it was deleted: run `advxai fetch chest_xray` "
                                        r"again$") as err:
        data.fetch_raw("chest_xray", root=root, base_url=url, log=_quiet)
    cause = {"truncated": "File is not a zip file", "corrupt": "Bad CRC-32|Error -3|Bad magic|differ",
             "undecodable": r"image train/NORMAL/\S+.jpeg does not decode \(image file is truncated"}[damage]
    assert re.search(cause, str(err.value)) and "\n" not in str(err.value)
    assert list((root / "raw").iterdir()) == []  # no chest_xray, no temporary folder, no archive, no .part


def test_known_sha256_is_enforced(tmp_path, http_root, chest_zip, monkeypatch):
    served, url = http_root
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    _chest_registry(monkeypatch, sha256="0" * 64)
    with pytest.raises(DataError, match=r"^ChestXRay2017.zip: SHA-256 [0-9a-f]{64} != expected 0{64} \(data.RAW\); the "
                                        r"download was corrupt or the source changed, and it is deleted: run "
                                        r"`advxai fetch chest_xray` again$"):
        data.fetch_raw("chest_xray", root=tmp_path / "a", base_url=url, log=_quiet)
    assert list((tmp_path / "a" / "raw").iterdir()) == []
    _chest_registry(monkeypatch, sha256=hashlib.sha256(chest_zip.read_bytes()).hexdigest())
    lines = []
    data.fetch_raw("chest_xray", root=tmp_path / "b", base_url=url, log=lines.append)
    assert not any("SHA-256" in line for line in lines) and (tmp_path / "b" / "raw" / "chest_xray" / "test").is_dir()


def test_the_first_downloads_sha256_is_recorded_and_a_changed_source_is_refused(tmp_path, http_root, chest_zip):
    """No pin in the catalog: the first download is recorded, and once the set is deleted, a download that differs
    from it is one line before anything is unpacked."""
    served, url = http_root
    shutil.copy(chest_zip, served / "ChestXRay2017.zip")
    root = tmp_path / "root"
    data.fetch_raw("chest_xray", root=root, base_url=url, log=_quiet)
    shutil.rmtree(root / "raw" / "chest_xray")
    (served / "ChestXRay2017.zip").write_bytes(chest_zip.read_bytes() + b"\0")  # the same zip, one byte longer
    with pytest.raises(DataError, match=r"!= expected [0-9a-f]{64} \(.*SHA256SUMS\); the download was corrupt or "
                                        r"the source changed, and it is deleted: .* if you trust the new file, delete "
                                        r"its line from .*SHA256SUMS first$"):
        data.fetch_raw("chest_xray", root=root, base_url=url, log=_quiet)
    assert sorted(p.name for p in (root / "raw").iterdir()) == ["SHA256SUMS"]  # nothing unpacked, archive deleted
    (root / "raw" / "ChestXRay2017.zip").write_bytes(b"put here by hand")  # the user's own file: refused, kept
    with pytest.raises(DataError, match=r"the source changed: run `advxai fetch chest_xray` again; if you trust"):
        data.fetch_raw("chest_xray", root=root, log=_quiet)
    assert (root / "raw" / "ChestXRay2017.zip").exists()


def test_cli_fetch_error_is_one_line_naming_the_fix(tmp_path, monkeypatch, capsys):
    from advxai.runner import cli

    monkeypatch.setenv("ADVXAI_DATA", str(tmp_path))
    assert cli.main(["fetch", "chest_xray", "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    archive = tmp_path / "raw" / "ChestXRay2017.zip"
    assert err.startswith("advxai: error: cannot download ChestXRay2017.zip from http://127.0.0.1:9/ChestXRay2017.zip")
    assert err.endswith(f"get it by hand from {data.MENDELEY}, put it at {archive} and run again")


def _zip(path: Path, members: dict[str, Path | bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content if isinstance(content, bytes) else content.read_bytes())


def test_fetch_isic2018_unpacks_images_and_csvs_and_converts_the_masks(tmp_path, http_root, monkeypatch):
    """The ISIC archives in their official layouts, built from real images, CSV rows and lesion masks (upscaled to
    Tschandl's 600×450 PNGs), fetched and read back by the loader."""
    import pandas as pd

    monkeypatch.setenv("ADVXAI_CACHE", str(tmp_path / "cache"))
    served, url = http_root
    src = data.data_dir() / "raw" / "ISIC2018"
    meta = pd.read_csv(src / "HAM10000_metadata.csv").iloc[:12]
    test_gt = pd.read_csv(src / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv").iloc[:5]
    train_gt = pd.read_csv(src / "ISIC2018_Task3_Training_GroundTruth" /
                           "ISIC2018_Task3_Training_GroundTruth_reconstructed.csv").iloc[:12]
    shared = artefacts.load_npz(src / "HAM10000_segmentations_lesion_200x150.npz")
    index = {str(i): k for k, i in enumerate(shared["image_id"])}

    def png(mask: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.kron(mask, np.ones((3, 3), np.uint8)) * 255).save(out, "PNG")
        return out.getvalue()

    tin, tst = "ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Test_Input"
    _zip(served / f"{tin}.zip", {f"{tin}/{i}.jpg": src / tin / f"{i}.jpg" for i in meta.image_id}
         | {f"{tin}/LICENSE.txt": b"CC BY-NC 4.0"})
    _zip(served / f"{tst}.zip", {f"{tst}/{i}.jpg": src / tst / f"{i}.jpg" for i in test_gt.image})
    for part, table in (("Test", test_gt), ("Training", train_gt)):
        folder = f"ISIC2018_Task3_{part}_GroundTruth"
        _zip(served / f"{folder}.zip", {f"{folder}/{folder}.csv": table.to_csv(index=False).encode()})
    meta.to_csv(served / "HAM10000_metadata.csv", index=False)
    _zip(served / "HAM10000_segmentations_lesion_tschandl.zip",
         {f"HAM10000_segmentations_lesion_tschandl/{i}_segmentation.png": png(shared["masks"][index[i]])
          for i in meta.image_id})
    counts = {f"{tin}.zip": 12, f"{tst}.zip": 5, "HAM10000_metadata.csv": 12,
              "HAM10000_segmentations_lesion_tschandl.zip": 12}
    monkeypatch.setitem(data.RAW, "isic2018", dict(data.RAW["isic2018"], archives=[
        dataclasses.replace(a, counts={"": counts[a.file]} if a.file in counts else {})
        for a in data.RAW["isic2018"]["archives"]]))

    root = tmp_path / "root"
    base = data.fetch_raw("isic2018", root=root, base_url=url, log=_quiet)
    assert sorted(p.name for p in (root / "raw").iterdir()) == ["ISIC2018", "SHA256SUMS"]
    assert sorted(p.name for p in base.iterdir()) == sorted(["HAM10000_metadata.csv", "ISIC2018_Task3_Test_Input",
        "HAM10000_segmentations_lesion_200x150.npz", "ISIC2018_Task3_Test_GroundTruth", tin,
        "ISIC2018_Task3_Training_GroundTruth"])  # fmt: skip
    ds = data.load("isic2018", 32, root=root, val_fraction=0.5)
    assert ds.split("test")[0].shape == (5, 32, 32, 3) and len(ds.split("train")[1]) + len(ds.split("val")[1]) == 12
    masks = artefacts.load_npz(base / "HAM10000_segmentations_lesion_200x150.npz")
    assert masks["image_id"].tolist() == sorted(meta.image_id)
    assert np.array_equal(masks["masks"], shared["masks"][[index[i] for i in sorted(meta.image_id)]])
    ids = ds.info["val_image_ids"]
    assert np.array_equal(data.isic_masks(ids, 32, root=root), data.isic_masks(ids, 32))


def test_missing_lesion_masks_name_where_to_get_them(tmp_path):
    with pytest.raises(DataError, match=r"HAM10000_segmentations_lesion_200x150.npz not found \(lesion masks\); run "
                                        r"`advxai fetch isic2018`, which converts HAM10000_segmentations_lesion_"):
        data.isic_masks(["ISIC_0027419"], 32, root=tmp_path)


def test_a_sample_larger_than_its_split_is_refused(pneumonia):
    _, y = pneumonia.split("test")
    with pytest.raises(ParameterError, match="n_images = 625 exceeds the 624 images"):
        data.balanced_subset(y, 625)
    assert len(data.balanced_subset(y, 624)) == 624
    # 234 normal, 390 pneumonia: 500 images are all 234 normal and 266 pneumonia, not 250 + 250 short of 16
    assert np.bincount(y[data.balanced_subset(y, 500)]).tolist() == [234, 266]
    assert data.split_size("pneumoniamnist", 28, "val") == 524 and data.split_size("chest_xray", 64, "test") is None
