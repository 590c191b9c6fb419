"""Crash-safe file writes: write a temporary sibling, fsync, rename over the target."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, mode: int = 0o644, *, sync: bool = True) -> None:
    """Atomically replace ``path`` with ``data``; readers see the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_json(path: Path, value: Any, *, sync: bool = True) -> None:
    write_bytes(path, json.dumps(value, separators=(",", ":")).encode(), sync=sync)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
