"""Attached sessions: ``attach``, and the attach → wait → start → stream flow of run/start."""
from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Iterator

from dockyard.cli import term
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.stdio import (
    Streams,
    check_detach_keys,
    pump,
    resize_callback,
    terminal,
)
from dockyard.client.errors import APIError, ClientError
from dockyard.client.http import Response


@contextlib.contextmanager
def session(ctx: Context, resize_path: str, streams: Streams,
            kill: Callable[[str], None] | None) -> Iterator[None]:
    """Raw terminal, resize now and on SIGWINCH, and (``--sig-proxy``) signal relaying."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(terminal(ctx, streams))
        if streams.tty and ctx.stdout_is_tty():
            stack.enter_context(term.on_resize(resize_callback(ctx, resize_path)))
        stack.enter_context(term.forward_signals(kill or (lambda _: None),
                                                 enabled=kill is not None and not streams.tty))
        yield


def hijack_attach(ctx: Context, cid: str, streams: Streams, detach_keys: str = "") -> Response:
    query = {"stream": True, "stdin": streams.stdin, "stdout": streams.stdout,
             "stderr": streams.stderr, "detachKeys": detach_keys or None}
    return ctx.client.hijack(f"/containers/{cid}/attach", query)


def wait_status(ctx: Context, resp: Response) -> int:
    """The exit code from a ``/wait`` response; 125 if waiting failed."""
    try:
        with resp:
            result = resp.json() or {}
    except (ClientError, OSError, ValueError) as exc:
        ctx.err(f"error waiting for container: {exc}")
        return 125
    error = result.get("Error") or {}
    if error.get("Message"):
        ctx.err(f"error waiting for container: {error['Message']}")
        return 125
    return int(result.get("StatusCode", 0))


class StartFailed(Exception):
    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error


def attach_start_wait(ctx: Context, cid: str, streams: Streams, auto_remove: bool,
                      detach_keys: str = "", sig_proxy: bool = True) -> int:
    """Attach, register a wait, start, stream until the output ends; the exit code.

    Raises StartFailed (after cleaning up) if the daemon refuses to start the container."""
    check_detach_keys(detach_keys)
    streams.detach_keys = detach_keys
    conn = hijack_attach(ctx, cid, streams, detach_keys)
    condition = "removed" if auto_remove else "next-exit"
    try:
        waiter = ctx.client.request("POST", f"/containers/{cid}/wait", {"condition": condition})
    except BaseException:
        conn.close()
        raise
    try:
        ctx.client.post(f"/containers/{cid}/start")
    except APIError as exc:
        conn.close()
        if auto_remove:
            wait_status(ctx, waiter)
        else:
            waiter.close()
        raise StartFailed(exc) from None
    kill = (lambda sig: ctx.client.post(f"/containers/{cid}/kill", {"signal": sig})) \
        if sig_proxy else None
    try:
        with session(ctx, f"/containers/{cid}/resize", streams, kill):
            detached = pump(ctx, conn, streams)
    except BaseException:
        waiter.close()
        raise
    if detached:
        waiter.close()
        return 0
    return _exit_or_detach(ctx, cid, waiter)


def _exit_or_detach(ctx: Context, cid: str, waiter: Response, poll: float = 1.0) -> int:
    """The exit status once the output has ended; 0 if the user detached (the container
    is still running a while after its streams closed, like docker's EscapeError)."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(wait_status(ctx, waiter)),
                              name="wait", daemon=True)
    thread.start()
    while True:
        thread.join(poll)
        if not thread.is_alive():
            return result[0] if result else 125
        try:
            state = ctx.client.get(f"/containers/{cid}/json").get("State") or {}
        except ClientError:
            continue
        if state.get("Running") and not state.get("Restarting"):
            waiter.close()
            return 0


def _build(p: FlagParser) -> None:
    p.add_argument("--detach-keys", default="",
                   help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", action="store_true", default=True,
                   help="Proxy all received signals to the process (default true)")


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    info = ctx.client.get(f"/containers/{ns.args[0]}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise StatusError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise StatusError("You cannot attach to a restarting container, wait until it is "
                          "running")
    config = info.get("Config") or {}
    streams = Streams(stdin=bool(config.get("OpenStdin")) and not ns.no_stdin, stdout=True,
                      stderr=True, tty=bool(config.get("Tty")), detach_keys=ns.detach_keys)
    if streams.stdin and streams.tty and not ctx.stdin_is_tty():
        raise StatusError("the input device is not a TTY")
    cid = info["Id"]
    conn = hijack_attach(ctx, cid, streams, ns.detach_keys)
    kill = (lambda sig: ctx.client.post(f"/containers/{cid}/kill", {"signal": sig})) \
        if ns.sig_proxy else None
    with session(ctx, f"/containers/{cid}/resize", streams, kill):
        if pump(ctx, conn, streams):
            return 0
    after = ctx.client.get(f"/containers/{cid}/json").get("State") or {}
    return 0 if after.get("Running") else int(after.get("ExitCode", 0))


ATTACH = Command("attach", "[OPTIONS] CONTAINER",
                 "Attach local standard input, output, and error streams to a running container",
                 _build, _run, (1, 1))
COMMANDS = [ATTACH]
