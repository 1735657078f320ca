"""Course mode: the student copy has no solutions or answer key, keeps the stubs, and runs end to end; the
teacher's copy shows them; the timing plan is its rule."""

import json
import re
from pathlib import Path

import papermill as pm
import pytest

from advxai.book import course
from advxai.errors import DataError
from advxai.runner import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_student_copy_strips_solutions_and_runs(tmp_path, capsys):
    assert cli.main(["student", str(ROOT / "book" / "course"), "--out", str(tmp_path / "student")]) == 0
    copy = tmp_path / "student" / "exercises.ipynb"
    assert "student copy" in capsys.readouterr().out
    tags = [c.get("metadata", {}).get("tags", []) for c in json.loads(copy.read_text())["cells"]]
    assert not any({"solution", "answer"} & set(t) for t in tags) and sum("exercise" in t for t in tags) == 10
    original = json.loads((ROOT / "book" / "course" / "exercises.ipynb").read_text())["cells"]
    assert sum("solution" in c.get("metadata", {}).get("tags", []) for c in original) == 10
    ran = pm.execute_notebook(str(copy), str(tmp_path / "ran.ipynb"), cwd=str(tmp_path), progress_bar=False)
    text = json.dumps(ran["cells"])
    for stub in ("my_fgsm", "my_pgd", "my_gradcam", "my_fooling_rate", "my_shift", "my_score", "my_adaptive_pgd",
                 "my_manipulate", "my_randomize"):  # each check sees its stub
        assert f"not implemented yet: fill in {stub}" in text
    assert "no prediction yet" in text and "matches" not in text


def test_the_teachers_copy_shows_solutions_an_answer_per_discussion_and_the_rubric(tmp_path, capsys):
    assert cli.main(["teacher", str(ROOT / "book" / "course"), "--out", str(tmp_path / "teacher")]) == 0
    assert "teacher copy" in capsys.readouterr().out
    cells = json.loads((tmp_path / "teacher" / "exercises.ipynb").read_text())["cells"]
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    assert sum("solution" in t for t in tags) == 10 and not any({"hide-cell", "remove-cell"} & set(t) for t in tags)
    key = (tmp_path / "teacher" / "answer-key.md").read_text()
    questions = sum("".join(c["source"]).count("Discussion (part") for c in cells)
    assert questions == 4 and key.count("Answer key (part") == questions and "Rubric" in key
    points = [int(p) for p in re.findall(r"\| (\d+) \|$", key, re.M)]
    assert sum(points) == 100  # the core exercises; the extension is a bonus


def test_the_timing_plan_is_the_rule_applied_to_the_solutions():
    """The lab's first cell shows exactly what the rule gives for today's solutions (edit a solution: rerun
    ``course.timing_table(course.timing(nb))`` and paste), and the core exercises fit in 90 minutes."""
    nb = json.loads((ROOT / "book" / "course" / "exercises.ipynb").read_text())
    rows = course.timing(nb)
    assert course.timing_table(rows) in "".join(nb["cells"][0]["source"])
    assert sum(r["minutes"] for r in rows if r["core"]) + course.SETUP_MIN + 4 <= 90  # + the cells' run time
    assert [r["exercise"] for r in rows] == ["1", "1b", "2", "3", "4", "5", "6", "7", "8", "9", "10"]


def test_student_copy_of_an_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="no notebooks in"):
        from advxai.book.course import student_copy

        student_copy(tmp_path, tmp_path / "out")


def test_checks_tell_a_wrong_answer_from_a_right_one():
    """Hand-computed: labels 0 0 1 1, clean predictions 0 1 1 1 (three correct), attacked 1 0 1 0: two of the
    three correct images flip (FR 2/3); over all four, three flip (the seed's flip rate, 3/4)."""
    import numpy as np

    from advxai.book import course

    y, clean, adv = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([1, 0, 1, 0])
    assert course.check_fooling_rate(lambda *a: 2 / 3, y, clean, adv).startswith("matches the library")
    assert course.check_fooling_rate(lambda y, c, a: np.mean(c != a), y, clean, adv).startswith("differs")
    assert "flip rate over all 4: 0.750" in course.check_fooling_rate(lambda *a: 2 / 3, y, clean, adv)
    a = np.zeros((2, 10, 10))
    a[:, :2, :5] = 1  # top 10 %: the first ten pixels
    b = a.copy()
    b[1] = np.roll(a[1], 1, axis=0)  # one row down: the second pair shares 5 of its top pixels, IoU 5 / 15
    fooled = np.array([False, True])
    assert course.check_shift(lambda *_: {"fooled": 1 / 3, "not_fooled": 1.0}, a, b, fooled).startswith("matches")
    assert course.check_shift(lambda *_: {"fooled": 0.5, "not_fooled": 1.0}, a, b, fooled).startswith("differs")


def test_the_prediction_check_decides_only_from_intervals():
    """Exercise 4: IoUs 0.1 ± small vs 0.5 ± small over 30 images are decided; two equal samples are not."""
    import numpy as np

    from advxai.book import course

    rng = np.random.default_rng(0)
    low, high = 0.1 + 0.02 * rng.standard_normal(30), 0.5 + 0.02 * rng.standard_normal(30)
    assert course.check_prediction("fgsm", {"fgsm": low, "deepfool": high}).startswith("right: fgsm moved more")
    assert course.check_prediction("deepfool", {"fgsm": low, "deepfool": high}).startswith("not this time")
    assert course.check_prediction("fgsm", {"fgsm": low, "deepfool": low[::-1]}).startswith("undecided")
    assert course.check_prediction(..., {"fgsm": low}).startswith("no prediction yet")
    assert course.corner_map(28).argmax() == np.ravel_multi_index((3, 3), (28, 28))  # the blob's peak, top left


def test_detector_check_tells_a_wrong_answer_from_a_right_one():
    """A two-class softmax net on four inputs; the right score is 1 − max softmax and the right AUROC the share of
    (clean, attacked) pairs ranked correctly; the wrong ones: max softmax (the sign flipped) and a constant 0.5."""
    import keras
    import numpy as np

    from advxai.book import course

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")

    def score(m, v):
        z = np.asarray(m(v), np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        return 1 - (p / p.sum(1, keepdims=True)).max(1)

    def auroc(neg, pos):
        return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))

    assert course.check_detector(score, auroc, model, x[:4], x[4:]).startswith("matches the library")
    assert course.check_detector(lambda m, v: -score(m, v), auroc, model, x[:4], x[4:]).startswith("differs")
    assert course.check_detector(score, lambda *_: 0.5, model, x[:4], x[4:]).startswith("differs")


def test_exercise_8s_detector_has_two_finite_thresholds_on_the_labs_data(trained, pneumonia):
    """The lab's model (the fixture is trained as the lab's first cell trains it): the two-sided detector's band on
    the clean validation images has a lower and an upper threshold, each with clean images beyond it (the softmax
    probability's upper quantile was 1.000, which no attack can exceed)."""
    import numpy as np

    from advxai.book import course
    from advxai.models.train import predict_logits

    ref, _ = pneumonia.split("val")
    low, high = course.confidence_band(trained, ref)
    top = predict_logits(trained, ref).max(1)
    assert np.isfinite([low, high]).all() and low < high
    assert 0.01 <= np.mean(top < low) <= 0.04 and 0.01 <= np.mean(top > high) <= 0.04
