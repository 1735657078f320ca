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
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\n{yaml}\n")
    with pytest.raises(ParameterError, match=re.escape(where) + " .* must be 1–64") as err:
        load_config(cfg)
    assert "\n" not in str(err.value)


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


def test_yaml_merge_keys_may_still_override_what_they_merge(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\ndetection:\n  - &d {{datasets: [pneumoniamnist], n_images: 40, folds: 5}}\n"
                   "  - {<<: *d, folds: 6}\n")
    first, second = load_config(cfg)["detection"]
    assert (first["folds"], second["folds"]) == (5, 6) and second["n_images"] == 40
