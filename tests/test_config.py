"""Nested config keys are checked before any work, each in one line naming the fix (did-you-mean from the
builder's own signature), as a new user would mistype them."""

from __future__ import annotations

from pathlib import Path

import pytest

from advxai.errors import ParameterError
from advxai.runner.config import load_config

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
RADARMIX = """radarmix:
  datasets: [{name: pneumoniamnist, size: 28}]
  attack: {names: [fgsm, pgd], eps: [0.05], n_images: 12}
  explain: {names: [gradcam, lime], params: {lime: {num_samles: 100}}}
"""


@pytest.mark.parametrize("yaml, message", [
    ("models: [{name: cnn, params: {widht: 8}}]", r"^model 'cnn' has no parameter 'widht'; did you mean 'width'\?$"),
    ('attack: {names: [fgsm], eps: ["0.1x"], n_images: 12}',
     r"attack.eps\[0\] must be a number in \[0, 1\], got '0.1x'$"),
    ("attack: {names: [fgsm], eps: [true], n_images: 12}",
     r"attack.eps\[0\] must be a number in \[0, 1\], got True$"),
    ("datasets: [{name: pneumoniamnist, size: 28, model_params: {cnn: {stem_stride: 4}}}]",
     r"^cnn at 28 px with stem_stride 4 leaves a Grad-CAM map smaller than 2×2"),
    ("datasets: [{name: chest_xray, size: 32}]\nmodels: [resnet50]", r"^resnet50 at 32 px leaves a Grad-CAM map"),
    ("attack: {names: [pgd], eps: [0.05], n_images: 12, params: {pgd: {max_iters: 5}}}",
     r"^attack 'pgd' has no parameter 'max_iters'; did you mean 'max_iter'\?$"),
    (RADARMIX, r"^explainer 'lime' has no parameter 'num_samles'; did you mean 'num_samples'\?$"),
    ("robustness: {datasets: [pneumoniamnist], eps: [0]}", r"^robustness.eps: ε = 0 is clean accuracy"),
    ("robustness: {datasets: [pneumoniamnist], attacks: {deepfool: {}}}", r"^robustness.attacks: 'deepfool' is not"),
    ("robustness: {datasets: [pneumoniamnist], attacks: {autoattack-nofab: {square_iters: 9}}}",
     r"^attack 'autoattack-nofab' has no parameter 'square_iters'; did you mean 'square_iter'\?$"),
    ("robustness: {datasets: [pneumoniamnist], n_image: 9}", r"unknown key robustness.'n_image'; did you mean"),
    ("robustness: {datasets: [pneumoniamnist], n_images: 100000}", r"robustness.n_images"),
])
def test_nested_keys_are_checked_before_any_work(tmp_path, yaml, message):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\n{yaml}\n")
    with pytest.raises(ParameterError, match=message):
        load_config(cfg)


def test_the_checked_keys_still_accept_what_is_right(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"extends: {TINY}\nmodels: [{{name: cnn, params: {{width: 8, stem_stride: 1}}}}]\n"
                   "attack: {names: [fgsm], eps: [0, 0.05, 1], n_images: 12}\n")
    assert load_config(cfg)["models"][0]["params"] == {"width": 8, "stem_stride": 1}


def test_every_grid_the_book_and_readme_show_is_a_valid_config(tmp_path):
    """A reader copies these: the rerun page's grid once carried a key the loader no longer knows."""
    import re

    root = Path(__file__).resolve().parents[1]
    blocks = [(md.name, b) for md in [*sorted((root / "book").glob("*.md")), root / "README.md"]
              for b in re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S)]
    assert any(name == "rerun.md" for name, _ in blocks)
    for i, (name, text) in enumerate(blocks):
        path = tmp_path / f"{i}.yaml"
        path.write_text(text)
        assert load_config(path)["datasets"], name
