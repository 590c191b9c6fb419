"""Wiring a hijacked attach/exec connection to the local standard streams."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dockyard.cli import term
from dockyard.cli.command import StatusError
from dockyard.cli.context import Context
from dockyard.client.http import Response
from dockyard.client.streams import copy_output, detach_sequence, start_input_pump


@dataclass
class Streams:
    """Which local streams take part in a session."""
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    detach_keys: str = ""


def check_detach_keys(keys: str) -> None:
    try:
        detach_sequence(keys)
    except ValueError:
        raise StatusError(f"Invalid detach keys ({keys}) provided") from None


def pump(ctx: Context, resp: Response, streams: Streams) -> bool:
    """Copy stdin → connection (half-closing at EOF) and connection → stdout/stderr.

    Returns when the daemon closes the output side: True if the user typed the detach
    keys (tty sessions only)."""
    detached = threading.Event()
    if streams.stdin and ctx.stdin_fd() >= 0:
        escape = detach_sequence(streams.detach_keys) if streams.tty else None
        start_input_pump(resp.sock, ctx.stdin_fd(), escape=escape, on_detach=detached.set)
    try:
        copy_output(resp.fp, streams.tty, ctx.bin_stdout, ctx.bin_stderr)
    except OSError:
        pass
    finally:
        resp.close()
    return detached.is_set()


def pump_in_thread(ctx: Context, resp: Response, streams: Streams) -> tuple[
        threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pump(ctx, resp, streams)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
    thread = threading.Thread(target=run, name="attach-output", daemon=True)
    thread.start()
    return thread, errors


@contextlib.contextmanager
def terminal(ctx: Context, streams: Streams) -> Iterator[None]:
    """Raw mode on the local terminal for ``-it`` sessions."""
    with term.raw(ctx.stdin_fd(), enabled=streams.tty and streams.stdin and ctx.stdin_is_tty()):
        yield


def resize_callback(ctx: Context, path: str) -> Callable[[], None]:
    """POST ``path`` (``/containers/{id}/resize`` or ``/exec/{id}/resize``) with our size."""
    def resize() -> None:
        fd = ctx.stdout.fileno() if ctx.stdout_is_tty() else -1
        dims = term.size(fd) if fd >= 0 else None
        if dims:
            ctx.client.post(path, {"h": dims[0], "w": dims[1]})
    return resize
