"""Downloading the raw sets from their official sources: resumable, checked, unpacked atomically."""

from __future__ import annotations

import hashlib
import http.client
import os
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

from ..artefacts import save_npz
from ..errors import DataError, UnknownNameError
from .base import IMAGE_SUFFIXES, data_dir

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
ISIC_PAGE = "https://challenge.isic-archive.com/data/#2018"
HAM_PAGE = "https://doi.org/10.7910/DVN/DBW86T"
# Harvard Dataverse files by persistent id. UNVERIFIED here (no network): CLBHCY for the metadata is taken from a
# third-party script, EGDUDF for the masks from the HAM10000 authors' README (github.com/ptschandl/HAM10000_dataset).
DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/:persistentId?persistentId=doi:10.7910/DVN/DBW86T"
ISIC_S3 = "https://isic-challenge-data.s3.amazonaws.com/2018"

# What `fetch_raw` downloads: name -> folder under raw/ and its files, in download order (the loader's files
# first, so that an unverified extra that fails last leaves a loadable set). Sizes are approximate; no SHA-256 is
# pinned (the sources publish none): the first download's is recorded in raw/SHA256SUMS and enforced from then on.
# ChestXRay2017.zip is Mendeley v2, the paper's split: its train holds the 16 images (8 NORMAL, 8 PNEUMONIA)
# that Kaggle later moved to a `val` folder, so train is 1349/3883, not Kaggle's 1341/3875.
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
        downloaded = not archive.exists()
        if downloaded:
            if os.environ.get("ADVXAI_OFFLINE"):
                raise DataError(f"{archive} is missing and ADVXAI_OFFLINE is set; download it from {a.page} there")
            try:
                _download_resumable(url, archive, log)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                raise DataError(f"cannot download {a.file} from {url} ({exc}); run the fetch again to resume, or "
                                f"get it by hand from {a.page}, put it at {archive} and run again") from None
        sha = _check_sha256(name, archive, a, log, downloaded)
        _install(name, archive, a, base / a.dest)
        _record(raw, a.file, sha)
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


def _check_sha256(name: str, archive: Path, a: Archive, log, downloaded: bool = True) -> str:
    """The archive's SHA-256, checked before anything is unpacked against the catalog's pin (``Archive.sha256``)
    or, failing one, the first download's record in ``raw/SHA256SUMS`` (trust on first use: the sources publish
    no checksum, so the first download is recorded and every later one must equal it)."""
    with open(archive, "rb") as f:
        got = hashlib.file_digest(f, "sha256").hexdigest()
    recorded = _recorded(archive.parent).get(a.file)
    expected, source = (a.sha256, "data.RAW") if a.sha256 else (recorded, archive.parent / SUMS)
    if expected is None:
        log(f"{a.file}: SHA-256 {got} (none recorded in data.RAW yet; kept in {archive.parent / SUMS}, which every "
            "later download of it must match)")
    elif got != expected:
        if downloaded:  # a file put there by hand is the user's: kept
            archive.unlink()
        trust = "" if a.sha256 else f"; if you trust the new file, delete its line from {source} first"
        raise DataError(f"{a.file}: SHA-256 {got} != expected {expected} ({source}); the download was corrupt or "
                        f"the source changed{', and it is deleted' if downloaded else ''}: run `advxai fetch {name}` "
                        f"again{trust}")
    return got


SUMS = "SHA256SUMS"  # `sha256sum -c` format, in raw/: survives a set's folder being deleted and fetched again


def _recorded(raw: Path) -> dict[str, str]:
    path = raw / SUMS
    lines = path.read_text().splitlines() if path.exists() else []
    pairs = (line.split(maxsplit=1) for line in lines)
    return {p[1].strip(): p[0] for p in pairs if len(p) == 2}  # a malformed line records nothing


def _record(raw: Path, file: str, sha: str) -> None:
    """Add a verified, unpacked archive's SHA-256 to raw/SHA256SUMS (written atomically)."""
    sums = {**_recorded(raw), file: sha}
    tmp = raw / f".{SUMS}.tmp"
    tmp.write_text("".join(f"{v}  {k}\n" for k, v in sorted(sums.items())))
    os.replace(tmp, raw / SUMS)


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
