"""One build per results folder: ``advxai run`` / ``book`` hold an exclusive lock on ``RESULTS/.lock``.

Two builds writing one folder would overwrite each other's tables and pages, and the one that finished first would
sweep the other's in-flight run folders. The lock is ``fcntl.flock``: the kernel releases it when the holder exits,
however it exits, so a killed build never leaves a stale lock behind. The file holds the holder's PID, for the
message the second build prints.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import ParameterError

LOCK = ".lock"


@contextmanager
def results_lock(results: Path):
    """Hold ``results/.lock`` for the duration; a second holder stops at once with one line naming the first."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    fd = os.open(results / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ParameterError(f"{results} is in use by another advxai build (PID {holder}); wait for it to finish "
                                 f"or give this one another --results folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
