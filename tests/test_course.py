"""Course mode: the student copy has no solutions, keeps the stubs, and runs end to end."""

import json
from pathlib import Path

import papermill as pm
import pytest

from advxai import cli
from advxai.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_student_copy_strips_solutions_and_runs(tmp_path, capsys):
    assert cli.main(["student", str(ROOT / "book" / "course"), "--out", str(tmp_path / "student")]) == 0
    copy = tmp_path / "student" / "exercises.ipynb"
    assert "student copy" in capsys.readouterr().out
    tags = [c.get("metadata", {}).get("tags", []) for c in json.loads(copy.read_text())["cells"]]
    assert not any("solution" in t for t in tags) and sum("exercise" in t for t in tags) == 2
    original = json.loads((ROOT / "book" / "course" / "exercises.ipynb").read_text())["cells"]
    assert sum("solution" in c.get("metadata", {}).get("tags", []) for c in original) == 2
    ran = pm.execute_notebook(str(copy), str(tmp_path / "ran.ipynb"), cwd=str(tmp_path), progress_bar=False)
    text = json.dumps(ran["cells"])
    assert "not implemented yet" in text and "no prediction yet" in text  # the checks see the stubs


def test_student_copy_of_an_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="no notebooks in"):
        from advxai.course import student_copy

        student_copy(tmp_path, tmp_path / "out")
