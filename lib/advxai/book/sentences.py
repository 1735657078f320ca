"""Sentences that exist only where their part of the study ran, written in ``book/sentences.yml`` (where an author
edits them) and filled with the facts computed by :mod:`advxai.book`: one entry per glue name, shown as its
sentences where its ``when`` fact was computed, else as its one ``not_run`` line. A sentence one of whose facts was
not computed (it reads :data:`advxai.book.abstract.NOT_IN_BUILD`) is left out, so no sentence carries a missing
number. Every other sentence of the book is written in its chapter with its facts glued inline."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from .abstract import NOT_IN_BUILD

SENTENCES = Path(__file__).resolve().parents[3] / "book" / "sentences.yml"
FIELD = re.compile(r"\{([a-z0-9-]+)\}")


@cache
def table(path: Path = SENTENCES) -> dict:
    """The entries of ``book/sentences.yml``; each needs ``when``, ``not_run`` and ``sentences``."""
    import yaml

    entries = yaml.safe_load(path.read_text())
    for name, e in entries.items():
        missing = {"when", "not_run", "sentences"} - set(e)
        if missing:
            raise ValueError(f"{path}: entry {name!r} lacks {sorted(missing)}; add them")
    return entries


def render(name: str, facts: dict[str, str], entries: dict | None = None) -> str:
    """The Markdown of entry ``name`` with ``facts`` filled in (a bulleted list where the entry says ``list``)."""
    e = (entries or table())[name]
    if facts.get(e["when"], NOT_IN_BUILD) == NOT_IN_BUILD:
        return e["not_run"]
    said = []
    for s in e["sentences"]:
        keys = FIELD.findall(s)
        unknown = [k for k in keys if k not in facts]
        if unknown:
            raise KeyError(f"book/sentences.yml: {name!r} names facts no code computes: {unknown}")
        if all(facts[k] != NOT_IN_BUILD for k in keys):
            said.append(FIELD.sub(lambda m: facts[m[1]], " ".join(s.split())))
    return "\n".join(f"- {s}" for s in said) if e.get("list") else " ".join(said)


def glue_all(facts: dict[str, str]) -> dict[str, str]:
    """Every entry rendered, by glue name (Markdown)."""
    return {name: render(name, facts) for name in table()}
