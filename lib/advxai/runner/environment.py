"""The software environment a run used: the versions of the packages that can change its numbers, and the hash
of the lock file the environment was installed from (recorded in provenance and in every run's cache key).

pyproject.toml pins only the top-level packages; the lock (``requirements/{cpu,gpu}.lock``, ``make lock``) pins
all of them with their hashes, so its hash names the whole installed set in 16 characters."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LOCKS = ROOT / "requirements"

# Distributions whose version can change a number in a run: the frameworks and explainers, the array and
# statistics libraries under them, numba/llvmlite/pynndescent under UMAP, ml-dtypes under TensorFlow's dtypes,
# and on a GPU the cuDNN/cuBLAS kernels (absent on CPU, hence skipped there).
NUMERICAL = ["tensorflow-cpu", "tensorflow", "keras", "adversarial-robustness-toolbox", "tf-keras-vis", "shap",
             "lime", "numpy", "scipy", "scikit-learn", "scikit-image", "umap-learn", "pandas", "pillow",
             "numba", "llvmlite", "pynndescent", "ml-dtypes", "nvidia-cudnn-cu12", "nvidia-cublas-cu12"]
# The runner's tools: they do not change numbers, but provenance names them.
TOOLS = ["advxai", "papermill", "jupyter-book"]


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str]:
    """Installed versions of :data:`NUMERICAL` and :data:`TOOLS` (absent ones skipped), plus Python's: what a
    reader needs to tell whether a rerun elsewhere used the same software."""
    out = {name: v for name in NUMERICAL + TOOLS if (v := _installed(name)) is not None}
    out["python"] = platform.python_version()
    return out


def lock_file() -> Path | None:
    """The lock this environment was installed from: ``requirements/gpu.lock`` when full ``tensorflow`` (the
    GPU variant) is installed, else ``requirements/cpu.lock``; None when the checkout has no such file (e.g.
    advxai installed from a wheel, outside the repository)."""
    variant = "gpu" if _installed("tensorflow") is not None and _installed("tensorflow-cpu") is None else "cpu"
    path = LOCKS / f"{variant}.lock"
    return path if path.is_file() else None


def lock_hash(path: Path | str | None = None) -> str:
    """First 16 hex digits of the SHA-256 of the lock's pins (``path``, default :func:`lock_file`), or ``no-lock``:
    a changed pin or hash anywhere in the environment changes it, so it belongs in a cache key. Comments (the
    header naming the command that made the lock, uv's ``# via`` lines), line continuations and blank lines are
    left out: they cannot change a number."""
    path = lock_file() if path is None else Path(path)
    if path is None or not path.is_file():
        return "no-lock"
    pins = [line.split(" #")[0].strip().rstrip("\\").strip() for line in path.read_text().splitlines()]
    return hashlib.sha256("\n".join(p for p in pins if p and not p.startswith("#")).encode()).hexdigest()[:16]
