"""Publishing: each run's page (its executed notebook, re-rendered where only its drawing changed:
:mod:`~advxai.runner.render`) copied into the book with names that sort by dataset, model and stage, titled, code
folded, each with its provenance block."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .provenance import provenance_markdown
from .render import page
from .runs import STAGES, Run


def publish(runs: list[Run], book: Path) -> None:
    """Copy executed notebooks to ``book/runs`` with names that sort by dataset, model and stage, titled with
    their dataset and model, code folded (readers see narrative, tables and figures; a click shows the code)."""
    dest = book / "runs"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    order = {s: i for i, s in enumerate(STAGES)}
    for r in runs:
        if r.stage == "summary":
            target = book / "results.ipynb"
            for chapter in book.glob("*.md"):  # chapters paste its glued numbers: make Sphinx re-read them
                chapter.touch()
        else:
            name, *rest = r.label.split("-")
            target = dest / f"{name}-{order[r.stage]}{r.stage}-{'-'.join(rest)}.ipynb"
        prov = json.loads((r.out_dir / "provenance.json").read_text())
        _publishable(page(r), target, "" if r.stage == "summary" else r.label, prov)


def _publishable(src: Path, dest: Path, label: str, prov: dict) -> None:
    nb = json.loads(Path(src).read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "provenance", "metadata": {},
                        "source": provenance_markdown(prov)})
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "parameters" in tags:
            tags.append("remove-cell")  # the defaults; the injected values below are what ran
        elif cell["cell_type"] == "code":
            tags.append("hide-input")
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    if first is not None and label:
        text = "".join(first["source"])
        if text.startswith("# "):
            head, _, tail = text.partition("\n")
            first["source"] = f"{head} · {label}\n{tail}"
    dest.write_text(json.dumps(nb, indent=1))
