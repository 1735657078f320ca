"""Cache keys follow meaning: what cannot change a number changes no key (docs/cache-keys.md)."""

from __future__ import annotations

import ast
import builtins
import json
import shutil
from pathlib import Path

import pytest

from advxai.runner import fingerprint as F
from advxai.runner import runs as R

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COMPUTING = ("parameters", "setup", "compute")

SRC = '''"""A module."""
import numpy as np


def f(x):
    """Doubles."""
    return 2 * x  # twice
'''


def test_normalised_code_ignores_docstrings_comments_and_formatting():
    same = [SRC.replace('"""Doubles."""', '"""Doubles x, reworded."""'),
            SRC.replace("  # twice", "  # a new comment").replace("\n\n\n", "\n\n\n# and here\n"),
            SRC.replace("return 2 * x", "return (2 *\n            x)").replace('"""A module."""', "")]
    for s in same:
        assert F.normalised(s) == F.normalised(SRC), s
    for changed in (SRC.replace("2 * x", "3 * x"), SRC.replace("def f(x)", "def g(x)"),
                    SRC.replace("return 2 * x", "print(x)\n    return 2 * x")):
        assert F.normalised(changed) != F.normalised(SRC), changed


def test_a_docstring_only_body_still_hashes_as_a_function():
    assert F.normalised('def f():\n    """Nothing."""\n') == F.normalised("def f():\n    pass\n")


def _variant(tmp_path: Path, name: str, edit) -> Path:
    """A copy of 02_attack.ipynb under ``name`` with ``edit(cells)`` applied (a new path: the caches are by path)."""
    nb = json.loads((ROOT / "notebooks" / "02_attack.ipynb").read_text())
    edit(nb["cells"])
    p = tmp_path / name
    p.write_text(json.dumps(nb))
    return p


def _first(cells, r):
    return next(c for c in cells if F.role(c) == r)


def _append(cell, text):
    cell["source"] = ["".join(cell["source"]) + text]


def test_a_notebooks_key_is_its_computing_code_and_its_page_the_rest(tmp_path):
    base = _variant(tmp_path, "base.ipynb", lambda cells: None)
    edits = {  # edit -> (key changes, render fingerprint changes)
        "markdown": (lambda c: _append(next(x for x in c if x["cell_type"] == "markdown"), " More."), False, True),
        "comment": (lambda c: _append(_first(c, "compute"), "  # why"), False, False),
        "output": (lambda c: _first(c, "compute").update(outputs=[{"output_type": "stream", "name": "stdout",
                                                                  "text": ["x"]}]), False, False),
        "figure": (lambda c: _append(_first(c, "render"), "\nplt.close('all')"), False, True),
        "compute": (lambda c: _append(_first(c, "compute"), "\nrows = rows[:1]"), True, False),
    }
    for name, (edit, key_changes, page_changes) in edits.items():
        nb = _variant(tmp_path, f"{name}.ipynb", edit)
        assert (F.key_parts(nb) != F.key_parts(base)) == key_changes, name
        assert (F.render_fingerprint(nb) != F.render_fingerprint(base)) == page_changes, name


def test_splitting_a_computing_cell_changes_the_key(tmp_path):
    """Cells are hashed one by one: their outputs are matched by position when a page is re-rendered."""
    def split(cells):
        i = cells.index(_first(cells, "compute"))
        head, _, tail = "".join(cells[i]["source"]).partition("\n")
        cells[i:i + 1] = [dict(cells[i], source=[head]), dict(cells[i], id="split", source=[tail])]

    assert F.key_parts(_variant(tmp_path, "split.ipynb", split)) != F.key_parts(_variant(tmp_path, "b.ipynb",
                                                                                           lambda c: None))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_computing_cells_never_draw_or_word(nb):
    """A cell in the key may not import a drawing or wording module (``book``): its output would be cached while
    the module changes (drawing and wording go in ``render`` cells, which are re-executed instead)."""
    used = F._modules(F.cells(nb, COMPUTING), keyed=False)
    assert not [m for m in used if m.startswith("book")], nb.name
    assert not [m for m in F.notebook_modules(nb) if m.startswith(("book", "data.fetch", "runner"))], nb.name


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names a cell stores, names it reads before storing them in itself)."""
    stored, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            stored.update(a.arg for a in args.args + args.kwonlyargs + args.posonlyargs)
            if isinstance(node, ast.FunctionDef):
                stored.add(node.name)
        elif isinstance(node, ast.comprehension):
            stored.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return stored, read


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_render_cells_read_only_saved_files_setup_and_parameters(nb):
    """A re-render executes parameters, setup and render cells only: a render cell may read no name that only a
    computing cell defines; and no computing cell reads a name a render cell defines (the full run and the
    re-render would then see different values)."""
    cells = json.loads(nb.read_text())["cells"]
    known, by_render = set(dir(builtins)) | {"display", "get_ipython"}, set()
    for cell in cells:
        r = F.role(cell)
        if r is None:
            continue
        stored, read = _names(ast.parse("".join(cell["source"])))
        if r == "render":
            missing = read - known - stored
            assert not missing, f"{nb.name}: a render cell reads {sorted(missing)}, which only a computing cell sets"
            by_render |= stored
        elif r == "compute":
            assert not (read & by_render - stored), f"{nb.name}: a computing cell reads {sorted(read & by_render)}"
        if r != "compute":
            known |= stored


def test_every_notebook_has_its_roles():
    for nb in NOTEBOOKS:
        roles = [F.role(c) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert roles[0] == "parameters", nb.name
        assert "render" in roles, nb.name  # every page draws or words something from saved files
        assert nb.name == "00_summary.ipynb" or "setup" in roles, nb.name


def test_the_documented_key_table_is_the_computed_one():
    doc = (ROOT / "docs" / "cache-keys.md").read_text()
    assert R.key_table() in doc, "docs/cache-keys.md is out of date: paste `advxai keys` into it"


def test_downloading_and_the_book_are_in_no_key_and_training_hashes_no_detector():
    keys = {s: set(F.notebook_modules(R.NOTEBOOKS / nb)) for s, nb in R.STAGES.items()}
    assert keys["summary"] == {"__init__"}
    assert not {m for ms in keys.values() for m in ms if m.startswith(("book", "data.fetch"))}
    assert not {m for m in keys["train"] if m.startswith(("detect", "attacks", "explain"))}
    assert not {m for m in keys["robust"] if m.startswith("detect")}  # its input gradient is explain.gradients
    assert "detect.detectors" in keys["detection"]


def _provenance(run: R.Run, parts: dict) -> None:
    old = run.out_dir.with_name(f"{run.label}-0123456789ab")
    old.mkdir(parents=True)
    (old / "provenance.json").write_text(json.dumps({"key": "0123456789ab", "seconds": 3.0, "key_parts": parts}))


def test_plan_why_names_each_part_that_changed(tmp_path):
    upstream = R.Run("train", "set28-cnn", {"epochs": 2}, results=tmp_path)
    run = R.Run("attack", "set28-cnn", {"eps": [0.1], "data_md5": "aa", "pgd": {"max_iter": 10}}, [upstream],
                results=tmp_path)
    parts = json.loads(json.dumps(run.key_parts))
    parts["params"]["pgd"]["max_iter"] = 5
    parts["params"]["data_md5"] = "bb"
    parts["deps"]["train set28-cnn"] = "feedfacecafe"
    parts["modules"]["attacks.evasion"] = "0" * 32
    parts["modules"]["models.old"] = "1" * 32
    parts["lock"] = "other"
    _provenance(run, parts)
    assert R.why(run) == ["parameter pgd.max_iter: 5 → 10", "data: MD5 bb → aa", "upstream train set28-cnn: reruns",
                          "module attacks.evasion: changed", "module models.old: no longer imported", "the lock file"]


def test_plan_why_for_a_new_run_and_a_cached_one(tmp_path):
    run = R.Run("train", "new28-cnn", {"epochs": 2}, results=tmp_path)
    assert R.why(run) == ["new: no earlier run of this stage and label in this results folder"]
    run.out_dir.mkdir(parents=True)
    (run.out_dir / "provenance.json").write_text("{}")
    assert R.why(run) == []


def test_a_changed_notebook_is_named(tmp_path):
    run = R.Run("seeds", "set28-cnn", {}, results=tmp_path)
    parts = json.loads(json.dumps(run.key_parts))
    parts["notebook"] = "changed"
    _provenance(run, parts)
    assert R.why(run) == ["notebook 08_seeds.ipynb: its computing code"]


@pytest.mark.slow
def test_edits_rerun_only_what_they_change(tmp_path):
    """bench/edits.py on the default grid, through the plan: docstring, comment, markdown, figure colour and chapter
    prose rerun nothing; a detector's score reruns detection and the summary; one dataset's epochs rerun that
    dataset's runs and the summary."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("edits", ROOT / "bench" / "edits.py")
    edits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(edits)
    config = "configs/default.yaml"
    before = edits.unedited(config, tmp_path)
    todo = {k: e for k, e in {**edits.EDITS, "epochs": edits._config(config, edits._epochs)}.items() if e is not None}
    counts = {name: ({r["stage"] for r in m["rerun"]}, {r["run"] for r in m["rerun"]}, len(m["redraw"]))
              for name, m in edits.measure_all(todo, config, tmp_path, before).items()}
    quiet = [k for k in counts if k.startswith(("a docstring", "a comment", "a markdown", "a figure", "a chapter"))]
    assert all(counts[k][0] == set() for k in quiet), counts
    assert counts["a markdown cell of 02_attack.ipynb"][2] >= 1 and counts[quiet[3]][2] >= 1  # pages re-rendered
    assert counts["the body of one detector's score (detect/detectors.py, msp)"][0] == {"detection", "summary"}
    stages, labels, _ = counts["epochs"]
    assert "train" in stages and all(lbl.startswith("chest_xray") or lbl == "summary" for lbl in labels), labels


def test_a_scratch_copy_is_a_whole_repository(tmp_path):
    """The edit bench's scratch copies hold what a key reads (library, notebooks, locks, configs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("edits", ROOT / "bench" / "edits.py")
    edits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(edits)
    root = edits.scratch_copy(tmp_path)
    for p in ("lib/advxai/runner/runs.py", "notebooks/01_train.ipynb", "requirements/cpu.lock", "configs/tiny.yaml"):
        assert (root / p).is_file(), p
    assert not list(root.rglob("__pycache__"))
    shutil.rmtree(root / "lib")


@pytest.mark.slow
def test_a_page_is_redrawn_from_saved_files_and_the_run_is_kept(tiny_grid, monkeypatch):
    """A stale page (here: the attack run's, its drawing declared changed) is re-rendered from the run's files:
    the computing cells keep the outputs they had, every render cell draws again, the run is not recomputed."""
    from advxai.runner import pipeline, render

    results, _, _ = tiny_grid
    runs = pipeline.plan(pipeline.load_config(ROOT / "configs" / "tiny.yaml"), results)
    run = next(r for r in runs if r.stage == "attack")
    prov = (run.out_dir / "provenance.json").read_bytes()
    before = json.loads((run.out_dir / "notebook.ipynb").read_text())
    real = R.Run.render
    monkeypatch.setattr(R.Run, "render", property(lambda r: "changed" if r.stage == "attack" else real.fget(r)))
    assert [r.stage for r in runs if render.stale(r)] == ["attack"]
    assert render.rerender_all(runs) == [{"run": run.label, "stage": "attack", "status": "re-rendered"}]
    assert not render.stale(run) and render.page(run).name == "page.ipynb"
    page = json.loads(render.page(run).read_text())
    assert [c["source"] for c in page["cells"]] == [c["source"] for c in before["cells"]]
    for old, new in zip(before["cells"], page["cells"], strict=True):
        if F.role(old) in ("setup", "compute"):
            assert new["outputs"] == old["outputs"]
        elif F.role(old) == "render":
            assert any("image/png" in o.get("data", {}) for o in new["outputs"])
    assert (run.out_dir / "provenance.json").read_bytes() == prov and run.done
