"""Names that become paths or HTML are safe, one build holds a results folder, and the command line refuses bad
folders in one line before any work (with no TensorFlow start-up lines before it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from advxai.book.style import collapsed, md_table, render_markdown
from advxai.errors import ParameterError
from advxai.runner.config import load_config
from advxai.runner.lock import results_lock

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.mark.parametrize("yaml, where", [
    ('models: [{name: cnn, label: "../../../../elsewhere/x"}]', "models[0].label"),
    ('models: [{name: cnn, label: "/abs/path"}]', "models[0].label"),
    ('models: [{name: cnn, label: "x<img src=y onerror=alert(1)>"}]', "models[0].label"),
    ('name: "<script>alert(1)</script>"', "name"),
    ("name: .hidden", "name"),
    ("name: 12", "name"),
    ('detection: {datasets: [pneumoniamnist], models: [{name: cnn, label: "a/b"}]}', "detection.models[0].label"),
])
def test_names_that_become_paths_or_html_are_refused_in_one_line(tmp_path, yaml, where):
    _refused_in_one_line(tmp_path, yaml, re.escape(where) + " .* must be 1–64")


def test_safe_names_keep_todays_labels(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\nname: my_grid-2.b\nmodels: [{{name: cnn, label: cnn·s1-at2}}]\n")
    assert load_config(cfg)["name"] == "my_grid-2.b"


def test_generated_markdown_shows_html_as_text_and_keeps_collapsed_blocks():
    md = "a label <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n" + collapsed(
        "rows <b>x</b>", md_table([{"model": "<script>", "n": 2}]))
    out = render_markdown(md)
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert out.count("&lt;script&gt;") == 2 and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "<details><summary>rows &lt;b&gt;x&lt;/b&gt;</summary>" in out and out.rstrip().endswith("</details>")
    assert "<table>" in out


def test_a_second_build_on_one_results_folder_stops_at_once_naming_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from advxai.runner.lock import results_lock\n"
        "with results_lock(sys.argv[2]):\n    print('held', flush=True); time.sleep(60)"),
        str(ROOT / "lib"), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ParameterError, match=rf"in use by another advxai build \(PID {holder.pid}\)"):
            with results_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with results_lock(tmp_path):  # the kernel released the killed holder's lock: no stale lock is left
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


def test_run_grid_takes_the_lock_before_any_work(tmp_path):
    from advxai.runner.pipeline import run_grid

    with results_lock(tmp_path):
        with pytest.raises(ParameterError, match="in use by another advxai build"):
            run_grid(TINY, tmp_path)
    assert not (tmp_path / "runs").exists()


def _cli(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"), **env_vars)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "advxai.runner.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["run", "configs/tiny.yaml", "--results", "README.md"], "is a file, not a folder"),
    (["run", "configs/tiny.yaml", "--results", "/proc/advxai"], "is under /proc"),
    (["validate", "configs/tiny.yaml", "--results", "/etc/advxai"], "is under /etc"),
    (["book", "configs/tiny.yaml", "--book", "/tmp/elsewhere"], "is outside --root"),
])
@pytest.mark.slow  # a fresh process importing TensorFlow, as a user's command does
def test_bad_folders_are_refused_in_one_line_before_any_work(args, message):
    out = _cli(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("advxai: error: ") and message in out.stderr


@pytest.mark.slow  # a fresh process importing TensorFlow, as a user's command does
def test_an_error_after_tensorflow_is_imported_is_still_one_line(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\nmodels: [{{name: cnn, params: {{widht: 8}}}}]\n")
    out = _cli("validate", str(cfg))
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [out.stderr.strip()] and "did you mean 'width'" in out.stderr


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
@pytest.mark.slow  # a fresh process importing TensorFlow, as a user's command does
def test_a_damaged_data_file_is_one_md5_line_during_validate(tmp_path, data_root, damage):
    official = (Path(data_root) / "medmnist" / "pneumoniamnist.npz").read_bytes()
    bad = bytearray(official[: len(official) // 2] if damage == "truncated" else official)
    if damage == "bit-flipped":
        bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    (tmp_path / "data" / "medmnist" / "pneumoniamnist.npz").write_bytes(bytes(bad))
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("datasets: [{name: pneumoniamnist, size: 28}]\nattack: {names: [fgsm], eps: [0.01], n_images: 10}\n")
    out = _cli("validate", str(cfg), ADVXAI_DATA=str(tmp_path / "data"), ADVXAI_OFFLINE="1")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "MD5" in out.stderr and "!= official 28209eda62fecd6e6a2d98b1501bb15f" in out.stderr


@pytest.mark.parametrize("yaml, message", [
    ("attack: {names: [fgsm], eps: [0.05], n_images: [100]}", r"attack.n_images must be an integer, got \[100\]"),
    ('train: {epochs: "12"}', r"train.epochs must be an integer, got '12'"),
    ("train: {lr: fast}", r"train.lr must be a number, got 'fast'"),
    ("train: {lr: 3e-3}", r"train.lr must be a number, got '3e-3' \(YAML reads 3e-3 as text: write it with a dot"),
    ("train: null", r"train must be a mapping, got None"),
    ("attack: null", r"attack must be a mapping, got None"),
    ("seed: zero", r"seed must be an integer, got 'zero'"),
    ('gpu: "no"', r"gpu must be true or false, got 'no'"),
    ('attack: {names: [fgsm], eps: [0.05], n_images: 12, split: "no"}', r"attack.split must be true or false"),
    ("attack: {names: [fgsm], eps: [0.05], n_images: 99.7}", r"attack.n_images must be an integer, got 99.7"),
    ("attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iter: -10}}}",
     r"attack.params.pgd.max_iter must be at least 1, got -10"),
    ("attack: {names: [], eps: [0.05], n_images: 12}", r"attack.names is empty"),
    ("n_boot: -1", r"n_boot must be at least 1, got -1"),
    ("estimates: fast", r"estimates must be a mapping, got 'fast'"),
    ("models: cnn", r"models must be a list, got 'cnn'"),
    ("datasets: pneumoniamnist", r"datasets must be a list, got 'pneumoniamnist'"),
    ('datasets: [{name: pneumoniamnist, size: "28"}]', r"datasets\[0\].size must be an integer, got '28'"),
    ("detection: {datasets: [pneumoniamnist], folds: five}", r"detection.folds must be an integer, got 'five'"),
    ("detection: {datasets: [pneumoniamnist], n_images: -5}", r"detection.n_images must not be negative"),
    ("radarmix: {datasets: [isic2018], explain: {n_explain: {shap: -2}}}", r"n_explain.shap must not be negative"),
    ("datasets: [{name: chest_xray, size: 100000}]", r"chest_xray: size 100000 px is above the 512 px"),
    ("attack: {names: [fgsm]}\nattack: {names: [pgd]}", r"key 'attack' appears twice \(line 3\)"),
])
def test_types_ranges_and_duplicate_keys_are_one_line_before_any_work(tmp_path, yaml, message):
    _refused_in_one_line(tmp_path, yaml, message)


def _refused_in_one_line(tmp_path, yaml: str, message: str) -> None:
    """``yaml`` added to the tiny config is refused by :func:`load_config` with one line matching ``message``."""
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\n{yaml}\n")
    with pytest.raises(ParameterError, match=message) as err:
        load_config(cfg)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("target", ["/dev/zero", "/tmp"])
def test_extends_must_name_a_small_regular_file(tmp_path, target):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {target}\n")
    with pytest.raises(ParameterError, match="must be a YAML file of at most 1024 KiB"):
        load_config(cfg)


def test_a_config_of_binary_bytes_is_one_line(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_bytes(b"\xff\xfe\x00datasets")
    with pytest.raises(ParameterError, match="is not UTF-8 text; save it as a UTF-8 YAML file"):
        load_config(cfg)


def test_yaml_merge_keys_may_still_override_what_they_merge(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\ndetection:\n  - &d {{datasets: [pneumoniamnist], n_images: 40, folds: 5}}\n"
                   "  - {<<: *d, folds: 6}\n")
    first, second = load_config(cfg)["detection"]
    assert (first["folds"], second["folds"]) == (5, 6) and second["n_images"] == 40


@pytest.mark.parametrize("yaml, message", [
    ('attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iter: "5"}}}',
     r"^attack 'pgd': max_iter must be an integer \(as its default 10\), got '5'$"),
    ("attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {step_ratio: 2}}}",
     r"attack.params.pgd.step_ratio must be at most 1, got 2$"),
    ("models: [{name: cnn, params: {dropout: yes}}]", r"^model 'cnn': dropout must be a number"),
    ("models: [{name: cnn, params: {width: 0}}]", r"models\[0\].params.width must be at least 1, got 0$"),
    ("radarmix: {datasets: [pneumoniamnist], explain: {params: {lime: {num_samples: 1.5}}}}",
     r"^explainer 'lime': num_samples must be an integer"),
    ("detection: [{datasets: [pneumoniamnist]}, {datasets: [pneumoniamnist], foldz: 5}]",
     r"unknown key detection\[1\].'foldz'; did you mean 'folds'\?$"),
    ("detection: {datasets: [pneumoniamnist], attack: {names: [fgsm], eps: {fgsm: [2]}}}",
     r"detection.attack.eps.fgsm\[0\] must be at most 1, got 2$"),
    ("estimates: {trian: 5}", r"unknown key estimates.'trian'; did you mean 'train'\?$"),
    ("seeds: [1, 1]", r"seeds lists a value twice"),
    ("datasets: [{size: 28}]", r"datasets\[0\] has no 'name'; e.g. \{name: ...\}"),
    ('models: [""]', r"models\[0\] must not be empty; give a name$"),
])
def test_parameter_values_are_typed_by_the_builders_signature_and_ranged_by_the_schema(tmp_path, yaml, message):
    _refused_in_one_line(tmp_path, yaml, message)


def test_the_schema_is_a_valid_json_schema_every_shipped_config_meets():
    import jsonschema

    from advxai.runner.config import _read
    from advxai.runner.schema import Validator, build_schema

    schema = build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        assert not list(Validator(schema).iter_errors(_read(path))), path
    assert not Validator(schema).is_valid({"seed": 1.0}) and not Validator(schema).is_valid({"gpu": "no"})


@pytest.mark.slow  # a browser
def test_text_from_a_config_or_a_results_table_is_shown_never_run_in_a_real_browser(tmp_path):
    """A label cannot hold HTML (the schema refuses it, above); a results table built elsewhere still could. The
    HTML the chapters paste for generated text (:func:`advxai.book.style.html`), opened in Chromium: the hostile
    label is visible as text, no element of it exists and none of its code ran."""
    import shutil

    from advxai.book.style import collapsed, md_table

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("ADVXAI_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; install Debian's chromium package (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    label = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    body = render_markdown(f"model {label}\n\n" + collapsed(f"rows {label}", md_table([{"model": label, "n": 2}])))
    page_file = tmp_path / "page.html"
    page_file.write_text(f"<!doctype html><html><body>{body}</body></html>")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        found = page.evaluate("() => [document.querySelectorAll('body script, body img').length, window.pwned,"
                              " document.body.textContent]")
        browser.close()
    elements, pwned, text = found
    assert elements == 0 and pwned is None
    assert text.count("<script>window.pwned = 1</script>") == 3  # the paragraph, the summary, the table cell


def test_one_split_given_as_a_word_is_one_split(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\ndetection: {{datasets: [pneumoniamnist], splits: test, n_images: 40}}\n")
    assert load_config(cfg)["detection"][0]["splits"] == ["test"]


def test_the_book_commands_name_the_missing_extra_in_one_line(monkeypatch, capsys):
    """The library alone (what the lab installs) cannot run a grid: `advxai run` says which extra to install."""
    import importlib.util

    from advxai.runner import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    assert cli.main(["run", str(TINY)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'advxai[book]'" in err and "papermill missing" in err
