"""Warming the kernel's cgroup migration lock before the runtime needs it.

Every cgroup migration (a write to ``cgroup.procs``, on v1, v2 and hybrid hosts alike) takes
one global per-CPU rwsem for writing; when no migration happened for a moment, taking it first
waits an RCU grace period (4–16 ms measured here). A container start or an exec pays that inside
``crun create``/``crun exec``, after the daemon has spent several milliseconds preparing the
bundle. ``prewarm()`` starts, in the background, a no-op migration of the daemon into the cgroup
it already is in: the grace period then elapses while the bundle is prepared, and the runtime's
own migration finds the lock warm. Nothing changes membership; a failure only loses the gain.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
_busy = threading.Lock()


def prewarm() -> None:
    """Start a background no-op migration, unless one is already under way."""
    if not _busy.acquire(blocking=False):
        return
    try:
        threading.Thread(target=_migrate_in_place, name="cgroup-prewarm", daemon=True).start()
    except RuntimeError:  # interpreter shutting down
        _busy.release()


def _migrate_in_place() -> None:
    try:
        target = own_procs_file(ROOT, Path("/proc/self/cgroup").read_text())
        if target is not None:
            fd = os.open(target, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
    except OSError:
        pass
    finally:
        _busy.release()


@lru_cache(maxsize=4)
def own_procs_file(root: Path, proc_cgroup: str) -> Path | None:
    """The ``cgroup.procs`` of a hierarchy this process is in, from /proc/self/cgroup's text:
    a v1 controller's first (its directory is always mounted under ``root``), else v2's."""
    v2 = None
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if not controllers:
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            v2 = base / rel / "cgroup.procs"
            continue
        name = controllers.split(",")[0].removeprefix("name=")
        candidate = root / name / rel / "cgroup.procs"
        if candidate.exists():
            return candidate
    return v2 if v2 is not None and v2.exists() else None
