"""The book as one PDF for readers who cite, print and review: jupyter-book's single-page HTML builder over the
chapters (``_toc_pdf.yml``: the executed run pages stay in the HTML book), printed by the system Chromium —
the browser the book's tests already drive — with its figures, MathJax formulas, tables and bibliography.

Chosen over the LaTeX builder: the book's tables are HTML (styled pandas tables, collapsed cells), which LaTeX
drops or garbles, and a TeX installation is a further ≈ 1 GB of Debian packages; the HTML page is what readers
see, so the PDF is that page, paginated."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import AdvXAIError


def chromium() -> str:
    """The system Chromium, or a one-line error naming the fix."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        raise AdvXAIError("make pdf needs Chromium to print the book; install it (apt-get install chromium)")
    return found


def single_html(root: Path, log: Path) -> Path:
    """Build the single-page HTML of the chapters (the results must have been built: `make book` or `make study`)."""
    if not (root / "book" / "results.ipynb").exists():
        raise AdvXAIError("no built results to print; run `make book` (quick) or `make study` first")
    jb = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(jb), "build", str(root), "--path-output", str(root), "--builder", "singlehtml",
                          "--toc", str(root / "_toc_pdf.yml"), "--keep-going"],
                         check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(out.stdout)
    index = root / "_build" / "singlehtml" / "index.html"
    if out.returncode != 0 or not index.exists():
        raise AdvXAIError(f"the single-page HTML build failed; see {log}")
    redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index.read_text())
    page = index.parent / redirect.group(1) if redirect else index  # the root document (book/intro.html)
    # Its links to _static/ and _images/ are written relative to the build's root, where this copy is put; every
    # collapsed block is opened, so the PDF holds the tables a reader of the HTML opens on demand.
    printable = index.parent / "advxai.html"
    text = re.sub(r"<details(?![^>]*\bopen\b)", "<details open", page.read_text())
    text = re.sub(r'(src|href)="(?:\.\./)+(_images|_static)/', r'\1="\2/', text)  # a subfolder page's "../_images"
    # the theme prints a contents list between the title and the text: page 1 is the abstract instead
    text = text.replace("</head>", "<style>@media print { #jb-print-toc { display: none; } }</style></head>", 1)
    printable.write_text(text)
    return printable


def print_pdf(html: Path, out: Path, budget_ms: int = 60000) -> Path:
    """Print ``html`` to ``out`` with headless Chromium, after MathJax has typeset (a virtual-time budget), through
    a temporary name so an interrupted print leaves no partial PDF."""
    from ..artefacts import atomic_path

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".pdf") as tmp:
        run = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update",
                              "--run-all-compositor-stages-before-draw", f"--virtual-time-budget={budget_ms}",
                              "--no-pdf-header-footer", f"--print-to-pdf={tmp}", html.resolve().as_uri()],
                             check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        if run.returncode != 0 or not Path(tmp).exists() or Path(tmp).stat().st_size == 0:
            raise AdvXAIError(f"Chromium could not print {html}: {run.stdout.strip().splitlines()[-1:]}")
    return out


def page_count(pdf: Path) -> int:
    """Pages of a PDF: its page objects (``/Type /Page``, not ``/Pages``)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", Path(pdf).read_bytes()))
