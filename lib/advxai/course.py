"""Course mode: checks for the exercises of ``book/course`` and the student copy (solutions stripped).

A course notebook pairs each exercise with a *stub* cell (tag ``exercise``: runs, does nothing useful), a
*solution* cell (tag ``solution``: hidden behind a toggle in the book) and a *check* cell calling a function of
this module, which says "not done yet" for a stub and compares a real answer with the library's reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .artefacts import atomic_path
from .errors import DataError


def check_fgsm(my_fgsm, model, x: np.ndarray, y: np.ndarray, eps: float) -> str:
    """Compare a hand-written FGSM with ART's FastGradientMethod on the same images."""
    from . import attacks

    mine = my_fgsm(model, x, y, eps)
    if mine is None:
        return "not implemented yet: fill in my_fgsm"
    mine = np.asarray(mine, np.float32)
    reference, _ = attacks.generate(model, x, y, "fgsm", eps)
    agree = float(np.mean(np.isclose(mine, reference, atol=1e-5)))
    linf = float(np.abs(mine - x).max())
    verdict = "matches ART" if agree > 0.999 else "differs from ART"
    return f"{verdict}: {100 * agree:.2f} % of pixels equal, ‖δ‖∞ = {linf:.4f} (ε = {eps})"


def check_prediction(prediction, moved: dict[str, float]) -> str:
    """Compare a predicted explainer name with the one whose maps moved most (lowest mean IoU)."""
    if prediction in (None, Ellipsis):
        return "no prediction yet: set prediction to an explainer name"
    truth = min(moved, key=moved.get)
    return ("right" if prediction == truth else "not this time") + f": {truth} moved most " + ", ".join(
        f"({k} IoU {v:.2f})" for k, v in moved.items())


def student_copy(src: Path, dest: Path) -> list[Path]:
    """Copy every notebook of ``src`` into ``dest`` without its ``solution`` cells and with outputs cleared."""
    src, dest = Path(src), Path(dest)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise DataError(f"no notebooks in {src}; point at the course folder (book/course)")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        cells = [c for c in nb["cells"] if "solution" not in c.get("metadata", {}).get("tags", [])]
        for c in cells:
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        nb["cells"] = cells
        target = dest / nb_path.name
        with atomic_path(target) as tmp:
            Path(tmp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        out.append(target)
    return out
