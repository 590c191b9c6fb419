"""Progress output of the compose commands, like Compose v2.

A converger reports events ``(kind, name, status)``, e.g. ``("Container", "p-db-1",
"Started")``. How they are shown depends on ``--progress``:

* ``plain`` (and ``auto`` when stderr is not a terminal): one line per event,
  `` Container p-db-1  Started``;
* ``tty`` (``auto`` on a terminal): a block redrawn in place, a ``[+] Running 2/3`` header and
  one line per resource with a spinner (or ✔/✘), its last status and its elapsed time;
* ``quiet``: nothing.

:class:`Board` is the pure part (events + a clock → frame text); :class:`Printer` owns the
output and, in tty mode, a small refresh thread started by ``with printer:``. A printer that
is never entered writes plain lines even on a terminal.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

MODES = ("auto", "tty", "plain", "quiet")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DONE, ERROR = "✔", "✘"
WORKING_STATUSES = frozenset({"Recreate", "Restart", "Waiting", "Pulling", "Building",
                              "Creating", "Starting", "Stopping", "Removing", "Killing",
                              "Restarting", "Pausing", "Unpausing"})
ERROR_STATUSES = frozenset({"Error", "Unhealthy"})
DONE_STATUSES = frozenset({"Running"})  # an up-to-date container
UP, ERASE = "\x1b[{}A", "\x1b[2K"
GREEN, RED, BLUE, RESET = "\x1b[32m", "\x1b[31m", "\x1b[34m", "\x1b[0m"
REFRESH = 0.1


def state_of(status: str) -> str:
    """``working`` | ``done`` | ``error`` for a status text."""
    if status in ERROR_STATUSES:
        return "error"
    if status in WORKING_STATUSES or (status.endswith("ing") and status not in DONE_STATUSES):
        return "working"
    return "done"


@dataclass
class Line:
    resource: str  # "Container p-db-1"
    status: str
    started: float
    ended: float | None = None

    @property
    def state(self) -> str:
        return state_of(self.status)

    def elapsed(self, now: float) -> float:
        return max(0.0, (self.ended if self.ended is not None else now) - self.started)


class Board:
    """The state of a tty block: one line per resource, in first-seen order. Thread-safe."""

    def __init__(self, title: str = "Running", clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.title = title
        self.clock = clock
        self.lines: dict[str, Line] = {}
        self._lock = threading.Lock()

    def event(self, kind: str, name: str, status: str) -> None:
        now = self.clock()
        key = f"{kind} {name}"
        with self._lock:
            line = self.lines.get(key)
            if line is None:
                line = self.lines[key] = Line(key, status, now)
            line.status = status
            line.ended = None if line.state == "working" else (line.ended or now)

    def frame(self, width: int = 80, height: int = 0, color: bool = False) -> list[str]:
        """The block's lines (no newlines). ``height`` > 0 keeps the last lines that fit."""
        now = self.clock()
        with self._lock:
            lines = list(self.lines.values())
        done = sum(1 for ln in lines if ln.state != "working")
        head = f"[+] {self.title} {done}/{len(lines)}"
        id_w = max((len(ln.resource) for ln in lines), default=0)
        st_w = max((len(ln.status) for ln in lines), default=0)
        tick = int(now / REFRESH)
        body = [_render(ln, id_w, st_w, now, width, tick, color) for ln in lines]
        if height > 1 and len(body) > height - 1:
            body = body[len(body) - (height - 1):]
        return [head, *body]


def _render(ln: Line, id_w: int, st_w: int, now: float, width: int, tick: int,
            color: bool) -> str:
    state = ln.state
    icon = SPINNER[tick % len(SPINNER)] if state == "working" else \
        ERROR if state == "error" else DONE
    text = f" {icon} {ln.resource.ljust(id_w)}  {ln.status.ljust(st_w)}"
    timer = f"{ln.elapsed(now):.1f}s"
    gap = width - 1 - len(text) - len(timer)  # the timer ends one column before the edge
    if gap < 2:  # too narrow: drop the timer and cut the text (a wrapped line breaks redraw)
        return _paint(text[:max(0, width - 1)].rstrip(), "", state, color)
    return _paint(text + " " * gap, timer, state, color)


def _paint(text: str, timer: str, state: str, color: bool) -> str:
    if not color:
        return text + timer
    tint = GREEN if state == "done" else RED if state == "error" else ""
    if tint and len(text) > 1:
        text = text[0] + tint + text[1] + RESET + text[2:]
    return text + (BLUE + timer + RESET if timer else "")


def choose_mode(mode: str | None, stream: TextIO, env: dict[str, str] | None = None) -> str:
    """The effective mode: ``tty``, ``plain`` or ``quiet``."""
    mode = mode or (env or {}).get("COMPOSE_PROGRESS") or "auto"
    if mode in ("quiet", "none"):
        return "quiet"
    if mode == "auto":
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return "tty" if tty and (env or {}).get("TERM") != "dumb" else "plain"
    return mode


class Printer:
    """A progress callback ``printer(kind, name, status)``; ``with printer:`` goes live."""

    def __init__(self, stream: TextIO, mode: str = "plain", title: str = "Running",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.mode = mode
        self.board = Board(title, clock)
        self._lock = threading.Lock()
        self._live = False
        self._drawn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, kind: str, name: str, status: str) -> None:
        if self.mode == "quiet":
            return
        if self._live:
            self.board.event(kind, name, status)
            return
        with self._lock:
            self._write(f" {kind} {name}  {status}\n")

    def log(self, text: str) -> None:
        """A message (a warning) printed above the live block, or as a plain line."""
        with self._lock:
            if self._live and self._drawn:
                self._write(UP.format(self._drawn) + "".join(
                    ERASE + "\n" for _ in range(self._drawn)) + UP.format(self._drawn))
                self._drawn = 0
            self._write(text + "\n")
            if self._live:
                self._redraw()

    def __enter__(self) -> Printer:
        if self.mode == "tty" and not self._live:
            self._live = True
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="compose-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if not self._live:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self.board.lines:
                self._redraw()
            self._live = False

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH):
            with self._lock:
                if self.board.lines:
                    self._redraw()

    def _redraw(self) -> None:
        width, height = _terminal_size(self.stream)
        frame = self.board.frame(width, height, color=True)
        up = UP.format(self._drawn) if self._drawn else ""
        self._write(up + "".join(ERASE + ln + "\n" for ln in frame))
        self._drawn = len(frame)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns or 80, size.lines or 0
    except (AttributeError, OSError, ValueError):
        return 80, 0
