"""The local terminal: raw mode, size, and SIGWINCH-driven resize callbacks."""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
import tty
from collections.abc import Callable, Iterator
from types import FrameType


def size(fd: int) -> tuple[int, int] | None:
    """(height, width) of the terminal on ``fd``, or None when it is not a terminal."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", packed)[:2]
    return (rows, cols) if rows and cols else None


@contextlib.contextmanager
def raw(fd: int, enabled: bool = True) -> Iterator[None]:
    """Put ``fd``'s terminal in raw mode for the duration (no-op if not a tty)."""
    if not enabled or fd < 0 or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def on_resize(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` now and on every SIGWINCH until the block ends."""
    def handler(_signum: int, _frame: FrameType | None) -> None:
        _safe(callback)
    try:
        previous = signal.signal(signal.SIGWINCH, handler)
    except ValueError:  # not the main thread
        _safe(callback)
        yield
        return
    _safe(callback)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _safe(callback: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):  # a failed resize must not kill the session
        callback()


@contextlib.contextmanager
def forward_signals(send: Callable[[str], None], enabled: bool = True) -> Iterator[None]:
    """``--sig-proxy``: relay catchable signals to the container."""
    if not enabled:
        yield
        return
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    saved: dict[int, object] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        _safe(lambda: send(signal.Signals(signum).name))
    try:
        for name in names:
            sig = getattr(signal, name)
            saved[sig] = signal.signal(sig, handler)
    except ValueError:
        pass
    try:
        yield
    finally:
        for sig, prev in saved.items():
            signal.signal(sig, prev)  # type: ignore[arg-type]
