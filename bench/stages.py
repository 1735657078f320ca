"""Per-run wall time and the grid's peak memory, run cold into a fresh results folder.

    python bench/stages.py [--config configs/default.yaml] [--executor parallel] [--results /tmp/advxai-bench]
    python bench/stages.py --config configs/study.yaml --results results    # the study, kept for `make study`

Runs the grid as `make book` does (the parallel executor by default) and samples memory every 0.25 s: the
machine's memory in use (MemTotal − MemAvailable) above what it was before the grid started — what the build
needs from the machine, each shared library page counted once — and, for comparison, the sum of the resident
sets of the runner and all its descendants (worker processes, notebook kernels; counts TensorFlow's shared
libraries once per kernel, an overestimate). Run it on an otherwise idle machine. Prints one row per run and
the totals.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from advxai.runner import pipeline


def in_use() -> int:
    vm = psutil.virtual_memory()
    return vm.total - vm.available


class Peak:
    """Peak memory in use above the baseline, and peak RSS sum over this process and its descendants, sampled
    in a thread (cheap reads: /proc/meminfo and each process' statm; smaps would stall the kernels)."""

    def __init__(self, every: float = 0.25):
        self.every, self.used, self.rss, self.stop = every, 0, 0, threading.Event()
        self.me, self.base = psutil.Process(), in_use()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            rss = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:  # a process that ended between the listing and the reading
                    pass
            self.used, self.rss = max(self.used, in_use() - self.base), max(self.rss, rss)
            time.sleep(self.every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    ap.add_argument("--executor", default="parallel", help="parallel (as make book), serial or dask")
    ap.add_argument("--results", type=Path, default=None, help="default: a new temporary folder (cold run)")
    args = ap.parse_args()
    results = args.results or Path(tempfile.mkdtemp(prefix="advxai-bench-"))
    peak = Peak()
    t0 = time.perf_counter()
    records = pipeline.run_grid(args.config, results, executor=args.executor, log=lambda *a, **k: None)
    total = time.perf_counter() - t0
    peak.stop.set()
    peak.thread.join()
    print(f"{'stage':<11}{'run':<34}{'seconds':>8}  status")
    for r in records:
        print(f"{r['stage']:<11}{r['run']:<34}{r.get('seconds', 0):8.1f}  {r['status']}")
    by_stage: dict[str, list[float]] = {}
    for r in records:
        by_stage.setdefault(r["stage"], []).append(r.get("seconds", 0))
    print("per stage: " + "; ".join(f"{s} {sum(v):.0f} s over {len(v)} runs" for s, v in by_stage.items()))
    busy = sum(r.get("seconds", 0) for r in records)
    print(f"grid wall time {total:.0f} s ({busy:.0f} s of runs: {busy / total:.2f} runs in flight on average); "
          f"peak memory {peak.used / 2**30:.2f} GB in use above the baseline (RSS sum {peak.rss / 2**30:.2f} GB)")
    if args.results is None:
        shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
