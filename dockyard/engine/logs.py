"""Reading json-file logs (with rotated files) for ``GET /containers/{id}/logs``."""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO
from dataclasses import dataclass
from pathlib import Path

from dockyard.util.timefmt import parse_rfc3339


@dataclass(frozen=True)
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    since: float = 0.0
    until: float = 0.0
    tail: int = -1  # -1: all
    timestamps: bool = False
    follow: bool = False


@dataclass(frozen=True)
class LogLine:
    stream: str
    text: bytes
    time: str


def _files(path: Path) -> list[Path]:
    rotated = sorted((p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    return [*rotated, path]


def _parse(raw: bytes) -> LogLine | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return LogLine(entry.get("stream", "stdout"), entry.get("log", "").encode(),
                   entry.get("time", ""))


def _wanted(line: LogLine, opts: LogOptions) -> bool:
    if line.stream == "stdout" and not opts.stdout:
        return False
    if line.stream == "stderr" and not opts.stderr:
        return False
    if opts.since or opts.until:
        stamp = parse_rfc3339(line.time)
        if opts.since and stamp < opts.since:
            return False
        if opts.until and stamp > opts.until:
            return False
    return True


def read(path: Path, opts: LogOptions, running: Callable[[], bool]) -> Iterator[LogLine]:
    """Existing lines (filtered, tailed), then — with ``follow`` — new ones until stopped.
    The files are opened now, before the caller answers: a container removed right after the
    request (docker-py's ``run(remove=True)`` does that) loses none of its output."""
    handles: list[tuple[Path, BinaryIO]] = []
    for file in _files(path):
        try:
            handles.append((file, open(file, "rb")))
        except FileNotFoundError:
            continue
    return _lines(path, handles, opts, running)


def _lines(path: Path, handles: list[tuple[Path, BinaryIO]], opts: LogOptions,
           running: Callable[[], bool]) -> Iterator[LogLine]:
    lines: deque[LogLine] | list[LogLine] = deque(maxlen=opts.tail) if opts.tail >= 0 else []
    current: BinaryIO | None = None
    pending = b""
    try:
        for file, handle in handles:
            for raw in handle:
                if not raw.endswith(b"\n") and file == path:
                    pending = raw  # a line being written: completed while following
                    break
                line = _parse(raw)
                if line is not None and _wanted(line, opts):
                    lines.append(line)
            if file == path:
                current = handle
        yield from lines
        if opts.follow:
            yield from _follow(path, current, pending, opts, running)
    finally:
        for _, handle in handles:
            handle.close()


def _follow(path: Path, handle: BinaryIO | None, pending: bytes, opts: LogOptions,
            running: Callable[[], bool]) -> Iterator[LogLine]:
    inode = os.fstat(handle.fileno()).st_ino if handle is not None else 0
    idle_after_stop = 0
    try:
        while True:
            chunk = handle.read() if handle is not None else b""
            if not chunk and _inode(path) not in (0, inode):
                # rotated (or created): the old file is read to its end; on to the new one
                try:
                    fresh = open(path, "rb")
                except FileNotFoundError:
                    continue
                if handle is not None:
                    handle.close()
                handle, inode, pending = fresh, os.fstat(fresh.fileno()).st_ino, b""
                continue
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = _parse(raw)
                    if line is not None and _wanted(line, opts):
                        if opts.until and parse_rfc3339(line.time) > opts.until:
                            return
                        yield line
                continue
            if not running():
                idle_after_stop += 1
                if idle_after_stop > 2:
                    return
            if opts.until and time.time() > opts.until:
                return
            time.sleep(0.05)
    finally:
        if handle is not None:
            handle.close()


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0
