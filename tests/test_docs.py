"""The repository's documents speak of the project: a README that is a front page, links that resolve, one
version everywhere, and no history of how it was worked on outside the changelog."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

import advxai

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150
WORK_PERIOD = re.compile(r"\bsessions?\b", re.IGNORECASE)
ALLOWED = re.compile(r"""scope\s*=\s*["']sess""" + r"""ion["']""")  # pytest's fixture scope is the one legitimate use
COMMIT = re.compile(r"\bcommits?\s+`?[0-9a-f]{7,40}\b|`[0-9a-f]{7}`")


def _tracked_text() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if names.returncode:
        pytest.skip("not a git checkout")
    texts = {}
    for name in names.stdout.splitlines():
        p = ROOT / name
        if name.endswith(".lock") or not p.is_file():
            continue
        data = p.read_bytes()
        if b"\0" not in data[:4096]:
            texts[name] = data.decode("utf-8", errors="replace")
    return texts


def test_no_word_for_a_working_period_in_the_repository():
    hits = [f"{name}:{i}" for name, text in _tracked_text().items()
            for i, line in enumerate(text.splitlines(), 1) if WORK_PERIOD.search(ALLOWED.sub("", line))]
    assert not hits, f"the repository speaks of the project, not of how it was worked on: {hits[:10]}"


def test_commit_hashes_only_in_the_changelog():
    hits = [f"{name}:{i}" for name, text in _tracked_text().items() if name != "CHANGELOG.md"
            for i, line in enumerate(text.splitlines(), 1) if COMMIT.search(line)]
    assert not hits, f"commit hashes belong in CHANGELOG.md: {hits[:10]}"


def test_the_scans_catch_what_they_look_for():
    word = "sess" + "ion"  # spelt in two parts so that this file passes its own scan
    assert WORK_PERIOD.search(f"measured in {word.title()} 20")
    assert not WORK_PERIOD.search(ALLOWED.sub("", f'scope="{word}"'))
    sha = "3829" + "bec"
    assert COMMIT.search(f"up to commit {sha}") and COMMIT.search(f"(`{sha}`)")
    assert not COMMIT.search("MD5 4f0d9d118d39911ea744fbe9b7f05a4c")


def test_readme_is_a_front_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for cmd in ("make book", "make test", "make study"):
        assert cmd in text
    links = re.findall(r"\]\(([^)#\s]+)", text)
    assert "docs/figure.png" in links and "CITATION.cff" in links
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_one_version_in_the_package_the_citation_and_the_changelog():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert advxai.__version__ == version
    assert str(yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]) == version
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()
