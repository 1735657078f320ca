"""Per-stage wall time and peak memory of an experiment grid, run cold into a fresh results folder.

    python bench/stages.py [--config configs/default.yaml] [--results /tmp/advxai-bench]

Memory is the peak resident set of the runner plus its notebook kernels (psutil, sampled every 0.1 s),
attributed to the run executing at the time. Prints one row per run and a total.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from advxai import pipeline


class PeakRSS:
    """Samples RSS of this process and all its children; ``mark()`` starts a new attribution window."""

    def __init__(self, every: float = 0.1):
        self.every, self.peak, self.stop = every, 0, threading.Event()
        self.me = psutil.Process()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                procs = [self.me, *self.me.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                rss = 0
            self.peak = max(self.peak, rss)
            time.sleep(self.every)

    def mark(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    ap.add_argument("--results", type=Path, default=None, help="default: a new temporary folder (cold run)")
    args = ap.parse_args()
    results = args.results or Path(tempfile.mkdtemp(prefix="advxai-bench-"))
    sampler = PeakRSS()
    rows, current = [], {}

    def log(*parts, end="\n", **_):
        text = " ".join(str(p) for p in parts)
        if text.startswith("["):  # "[i/n] stage label ..." : a run starts
            sampler.mark()
            current.update(t0=time.perf_counter(), label=text.split("]", 1)[1].strip(" ."))
        elif current:
            rows.append((current.pop("label"), time.perf_counter() - current.pop("t0"), sampler.mark(), text))

    t0 = time.perf_counter()
    pipeline.run_grid(args.config, results, log=log)
    total = time.perf_counter() - t0
    sampler.stop.set()
    print(f"\n{'run':<42} {'seconds':>8} {'peak MB':>8}  status")
    for label, secs, peak, status in rows:
        print(f"{label:<42} {secs:8.1f} {peak / 2**20:8.0f}  {status.split(':')[0]}")
    print(f"{'total (incl. planning and tables)':<42} {total:8.1f} {max(r[2] for r in rows) / 2**20:8.0f}")
    if args.results is None:
        shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
