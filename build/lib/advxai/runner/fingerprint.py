"""What a run's cache key hashes besides its parameters: the *meaning* of the code that computes its numbers.

Rules (docs/cache-keys.md; ``tests/test_keys.py`` holds them):

* A module counts by its code with docstrings, comments and formatting removed (:func:`normalised`: the
  ``ast.dump`` of its syntax tree, docstring nodes dropped). Rewording a docstring or a comment, or
  reformatting, changes no key.
* A stage notebook's cells have roles, given by cell tags (:func:`role`): ``parameters`` (papermill's), ``render``
  (draws or words from the run's saved files: not in the key, re-executed when the page is re-rendered) and
  untagged code (computes: in the key; ``setup`` marks the untagged cells a re-render runs first, to import and
  load). Only computing cells count, by their normalised code; markdown, outputs and metadata never do.
* Only the modules that computing cells import, transitively, are hashed; modules that cannot change a number are
  left out (:data:`NOT_IN_KEYS`): downloading (the data's MD5 is in the key already) and the ``book`` package,
  which only draws and words. Computing cells may not import ``book``: a test checks it.

Imports are read statically (``ast``): nothing is executed. Modules are named by their dotted path under
``advxai`` (``detect.protocol``; a package by its own name, ``detect``; the root package ``__init__``).
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

LIB = Path(__file__).resolve().parents[1]

# module (or package: every module under it) -> why it cannot change a number
NOT_IN_KEYS = {
    "data.fetch": "downloads and unpacks; what it fetched enters the key as the data's MD5",
    "book": "draws figures and writes sentences from saved results (re-rendered, never recomputed)",
}
ROLES = ("parameters", "setup", "compute", "render")
COMPUTING = ROLES[:3]  # the roles whose code is in the key


def source(module: str) -> Path | None:
    """The file of ``advxai.<module>``: a module's ``.py`` or a package's ``__init__.py``; ``None`` if neither."""
    if module == "__init__":
        return LIB / "__init__.py"
    base = LIB.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return base / "__init__.py" if (base / "__init__.py").is_file() else None


def excluded(module: str) -> str | None:
    """Why ``module`` is in no computing key (:data:`NOT_IN_KEYS`), or ``None`` when it is."""
    for m, why in NOT_IN_KEYS.items():
        if module == m or module.startswith(m + "."):
            return why
    return None


def _parse(src: str) -> ast.Module:
    """A cell's or module's syntax tree; IPython magics (``%time``) are turned into Python first."""
    try:
        return ast.parse(src)
    except SyntaxError:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(src))


def normalised(src: str) -> str:
    """The code's meaning: its syntax tree without docstrings, as text. Comments, blank lines, line breaks,
    quoting and docstrings do not change it; any change to what the code does does."""
    tree = _parse(src)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@cache
def module_hash(module: str) -> str:
    """MD5 of a module's normalised code."""
    return _md5(normalised(source(module).read_text()))


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
def module_closure(module: str, keyed: bool = False) -> frozenset[str]:
    """The module and every ``advxai`` module it imports, transitively; ``keyed``: without the modules of
    :data:`NOT_IN_KEYS` (their imports are not followed either: what they use counts where it is used)."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen or (keyed and excluded(m)):
            continue
        seen.add(m)
        path = source(m)
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        todo += _imported(ast.parse(path.read_text()), package) - seen
    return frozenset(seen)


def role(cell: dict) -> str | None:
    """A code cell's role: ``parameters``, ``render``, ``setup`` or ``compute``; ``None`` for other cells."""
    if cell["cell_type"] != "code":
        return None
    tags = cell.get("metadata", {}).get("tags", [])
    return next((r for r in ("parameters", "render", "setup") if r in tags), "compute")


def cells(notebook: Path, roles: tuple[str, ...]) -> list[str]:
    """The source of a notebook's code cells with one of ``roles``, in order."""
    nb = json.loads(Path(notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if role(c) in roles]


def _modules(sources: list[str], keyed: bool) -> list[str]:
    direct = set().union(*(_imported(_parse(s), package=None) for s in sources)) if sources else set()
    closure = set().union(*(module_closure(m, keyed) for m in direct)) if direct else set()
    return sorted(closure | {"__init__"})


@cache
def notebook_modules(notebook: Path) -> list[str]:
    """The modules in a stage's key: what its computing cells (parameters, setup, compute) import, transitively,
    without :data:`NOT_IN_KEYS`; and the package ``__init__``."""
    return _modules(cells(notebook, COMPUTING), keyed=True)


@cache
def render_modules(notebook: Path) -> list[str]:
    """Every module a stage's page uses, drawing included (its render fingerprint)."""
    return _modules(cells(notebook, ROLES), keyed=False)


@cache
def key_parts(notebook: Path) -> dict:
    """The code part of a run's key: the normalised computing cells (one hash each, so splitting a cell counts)
    and each keyed module's hash, by name. Recorded in provenance so that a rerun can say what changed."""
    code = [_md5(normalised(s)) for s in cells(notebook, COMPUTING)]
    return {"notebook": _md5(json.dumps(code)), "modules": {m: module_hash(m) for m in notebook_modules(notebook)}}


def code_fingerprint(notebook: Path) -> str:
    """MD5 of :func:`key_parts`: a run is reused only with code of the same meaning."""
    return _md5(json.dumps(key_parts(notebook), sort_keys=True))


@cache
def render_fingerprint(notebook: Path) -> str:
    """MD5 of what a run's page shows besides its computed outputs: the rendering cells' normalised code, the
    markdown cells' text and every module the notebook uses (drawing and wording included). A page whose
    recorded fingerprint differs is re-rendered from the run's saved files, not recomputed."""
    nb = json.loads(Path(notebook).read_text())
    parts = [normalised("".join(c["source"])) if role(c) == "render" else "".join(c["source"])
             for c in nb["cells"] if role(c) in ("render", None)]
    parts += [f"{m}:{module_hash(m)}" for m in render_modules(notebook)]
    return _md5(json.dumps(parts))
