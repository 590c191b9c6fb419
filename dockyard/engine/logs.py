"""Reading json-file logs (with rotated files) for ``GET /containers/{id}/logs``."""
from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
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
    """Existing lines (filtered, tailed), then — with ``follow`` — new ones until stopped."""
    lines: deque[LogLine] | list[LogLine] = deque(maxlen=opts.tail) if opts.tail >= 0 else []
    offset = 0
    for file in _files(path):
        try:
            with open(file, "rb") as handle:
                for raw in handle:
                    line = _parse(raw)
                    if line is not None and _wanted(line, opts):
                        lines.append(line)
                if file == path:
                    offset = handle.tell()
        except FileNotFoundError:
            continue
    yield from lines
    if opts.follow:
        yield from _follow(path, offset, opts, running)


def _follow(path: Path, offset: int, opts: LogOptions,
            running: Callable[[], bool]) -> Iterator[LogLine]:
    pending = b""
    inode = _inode(path)
    idle_after_stop = 0
    while True:
        current = _inode(path)
        if current != inode:  # rotated: start reading the new file from the beginning
            inode, offset, pending = current, 0, b""
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
        except FileNotFoundError:
            chunk = b""
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


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0
