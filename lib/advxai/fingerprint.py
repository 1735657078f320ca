"""What a run's cache key hashes besides its parameters: the library code the stage actually uses.

A stage's notebook imports some ``advxai`` modules; those import others. Only that closure is hashed, so an
edit to ``detect.py`` reruns the detection stage, not training. Imports are read statically (``ast``) from
the notebook's code cells and the modules' sources: nothing is executed.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

LIB = Path(__file__).resolve().parent


def _imported(tree: ast.AST, package_level: int) -> set[str]:
    """``advxai`` modules named by the imports of a parsed source (``from advxai import a``, ``import advxai.b``,
    ``from .c import d``, ``from . import e``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and (node.module or "").split(".")[0] == "advxai"
            relative = node.level == package_level and package_level > 0
            if absolute or relative:
                sub = (node.module or "").removeprefix("advxai").lstrip(".") if absolute else (node.module or "")
                if sub:
                    found.add(sub.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("advxai."))
    return {m for m in found if (LIB / f"{m}.py").exists()}


@cache
def module_closure(module: str) -> frozenset[str]:
    """The module and every ``advxai`` module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += _imported(ast.parse((LIB / f"{m}.py").read_text()), package_level=1) - seen
    return frozenset(seen)


def notebook_modules(notebook: Path) -> list[str]:
    """The ``advxai`` modules a notebook uses (its imports' closure), plus the package ``__init__``."""
    nb = json.loads(Path(notebook).read_text())
    direct = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            try:
                direct |= _imported(ast.parse(src), package_level=0)
            except SyntaxError:  # IPython magics: read line by line
                for line in src.splitlines():
                    try:
                        direct |= _imported(ast.parse(line.strip()), package_level=0)
                    except SyntaxError:
                        pass
    closure = set().union(*(module_closure(m) for m in direct)) if direct else set()
    return sorted(closure | {"__init__"})


def code_fingerprint(notebook: Path) -> str:
    """MD5 over the sources of the modules a notebook uses: a run is reused only with the same code."""
    h = hashlib.md5()
    for m in notebook_modules(notebook):
        h.update(m.encode() + (LIB / f"{m}.py").read_bytes())
    return h.hexdigest()
