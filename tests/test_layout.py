"""The layout holds the architecture: each layer imports only the layers below it, and the notebooks read as the
methods section (parameters, one library call per step, a figure, a sentence) while the library computes."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "advxai"
CORE = {"errors", "registry", "artefacts"}
# layer -> the layers it may import (besides itself and the core); the order of the package docstring
MAY_IMPORT = {
    "data": set(),
    "measure": set(),
    "models": {"measure"},
    "attacks": {"data", "models", "measure"},
    "explain": {"models", "measure"},
    "detect": {"data", "models", "attacks", "explain", "measure"},
    "studies": {"data", "models", "attacks", "explain", "detect", "measure"},
    "book": {"data", "models", "attacks", "explain", "detect", "measure", "studies"},
    "runner": {"data", "models", "attacks", "explain", "detect", "measure", "studies", "book"},
}
MAX_NOTEBOOK_LINES = 80


def _layer_of(path: Path) -> str:
    rel = path.relative_to(LIB)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_layers(path: Path) -> set[str]:
    """The top-level ``advxai`` names a module's imports (at any depth: lazy imports count) resolve to."""
    rel = path.relative_to(LIB)
    package = list(rel.parts[:-1])  # the package the module lives in, under advxai
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "advxai":
                    continue
                target = parts[1:]
            else:
                target = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # from advxai import a, b / from .. import a
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("advxai."))
    return found - {"__version__"}


def test_every_module_belongs_to_a_layer():
    layers = {_layer_of(p) for p in LIB.rglob("*.py")}
    assert layers <= set(MAY_IMPORT) | CORE | {"__init__", "__main__"}, layers - set(MAY_IMPORT) - CORE
    for pkg in MAY_IMPORT:
        doc = ast.get_docstring(ast.parse((LIB / pkg / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"advxai.{pkg}'s __init__ must say what it is for and what it may import"


@pytest.mark.parametrize("path", sorted(LIB.rglob("*.py")), ids=lambda p: str(p.relative_to(LIB)))
def test_imports_only_go_down(path):
    layer = _layer_of(path)
    used = _imported_layers(path) - {layer}
    if layer in CORE:
        assert used <= CORE, f"{path.name}: the core imports only the core, not {sorted(used - CORE)}"
    elif layer in MAY_IMPORT:
        wrong = used - CORE - MAY_IMPORT[layer]
        assert not wrong, f"advxai.{layer} ({path.relative_to(LIB)}) imports {sorted(wrong)}, above it"


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    """A check that cannot fail is no check: a data module that imports the runner is caught."""
    bad = LIB / "data" / "_probe_layout.py"
    bad.write_text("from ..runner import cli\n")
    try:
        with pytest.raises(AssertionError, match="imports"):
            test_imports_only_go_down(bad)
    finally:
        bad.unlink()


def _code_lines(nb: dict) -> list[str]:
    return [ln for c in nb["cells"] if c["cell_type"] == "code" for ln in "".join(c["source"]).splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_read_as_methods(path):
    """No notebook above 80 lines of code; no loop in a notebook builds result rows (the library does)."""
    nb = json.loads(path.read_text())
    lines = _code_lines(nb)
    assert len(lines) <= MAX_NOTEBOOK_LINES, f"{path.name}: {len(lines)} lines of code"
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.For):
                body = ast.unparse(node)
                assert "rows" not in body, f"{path.name}: a for loop builds rows:\n{body[:200]}"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_cell_ids_are_unique(path):
    """nbformat renames a repeated id on every read (a warning each time) and a re-rendered page splices by cell."""
    ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
    assert len(ids) == len(set(ids)), f"{path.name}: repeated cell ids"
