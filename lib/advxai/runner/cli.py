"""One entry point: ``advxai run CONFIG``, ``advxai fetch DATASET``, ``advxai book CONFIG``.

Every error of ours is printed as one line (``advxai: error: ...``) naming the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..errors import AdvXAIError, DataError, ParameterError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
NEEDS_TENSORFLOW = {"run", "validate", "plan", "fetch", "book"}
# the book's packages (the `book` extra): the library alone (what the lab installs) does not run or build the book
NEEDS_BOOK = {"run": ("papermill",), "book": ("papermill", "jupyter_book"), "pdf": ("jupyter_book",)}
WRITES_RESULTS = {"run", "book", "validate"}  # validate: would `run` on this folder work
# the system's own folders: a results folder there is a slip (as root it would even be written)
SYSTEM = tuple(Path(p) for p in ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot"))


def _quiet_tensorflow() -> None:
    """Import TensorFlow with file descriptors 1 and 2 on /dev/null: its C++ start-up lines (absl, oneDNN) are written
    before any Python logging setting applies, and would precede our one-line errors. Kernels keep their logs."""
    from .executors import quiet_output

    if "tensorflow" in sys.modules:
        return
    with quiet_output(Path(os.devnull)):
        import tensorflow  # noqa: F401


def _check_book_packages(cmd: str) -> None:
    import importlib.util

    missing = [m for m in NEEDS_BOOK.get(cmd, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise ParameterError(f"`advxai {cmd}` needs the book's packages ({', '.join(missing)} missing): "
                             "pip install 'advxai[book]', or `make book` in a clone")


def _check_paths(args) -> None:
    """Folders given on the command line, refused in one line before any work: --results must be a directory (or
    not exist yet) that a build can write, outside the system's own folders; --book must lie under
    --root, where jupyter-book looks for it."""
    results = getattr(args, "results", None)
    if results is not None:
        where = Path(results).resolve()
        if any(where.is_relative_to(s) for s in SYSTEM):
            raise ParameterError(f"--results {results} is under {where.parts[1] and '/' + where.parts[1]}; "
                                 "give a folder of your own")
        if where.exists() and not where.is_dir():
            raise ParameterError(f"--results {results} is a file, not a folder; give a folder (it is created)")
        if args.cmd in WRITES_RESULTS:
            existing = next(p for p in (where, *where.parents) if p.exists())
            if not os.access(existing, os.W_OK | os.X_OK):
                raise ParameterError(f"--results {results}: {existing} is not writable; give a folder you can write")
    if args.cmd == "book" and not Path(args.book).resolve().is_relative_to(Path(args.root).resolve()):
        raise ParameterError(f"--book {args.book} is outside --root {args.root}; jupyter-book builds only what "
                             "lies under the root: give a folder inside it")


def _run(args) -> int:
    from .pipeline import run_grid

    options = {"workers": args.workers, **({"scheduler": args.scheduler} if args.executor == "dask" else {})}
    records = run_grid(args.config, args.results, args.executor, Path(args.book) if args.book else None,
                       verbose=args.verbose, **options)
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed if args.executor == "dask" else []:  # the local executors report each as it happens
        print(f"advxai: failed: {r['stage']} {r['run']}: {r['error']} (notebook: {r['notebook']})", file=sys.stderr)
    return 1 if failed else 0


def _validate(args) -> int:
    """Check a config against the schema and the registries before any work; one line either way."""
    from .pipeline import load_config, plan

    cfg = load_config(args.config)
    runs = plan(cfg, Path(args.results))
    missing = {r.params["dataset"]: r.params["data_md5"] for r in runs
               if r.stage == "train" and str(r.params["data_md5"]).startswith("unavailable")}
    if missing:
        name, why = next(iter(missing.items()))
        raise DataError(f"{args.config}: dataset {name} is {why}")
    print(f"{args.config}: valid; {len(runs)} runs over "
          f"{len({(r.params.get('dataset'), r.params.get('size')) for r in runs if r.stage == 'train'})} datasets")
    return 0


def _plan(args) -> int:
    """The runs a config makes, which are cached, which will run, and how long that is expected to take."""
    from .pipeline import plan_rows, plan_text

    print(plan_text(plan_rows(args.config, args.results, why=args.why)))
    return 0


def _keys(args) -> int:
    """Which library modules each stage's cache key hashes (docs/cache-keys.md holds the same table)."""
    from .runs import key_table

    print(key_table())
    return 0


def _fetch(args) -> int:
    """Download a raw set (chest_xray, isic2018: verified, unpacked) or a MedMNIST file (MD5-checked), then load it."""
    from .. import data

    if args.dataset in data.RAW:
        data.fetch_raw(args.dataset, base_url=args.base_url)
    ds = data.load(args.dataset, args.size)
    print(f"{ds.name} {ds.size}px: {ds.counts()} md5 {ds.md5}")
    return 0


def _book(args) -> int:
    """Run the grid (reusing finished runs), then build the jupyter-book and print the index.html path."""
    code = _run(args)
    root = Path(args.root)
    jb = Path(sys.executable).with_name("jupyter-book")  # the venv's own jupyter-book
    log = Path(args.results) / "logs" / "book.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    everything = ["--all"] if _grid_changed(root, Path(args.book)) else []  # every page's sidebar lists the runs
    out = subprocess.run([str(jb), "build", str(root), "--path-output", str(root), *everything,
                          "--warningiserror" if args.strict else "--keep-going"], check=False,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write_text(out.stdout)
    if args.verbose:
        print(out.stdout)
    index = (root / "_build" / "html" / "index.html").resolve()
    if out.returncode != 0 or not index.exists():
        print(f"advxai: error: jupyter-book build failed; see {log} (or rerun with --verbose)", file=sys.stderr)
        return 1
    missing = [line for line in out.stdout.splitlines() if "Glue reference" in line or "mystnb.glue" in line]
    if missing:  # a chapter pastes a number the results did not compute: the book would show a blank
        print(f"advxai: error: {len(missing)} missing glue references, e.g. {missing[0].strip()[:160]}; see {log}",
              file=sys.stderr)
        return 1
    stale = _remove_stale_pages(root, Path(args.book))
    print(f"book: {index}" + (f" ({stale} pages of an earlier grid removed)" if stale else ""))
    return code


def _built_runs(root: Path, book: Path) -> Path:
    return root / "_build" / "html" / book.resolve().relative_to(root.resolve()) / "runs"


def _grid_changed(root: Path, book: Path) -> bool:
    """Whether the run pages to publish differ from those built before: then every page is written again, or the
    unchanged chapters' sidebars (Sphinx rewrites only outdated pages) keep links to the earlier grid's runs."""
    built = {p.stem for p in _built_runs(root, book).glob("*.html")}
    return bool(built) and built != {p.stem for p in (book / "runs").glob("*.ipynb")}


def _remove_stale_pages(root: Path, book: Path) -> int:
    """Delete built run pages whose notebook the current grid no longer publishes (Sphinx keeps them)."""
    built = _built_runs(root, book)
    current = {p.stem for p in (book / "runs").glob("*.ipynb")}
    stale = [p for p in built.glob("*.html") if p.stem not in current]
    for p in stale:
        p.unlink()
    return len(stale)


def _pdf(args) -> int:
    from . import pdf

    root = Path(args.root)
    html = pdf.single_html(root, Path(args.results) / "logs" / "pdf.log")
    out = pdf.print_pdf(html, Path(args.out))
    print(f"pdf: {out.resolve()} ({pdf.page_count(out)} pages)")
    return 0


def _schema(args) -> int:
    import json

    from .schema import build_schema

    print(json.dumps(build_schema(), indent=1, ensure_ascii=False))
    return 0


def _course_copy(args) -> int:
    from ..book import course

    for path in getattr(course, f"{args.cmd}_copy")(args.source, args.out):
        print(f"{args.cmd} copy: {path}")
    return 0


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="show kernel, TensorFlow and Sphinx output on the terminal")
    p.add_argument("--executor", default="parallel",
                   help="parallel (default: several runs at once on this machine), serial (one at a time) or dask")
    p.add_argument("--scheduler", default=None, help="dask: address of an existing scheduler, tcp://HOST:PORT")
    p.add_argument("--workers", type=int, default=None,
                   help="runs at once (parallel: default 2 on 2+ cores, 1 for a gpu config; dask: default cores / 2)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="advxai", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute a YAML experiment grid with papermill")
    r.add_argument("config", type=Path)
    r.add_argument("--results", type=Path, default=Path("results"))
    _executor_args(r)
    r.add_argument("--book", default=None, help="publish executed notebooks into this book folder")
    r.set_defaults(fn=_run)
    for name, fn, text in [("validate", _validate, "check a config before any work"),
                           ("plan", _plan, "list the runs of a config: cached, to run, expected time")]:
        v = sub.add_parser(name, help=text)
        v.add_argument("config", type=Path)
        v.add_argument("--results", type=Path, default=Path("results"))
        if name == "plan":
            v.add_argument("--why", action="store_true",
                           help="for each run that would rerun: what changed against its latest cached run")
        v.set_defaults(fn=fn)
    sub.add_parser("keys", help="the library modules each stage's cache key hashes").set_defaults(fn=_keys)
    sub.add_parser("schema", help="print the config's JSON Schema (for an editor's YAML plug-in)").set_defaults(
        fn=_schema)
    f = sub.add_parser("fetch", help="download (checked) and load a dataset: a MedMNIST flag, chest_xray, isic2018")
    f.add_argument("dataset")
    f.add_argument("--size", type=int, default=28)
    f.add_argument("--base-url", default=None, help="chest_xray, isic2018: fetch each file from BASE_URL/FILE")
    f.set_defaults(fn=_fetch)
    b = sub.add_parser("book", help="run a grid, then build the jupyter-book")
    b.add_argument("config", type=Path)
    b.add_argument("--results", type=Path, default=Path("results"))
    _executor_args(b)
    b.add_argument("--book", default="book")
    b.add_argument("--root", default=".", help="folder holding _config.yml and _toc.yml")
    b.add_argument("--strict", action="store_true", help="treat Sphinx warnings as errors")
    b.set_defaults(fn=_book)
    d = sub.add_parser("pdf", help="print the built book (study or quick) as one PDF with the system Chromium")
    d.add_argument("--root", default=".", help="folder holding _config.yml and _toc_pdf.yml")
    d.add_argument("--results", type=Path, default=Path("results"))
    d.add_argument("--out", default="_build/pdf/advxai.pdf")
    d.set_defaults(fn=_pdf)
    for name, text in [("student", "copy the course notebooks with their solutions and answer key stripped"),
                       ("teacher", "copy the course notebooks with solutions shown, the answer key and the rubric")]:
        s = sub.add_parser(name, help=text)
        s.add_argument("source", type=Path, nargs="?", default=Path("book/course"))
        s.add_argument("--out", type=Path, default=Path(name))
        s.set_defaults(fn=_course_copy)
    args = p.parse_args(argv)
    try:
        _check_book_packages(args.cmd)
        _check_paths(args)
        if args.cmd in NEEDS_TENSORFLOW:
            _quiet_tensorflow()
        return args.fn(args)
    except AdvXAIError as exc:
        print(f"advxai: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("advxai: interrupted; finished runs are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
