"""The book as readers see it: built from the tiny grid's executed runs, served on localhost and opened page by
page in headless Chromium (Playwright driving Debian's `chromium`): every page loads, its figures load, no
internal link is broken; screenshots of the index and a results page are saved under the test output."""

import functools
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = Path(os.environ.get("ADVXAI_TEST_OUTPUT", ROOT / "results" / "test-output"))


@pytest.fixture(scope="module")
def built_book(tiny_grid, tmp_path_factory):
    """A copy of the book sources with the tiny grid's run pages, built by jupyter-book (course executed)."""
    _, book, _ = tiny_grid
    root = tmp_path_factory.mktemp("bookroot")
    for name in ("_config.yml", "_toc.yml", "_toc_pdf.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "_static", root / "_static")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("runs", "results.ipynb"))
    shutil.copytree(book / "runs", root / "book" / "runs")
    shutil.copy(book / "results.ipynb", root / "book" / "results.ipynb")
    shutil.copy(book / "results.csv", root / "book" / "results.csv")
    jb = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(jb), "build", str(root), "--path-output", str(root), "--keep-going"],
                         capture_output=True, text=True)
    html = root / "_build" / "html"
    assert out.returncode == 0 and (html / "index.html").exists(), out.stdout[-2000:] + out.stderr[-2000:]
    missing = [line for line in (out.stdout + out.stderr).splitlines() if "Glue reference" in line]
    assert not missing, missing[:3]  # the tiny grid is not the default one: every chapter still finds its numbers
    return html


def test_chapters_narrate_the_grid_that_ran(built_book):
    """The chapters' paragraphs come from the tiny grid's tables (PneumoniaMNIST only), not the default grid."""
    ga = (built_book / "book" / "gradattacks.html").read_text()
    assert "pneumoniamnist_28 · cnn" in ga and "the highest fooling rate over the correctly classified images" in ga
    assert "flip rate" in ga and "chest_xray" not in ga.split("Which images")[1]
    rm = (built_book / "book" / "radarmix.html").read_text()
    assert "fooled" in rm and "not fooled" in rm
    repro = (built_book / "book" / "reproduction.html").read_text()
    assert "same setting?" in repro and "holds here?" in repro and "not comparable" not in repro
    intro = (built_book / "index.html").read_text() + (built_book / "book" / "intro.html").read_text()
    assert "a build of configuration" in intro and "tiny" in intro and "make study" in intro  # the tier


def test_course_solutions_run_in_the_book(built_book):
    page = (built_book / "book" / "course" / "exercises.html").read_text()
    assert "matches ART" in page  # the hidden FGSM solution agrees with ART
    # PGD, Grad-CAM, fooling rate (FGSM, DeepFool), shift split, detector: every hidden solution passes its check
    assert page.count("matches the library") == 6 and "differs from" not in page and "not implemented" not in page
    assert "right: fgsm moved more" in page  # exercise 4, decided by its intervals
    assert "evades the detector better than plain PGD" in page and "manipulated: labels kept" in page
    assert "randomised down to conv0_0" in page  # the sanity check's cascade reached the first layer
    assert "toggle" in page.lower()  # solutions sit behind a toggle
    # the four figures: attack and maps, the detector's ROC, the adaptive attack's evasion, the randomisation cascade
    assert page.count("<img") >= 4


def test_every_result_page_shows_its_provenance(built_book):
    for page in (built_book / "book" / "runs").glob("*.html"):
        text = page.read_text()
        assert "Provenance" in text and "git commit" in text and "data MD5" in text, page.name


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    handler.log_message = lambda *a, **k: None
    httpd = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# Figures, tables, code and display formulas of a chapter that stick out of the text column, or (code, formulas) need
# a scroll bar to be read: what a reader at 1,400 or 800 px would find cut off. Collapsed blocks are skipped.
OVERFLOW_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const column = document.querySelector('article.bd-article') || main;  // the text column, not the page
  // a block the chapter marks full-width may use the margin too, never more than the page
  const right = e => (e.closest('.full-width') ? main : column).getBoundingClientRect().right + 1;
  const shown = e => !e.closest('details:not([open])') && e.getBoundingClientRect().width > 0;
  const out = [...main.querySelectorAll('img, table, pre, mjx-container[display="true"]')].filter(shown)
    .filter(e => e.getBoundingClientRect().right > right(e)
                 || (['PRE', 'MJX-CONTAINER'].includes(e.tagName) && e.scrollWidth > e.clientWidth + 1));
  return out.map(e => e.tagName + ' ' + (e.getAttribute('src') || e.textContent.slice(0, 60)));
}"""

# What a reader should never meet on a page: a Markdown table left as text (pipes and dashes), the same figure
# twice, and a sentence under a figure that was not drawn (a caption that says "the figure above" right after the
# "not run" line).
RENDER_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
  const lines = prose.textContent.split('\\n').map(l => l.trim());
  const raw = lines.filter(l => /\\|\\s*:?-{3,}:?\\s*\\|/.test(l));  // a table's |---| rule, as text
  const srcs = [...main.querySelectorAll('img')].map(e => e.getAttribute('src'))
    .filter(s => s && !s.startsWith('data:'));
  const twice = srcs.filter((s, i) => srcs.indexOf(s) !== i);
  return {raw: raw, twice: twice};
}"""


# A chapter speaks of the study, not of how it was worked on: no commit hashes, working periods or lent machines.
DEV_TALK = re.compile(r"\b(?:up to commit|commit [0-9a-f]{7,}|" + "sess" + r"ions?|lent (?:GPU|machine)"
                      r"|no TensorFlow)\b", re.I)


# the page's own signal that it is done: the document and every image finished loading (an image that failed
# counts as finished: the test then reports it broken)
PAGE_DONE = "() => document.readyState === 'complete' && [...document.images].every(i => i.complete)"


def test_every_page_loads_in_a_real_browser(built_book, server):
    if CHROMIUM is None:
        if os.environ.get("ADVXAI_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; install Debian's chromium package (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); CI sets ADVXAI_REQUIRE_BROWSER=1")
    from playwright.sync_api import sync_playwright

    pages = sorted(p.relative_to(built_book).as_posix() for p in built_book.rglob("*.html")
                   if not p.relative_to(built_book).parts[0].startswith("_"))
    assert "index.html" in pages and any(p.startswith("book/runs/") for p in pages)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    broken, failed, wide, raw, twice, talk = [], [], [], [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # no clock: a page is judged once its own signals say it is done (a loaded machine is slow, not broken)
        page.set_default_timeout(0)
        for rel in pages:
            response = page.goto(f"{server}/{rel}", wait_until="load")
            if response is None or not response.ok:
                failed.append(rel)
                continue
            if rel == "index.html":  # it redirects (meta refresh) to the first chapter
                page.wait_for_url(lambda u: not u.endswith("index.html"), wait_until="load")
            page.wait_for_function(PAGE_DONE)
            for img in page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete && e.naturalWidth])"):
                if not img[1]:
                    broken.append(f"{rel}: image {img[0]}")
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                url = urlparse(href)
                if url.netloc != urlparse(server).netloc:
                    continue  # external (launch buttons, citations' DOIs): not fetched offline
                target = built_book / unquote(url.path).lstrip("/")
                if target.is_dir():
                    target = target / "index.html"
                if not target.exists():
                    broken.append(f"{rel}: link {url.path}")
            found = page.evaluate(RENDER_JS)
            raw += [f"{rel}: {line[:60]}" for line in found["raw"]]
            twice += [f"{rel}: {src}" for src in found["twice"]]
            if Path(rel).stem in CHAPTERS and rel.startswith("book/"):  # no development log, no machine talk
                talk += [f"{rel}: {m}" for m in DEV_TALK.findall(page.inner_text("main"))]
            if Path(rel).stem in CHAPTERS and rel.startswith("book/"):  # nothing wider than its column
                page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
                for width in (1400, 800):
                    page.set_viewport_size({"width": width, "height": 900})
                    wide += [f"{rel} at {width} px: {w}" for w in page.evaluate(OVERFLOW_JS)]
                page.set_viewport_size({"width": 1400, "height": 900})
            if rel == "index.html" or rel == "book/results.html" or Path(rel).stem in CHAPTERS:
                page.screenshot(path=str(OUTPUT / f"{Path(rel).stem}.png"), full_page=True)
        browser.close()
    assert not failed, f"pages that did not load: {failed}"
    assert not broken, f"broken figures or internal links: {broken[:10]}"
    assert not wide, f"figures, tables, code or formulas wider than their column: {wide[:10]}"
    assert not raw, f"Markdown tables left as text: {raw[:10]}"
    assert not twice, f"a figure shown twice on one page: {twice[:10]}"
    assert not talk, f"development history or machine talk in a chapter: {talk[:10]}"
    assert (OUTPUT / "index.png").stat().st_size > 10_000 and (OUTPUT / "results.png").stat().st_size > 10_000


def test_the_pdf_holds_every_chapter_figure_and_the_bibliography(built_book):
    """`make pdf`: the chapters' single-page HTML printed by Chromium; every chapter's title, every figure and the
    bibliography are in the page it prints, and the PDF has pages for them."""
    if CHROMIUM is None:
        if os.environ.get("ADVXAI_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; install Debian's chromium package (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from advxai.runner import pdf

    root = built_book.parents[1]
    html = pdf.single_html(root, root / "pdf.log")
    page = html.read_text()
    for title in ["Grad-Attacks: what the attacks do", "Detecting attacks from a single input", "Reproduction report",
                  "Discussion and limitations", "Results", "Bibliography"]:
        assert title in page, title
    assert "/runs/" not in page.split("<body")[1].split("Results")[0]  # no executed run pages in the PDF
    images = [unquote(src) for src in re.findall(r'<img[^>]+src="([^"]+)"', page)]
    assert len(images) >= 4 and all((html.parent / src).exists() for src in images if not src.startswith("data:"))
    out = pdf.print_pdf(html, root / "advxai.pdf")
    assert pdf.page_count(out) >= 10 and out.read_bytes().startswith(b"%PDF")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, OUTPUT / "advxai.pdf")  # for a reader of the test output to open


CHAPTERS = ["intro", "data", "methods", "gradattacks", "radarmix", "detection", "robustness", "reproduction",
            "discussion", "rerun"]


def prose(html: str) -> tuple[list[str], list[str]]:
    """The generated prose of a built page — the text the chapter pastes from the results (glued HTML outputs),
    outside collapsed blocks, tables, code and math — split into sentences, each paragraph or list item apart; and
    the captions of the page's figures (the paragraph after each image, before the next image)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article.bd-article") or soup
    captions = []
    for img in article.find_all("img"):
        nxt = img.find_next(["p", "img"])
        captions.append(nxt.get_text(" ", strip=True) if nxt is not None and nxt.name == "p" else "")
    sentences = []
    for block in article.select("div.output.text_html"):
        for hidden in block.select("details, table, pre, .math, script, style"):
            hidden.decompose()
        for p in block.find_all(["p", "li"]):
            if p.find(["p", "li"]):
                continue
            text = p.get_text(" ", strip=True)
            sentences += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])", text) if len(s.split()) > 2]
    return sentences, captions


def test_generated_prose_reads_as_a_person_would_write_it(built_book):
    """Every chapter's generated prose: no sentence over 60 words, no clause (numbers masked) more than twice on a
    page; every figure followed by its caption."""
    worst, repeated = (0, ""), (0, "")
    for name in CHAPTERS:
        sentences, captions = prose((built_book / "book" / f"{name}.html").read_text())
        for s in sentences:
            words = len(s.split())
            assert words <= 60, f"{name}: a sentence of {words} words: {s[:200]}"
            worst = max(worst, (words, s[:80]))
        clauses = [re.sub(r"[\d.,\[\]]+", "#", c.strip().lower()) for s in sentences for c in re.split(r"[;:]", s)]
        counts = {c: clauses.count(c) for c in set(clauses) if len(c.split()) >= 4}
        top = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
        assert top[1] <= 2, f"{name}: a clause repeated {top[1]} times: {top[0][:120]}"
        repeated = max(repeated, (top[1], top[0][:80]))
        if name != "data":  # the Data page's figures are its notebook's outputs, introduced by the cell above
            assert all(len(c.split()) >= 8 for c in captions), f"{name}: a figure without its caption"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "prose.txt").write_text(f"longest sentence: {worst}\nmost repeated clause: {repeated}\n")


def test_a_different_grid_rebuilds_every_page_so_no_sidebar_links_an_earlier_grids_run(tmp_path):
    from advxai.runner.cli import _grid_changed

    book, built = tmp_path / "book", tmp_path / "_build" / "html" / "book" / "runs"
    (book / "runs").mkdir(parents=True)
    assert not _grid_changed(tmp_path, book)  # nothing built yet: an ordinary build
    built.mkdir(parents=True)
    for name in ("pneumoniamnist-1train-cnn", "pneumoniamnist-2attack-cnn"):
        (built / f"{name}.html").write_text("")
        (book / "runs" / f"{name}.ipynb").write_text("{}")
    assert not _grid_changed(tmp_path, book)  # the same grid: Sphinx's incremental build suffices
    (book / "runs" / "pneumoniamnist-2attack-cnn.ipynb").unlink()
    (book / "runs" / "chest_xray-1train-cnn.ipynb").write_text("{}")
    assert _grid_changed(tmp_path, book)  # another grid: every page again (jupyter-book build --all)
