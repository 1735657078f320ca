"""How the book writes a number, a table and a collapsed block, and what it says where nothing was run. A leaf
of the book layer: the run pages' modules (:mod:`advxai.book.robustplots`) import it instead of
:mod:`advxai.book.narrative`, so editing the chapters' prose does not change their notebooks' cache keys."""

from __future__ import annotations

import re

import numpy as np

NOT_RUN = "*Not run in this build: `make study` runs it.*"
# where a figure would be: the caption under it then describes a figure the reader knows is absent
NO_FIGURE = "*Figure not drawn: not run in this build (`make study` runs it). The caption below describes it.*"
NO_MASKS = "*No RADAR-MIX run of this configuration had lesion masks (ISIC's validation lesions have them).*"
SPLIT_MIN = 30  # a fooled / not-fooled comparison on fewer images per side is flagged (issue 21: "or says so")


def fmt(r, digits: int = 2) -> str:
    """``0.83 [0.74, 0.89]``, or ``0.83 (n = 6: too few images for an interval)``. An interval whose ends round
    to the same number gets more digits (up to four): 0.9997 [0.9990, 1.0000], never a false "[1.00, 1.00]"."""
    if not np.isfinite(r.value):
        return "—"
    if np.isfinite(r.ci_low):
        while digits < 4 and r.ci_low != r.ci_high and f"{r.ci_low:.{digits}f}" == f"{r.ci_high:.{digits}f}":
            digits += 1
        return f"{r.value:.{digits}f} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
    return f"{r.value:.{digits}f} (n = {int(r.n)}: too few images for an interval)"


def fmt_n(r, digits: int = 2) -> str:
    """:func:`fmt` with the image count (which ``fmt`` already gives when there is no interval)."""
    return fmt(r, digits) + (f" (n = {int(r.n)})" if has_ci(r) else "")


def has_ci(r) -> bool:
    return bool(np.isfinite(r.ci_low) and np.isfinite(r.ci_high))


def compare(a, b) -> str:
    """How ``a`` relates to ``b``: "higher than", "lower than", "indistinguishable from" (intervals overlap),
    or "not comparable with" (one of them has too few images for an interval)."""
    if not (has_ci(a) and has_ci(b)):
        return "not comparable with"
    if a.ci_low > b.ci_high:
        return "higher than"
    if a.ci_high < b.ci_low:
        return "lower than"
    return "indistinguishable from"


# A collapsed block's wrapper as markdown-it writes it with raw HTML off: the one piece of HTML put back.
_DETAILS_OPEN = re.compile(r"<p>&lt;details&gt;&lt;summary&gt;(.*?)&lt;/summary&gt;</p>")
_DETAILS_CLOSE = "<p>&lt;/details&gt;</p>"


def html(markdown: str):
    """Markdown -> an IPython HTML object (cross-document glue pastes HTML, not Markdown). Raw HTML is off, so
    text from a config (a label, a name) is shown, never run; only :func:`collapsed`'s wrapper is put back."""
    from IPython.display import HTML

    return HTML(render_markdown(markdown))


def render_markdown(markdown: str) -> str:
    """The HTML of a generated Markdown text: CommonMark with tables, raw HTML escaped, collapsed blocks kept."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return _DETAILS_OPEN.sub(r"<details><summary>\1</summary>", out).replace(_DETAILS_CLOSE, "</details>")


def md_table(rows: list[dict]) -> str:
    """A Markdown table from dicts (the keys of the first are the columns)."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def collapsed(summary: str, table: str) -> str:
    """A table under a closed ``<details>``: the numbers one opens, beneath the sentences one reads."""
    return f"<details><summary>{summary}</summary>\n\n{table}\n\n</details>" if table else ""


def units(attack) -> str:
    """The ε units of an attack's rows: ``pixel``, or what follows ``@`` (``pgd@sigma``: the seed's σ units)."""
    return str(attack).partition("@")[2] or "pixel"
