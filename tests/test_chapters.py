"""No hand-typed numbers in the chapters: every number in `book/*.md` is glued from the results, sits in math,
code, a citation or a link, or is one of the fixed facts listed (with why) in ALLOWED."""

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
# Spans that may hold digits: fenced code, glue directives/roles, inline code, math, roles, links, URLs.
SKIP = [
    r"```.*?```", r":::.*?\n", r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"`[^`\n]*`", r"\{[a-z:]+\}`[^`]*`",
    r"\]\([^)]*\)", r"https?://\S+", r"^\s*\d+\.\s",  # numbered-list markers
]
# Fixed facts: published values with their source nearby, the seeds' grids, years, identifiers.
ALLOWED = [
    r"\b(19|20)\d\d\b",  # publication and copyright years
    r"\b95 %",  # the level of every interval (fixed in code)
    r"ε ∈ \{0\.01, 0\.05, 0\.075, 0\.1\}",  # the Grad-Attacks seed's ε grid
    r"ε ∈ \{0\.001, 0\.01, 0\.05, 0\.1, 0\.5\}",  # the RADAR-MIX seed's ε grid
    r"up to 93 % \(DeepFool, chest X-ray\) and 96 % \(PGD, OCT\)",  # Grad-Attacks' reported fooling rates
    r"\b100 class-balanced test images",  # the Grad-Attacks seed's sample
    r"over 98 % detection AUC",  # Ma et al. 2021, quoted
    r"the 224 px images of the seed papers",  # both seed papers' input size
    r"\(0: unchanged; 0\.5: unrelated maps\)", r"\(1: unchanged\)",  # the scales' fixed ends (book/glossary.md)
    r"5 % false-alarm rate", r"\b5 %[ -]FPR",  # the detection threshold, fixed in code (TPR at 5 % FPR)
    r"\(0: orthogonal, 1: parallel\)",  # the alignment's fixed ends
    r"ε/2",  # Tramèr's bound: a detector robust at ε, a classifier robust at half of it
    r"ISIC 2018", r"CBMS 20\d\d", r"record 10519652", r"doi:\S+",  # names and identifiers
]


def _numbers(text: str) -> list[str]:
    for pattern in SKIP:
        text = re.sub(pattern, " ", text, flags=re.S | re.M)
    for pattern in ALLOWED:
        text = re.sub(pattern, " ", text)
    # a number standing alone (not part of a name such as ResNet50, HAM10000, L2 or Grad-CAM++)
    return re.findall(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?![\w\-])", text)


@pytest.mark.parametrize("chapter", sorted(p.name for p in BOOK.glob("*.md")))
def test_no_hand_typed_numbers(chapter):
    found = _numbers((BOOK / chapter).read_text())
    assert not found, f"{chapter}: numbers typed by hand {found[:10]}; glue them from the results or allow-list a fact"


def test_the_scan_catches_a_typed_number_and_spares_glue_math_and_code():
    assert _numbers("DeepFool flips 87 % of predictions") == ["87"]
    assert _numbers("accuracy 0.91 on the test split") == ["0.91"]
    assert not _numbers("{glue:text}`results.ipynb::x:s`, $T = 10$, `eps: [0.05]`, ResNet50 and HAM10000")
    assert not _numbers("the seed's ε ∈ {0.01, 0.05, 0.075, 0.1} in 2023")
