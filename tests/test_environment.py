import re
import tomllib

from advxai.runner import environment

from conftest import ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0].strip().lower())


def _lock_pins(path) -> dict[str, set[str]]:
    """name -> versions pinned in a lock (a universal lock may pin two, under Python-version markers)."""
    pins: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line):
            pins.setdefault(_norm(m[1]), set()).add(m[2])
    return pins


def test_versions_names_the_numerical_stack_and_python():
    v = environment.versions()
    assert {"keras", "numpy", "python"} <= v.keys()
    assert "tensorflow-cpu" in v or "tensorflow" in v
    assert re.fullmatch(r"3\.\d+\.\d+.*", v["python"])


def test_lock_hash_is_16_hex_and_follows_the_pins_not_the_comments(tmp_path, monkeypatch):
    lock = tmp_path / "cpu.lock"
    lock.write_bytes(b"numpy==2.4.6\n")
    monkeypatch.setattr(environment, "lock_file", lambda: lock)
    first = environment.lock_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert environment.lock_hash(lock) == first
    lock.write_bytes(b"# made by: uv pip compile --extra book\nnumpy==2.4.6 \\\n    # via advxai\n\n")
    assert environment.lock_hash() == first  # a header or a "# via" line cannot change a number
    lock.write_bytes(b"numpy==2.4.7\n")
    assert environment.lock_hash() != first
    monkeypatch.setattr(environment, "lock_file", lambda: None)
    assert environment.lock_hash() == "no-lock"
    assert environment.lock_hash(tmp_path / "missing.lock") == "no-lock"


def test_the_repository_lock_applies():
    assert environment.lock_file() in (ROOT / "requirements" / "cpu.lock", ROOT / "requirements" / "gpu.lock")
    assert re.fullmatch(r"[0-9a-f]{16}", environment.lock_hash())


def _pins(reqs: list[str]) -> dict[str, str]:
    pins = {}
    for req in reqs:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+(?:\[[^\]]*\])?)==(\S+)", req.split(";")[0].strip()).groups()
        pins[_norm(name)] = version
    return pins


def test_every_top_level_pin_is_in_the_cpu_lock_at_the_same_version():
    """The book's lock holds every pin of the book (and nothing of the test step); the test lock every test pin,
    and the packages the two share at the same version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lock, test_lock = _lock_pins(ROOT / "requirements" / "cpu.lock"), _lock_pins(ROOT / "requirements" / "test.lock")
    book = project["dependencies"] + extras["cpu"] + extras["book"] + extras["lab"]  # the lab's kernel is the book's
    for pins, got, name in [(_pins(book), lock, "cpu.lock"),
                            (_pins(extras["test"]), test_lock, "test.lock")]:
        wrong = {n: (v, sorted(got.get(n, []))) for n, v in pins.items() if got.get(n) != {v}}
        assert not wrong, f"pyproject.toml pin vs {name} (run `make lock`): {wrong}"
    assert not set(_pins(extras["test"])) - {"psutil"} & set(lock)  # test tools stay out of the book's install
    shared = set(lock) & set(test_lock)
    assert {n: (lock[n], test_lock[n]) for n in shared if lock[n] != test_lock[n]} == {}
    assert "advxai" not in lock


def test_the_librarys_own_set_leaves_the_book_out():
    """The lab installs the library's own dependencies and TensorFlow only: nothing that builds the book."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    own = set(_pins(project["dependencies"]))
    assert not own & {"jupyter-book", "papermill", "shap", "lime", "umap-learn", "seaborn", "ipykernel"}
    assert {"keras", "adversarial-robustness-toolbox", "tf-keras-vis", "scikit-learn", "jsonschema"} <= own
