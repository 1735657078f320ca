"""What a run's cache key hashes besides its parameters: the library code the stage actually uses.

A stage's notebook imports some ``advxai`` modules; those import others. Only that closure is hashed, so an
edit to ``detect/protocol.py`` reruns the detection stage, not training. Importing ``advxai.a.b`` runs the
package ``advxai.a``'s ``__init__`` too, so it is in the closure. Imports are read statically (``ast``) from
the notebook's code cells and the modules' sources: nothing is executed. Modules are named by their dotted
path under ``advxai`` (``detect.protocol``; a package by its own name, ``detect``; the root ``__init__``).
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

LIB = Path(__file__).resolve().parents[1]


def source(module: str) -> Path | None:
    """The file of ``advxai.<module>``: a module's ``.py`` or a package's ``__init__.py``; ``None`` if neither."""
    base = LIB.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return base / "__init__.py" if (base / "__init__.py").is_file() else None


def _imported(tree: ast.AST, package: str | None) -> set[str]:
    """``advxai`` modules named by the imports of a parsed source that lives in ``package`` (``""``: the top of
    ``advxai``; ``None``: outside it, a notebook), with the packages above each (their ``__init__`` runs too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").split(".")[0] != "advxai":
                    continue
                base = (node.module or "").removeprefix("advxai").lstrip(".")
            else:
                parts = package.split(".") if package else []
                if package is None or node.level - 1 > len(parts):
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            found.add(base)  # from X import name: name may be a submodule of X, or a name defined in X
            found.update(f"{base}.{a.name}" if base else a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("advxai.") for a in node.names if a.name.startswith("advxai."))
    for m in list(found):
        parts = m.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {m for m in found if m and source(m)}


@cache
def module_closure(module: str) -> frozenset[str]:
    """The module and every ``advxai`` module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = source(m)
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        todo += _imported(ast.parse(path.read_text()), package) - seen
    return frozenset(seen)


def notebook_modules(notebook: Path) -> list[str]:
    """The ``advxai`` modules a notebook uses (its imports' closure), plus the package ``__init__``."""
    nb = json.loads(Path(notebook).read_text())
    direct = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            try:
                direct |= _imported(ast.parse(src), package=None)
            except SyntaxError:  # IPython magics: read line by line
                for line in src.splitlines():
                    try:
                        direct |= _imported(ast.parse(line.strip()), package=None)
                    except SyntaxError:
                        pass
    closure = set().union(*(module_closure(m) for m in direct)) if direct else set()
    return sorted(closure | {"__init__"})


def code_fingerprint(notebook: Path) -> str:
    """MD5 over the sources of the modules a notebook uses: a run is reused only with the same code."""
    h = hashlib.md5()
    for m in notebook_modules(notebook):
        h.update(m.encode() + source(m).read_bytes())
    return h.hexdigest()
