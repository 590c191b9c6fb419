"""Container lifecycle commands: start, stop, kill, restart, pause, unpause, rm, rename,
wait, container prune."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dockyard.cli.attach import StartFailed, attach_start_wait
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.ps import parse_filters
from dockyard.cli.runflags import int64
from dockyard.cli.stdio import Streams
from dockyard.cli.units import human_size
from dockyard.client.errors import APIError


def for_each(ctx: Context, names: list[str], action: Callable[[str], Any],
             echo: bool = True) -> int:
    """Apply ``action`` to each name; print the name on success, errors at the end (rc 1)."""
    errors: list[str] = []
    for name in names:
        try:
            result = action(name)
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        if echo:
            ctx.out(name if result is None else str(result))
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def _timeout_flags(p: FlagParser) -> None:
    p.add_argument("-s", "--signal", default="", help="Signal to send to the container")
    p.add_argument("-t", "--timeout", dest="timeout", type=int64, default=None,
                   help="Seconds to wait before killing the container")
    p.add_argument("--time", dest="timeout", type=int64, help=argparse.SUPPRESS)


def _stop(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"t": ns.timeout, "signal": ns.signal or None}
    return for_each(ctx, ns.args, lambda c: ctx.client.post(f"/containers/{c}/stop", query))


def _restart(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"t": ns.timeout, "signal": ns.signal or None}
    return for_each(ctx, ns.args, lambda c: ctx.client.post(f"/containers/{c}/restart", query))


def _kill_build(p: FlagParser) -> None:
    p.add_argument("-s", "--signal", default="", help="Signal to send to the container")


def _kill(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"signal": ns.signal or None}
    return for_each(ctx, ns.args, lambda c: ctx.client.post(f"/containers/{c}/kill", query))


def _simple(action: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        return for_each(ctx, ns.args, lambda c: ctx.client.post(f"/containers/{c}/{action}"))
    return run


def _rm_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-l", "--link", action="store_true", help="Remove the specified link")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="Remove anonymous volumes associated with the container")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"force": ns.force or None, "v": ns.volumes or None, "link": ns.link or None}
    names = [n.strip("/") if n.strip("/") else n for n in ns.args]
    for name in names:
        if not name:
            raise StatusError("Container name cannot be empty")
    return for_each(ctx, names, lambda c: ctx.client.delete(f"/containers/{c}", query))


def _rename(ctx: Context, ns: argparse.Namespace) -> int:
    old, new = ns.args[0].strip(), ns.args[1].strip()
    if not old or not new:
        raise StatusError("Error: Neither old nor new names may be empty")
    try:
        ctx.client.post(f"/containers/{old}/rename", {"name": new})
    except APIError as exc:
        ctx.err(f"Error response from daemon: {exc.message}")
        raise StatusError(f"Error: failed to rename container named {old}") from None
    return 0


def _wait(ctx: Context, ns: argparse.Namespace) -> int:
    def wait(name: str) -> int:
        result = ctx.client.post(f"/containers/{name}/wait") or {}
        return int(result.get("StatusCode", 0))
    return for_each(ctx, ns.args, wait)


def _start_build(p: FlagParser) -> None:
    p.add_argument("-a", "--attach", action="store_true",
                   help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("--detach-keys", default="",
                   help="Override the key sequence for detaching a container")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")


def _start(ctx: Context, ns: argparse.Namespace) -> int:
    if not (ns.attach or ns.interactive):
        return for_each(ctx, ns.args, lambda c: ctx.client.post(f"/containers/{c}/start"))
    if len(ns.args) > 1:
        raise StatusError("you cannot start and attach multiple containers at once")
    info = ctx.client.get(f"/containers/{ns.args[0]}/json")
    config = info.get("Config") or {}
    streams = Streams(stdin=ns.interactive and bool(config.get("OpenStdin")), stdout=True,
                      stderr=True, tty=bool(config.get("Tty")))
    if streams.stdin and streams.tty and not ctx.stdin_is_tty():
        raise StatusError("the input device is not a TTY")
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    try:
        return attach_start_wait(ctx, info["Id"], streams, auto_remove, ns.detach_keys)
    except StartFailed as exc:
        raise StatusError(f"Error response from daemon: {exc.error.message}") from None


def confirm(ctx: Context, warning: str) -> bool:
    ctx.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    ctx.stdout.flush()
    answer = ctx.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def prune_flags(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[],
                   help="Provide filter values (e.g. \"until=<timestamp>\")")


def prune_containers(ctx: Context, filters: list[str]) -> tuple[int, str]:
    query = {"filters": parse_filters(filters) or None}
    try:
        report = ctx.client.post("/containers/prune", query) or {}
    except APIError as exc:
        if exc.status in (404, 405, 501) and "no such" not in exc.message.lower():
            raise StatusError(f"Error response from daemon: {exc.message} (pruning "
                              "containers is not supported by this daemon yet)") from None
        raise
    deleted = report.get("ContainersDeleted") or []
    output = "".join(f"{cid}\n" for cid in deleted)
    return int(report.get("SpaceReclaimed") or 0), \
        (f"Deleted Containers:\n{output}" if deleted else "")


def _prune(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.force and not confirm(ctx, "WARNING! This will remove all stopped containers."):
        return 0
    space, output = prune_containers(ctx, ns.filter)
    if output:
        ctx.out(output)
    ctx.out(f"Total reclaimed space: {human_size(space)}")
    return 0


def _none(_: FlagParser) -> None:
    return None


MANY = (1, None)
START = Command("start", "[OPTIONS] CONTAINER [CONTAINER...]",
                "Start one or more stopped containers", _start_build, _start, MANY)
STOP = Command("stop", "[OPTIONS] CONTAINER [CONTAINER...]",
               "Stop one or more running containers", _timeout_flags, _stop, MANY)
RESTART = Command("restart", "[OPTIONS] CONTAINER [CONTAINER...]",
                  "Restart one or more containers", _timeout_flags, _restart, MANY)
KILL = Command("kill", "[OPTIONS] CONTAINER [CONTAINER...]",
               "Kill one or more running containers", _kill_build, _kill, MANY)
PAUSE = Command("pause", "CONTAINER [CONTAINER...]",
                "Pause all processes within one or more containers", _none, _simple("pause"),
                MANY)
UNPAUSE = Command("unpause", "CONTAINER [CONTAINER...]",
                  "Unpause all processes within one or more containers", _none,
                  _simple("unpause"), MANY)
RM = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             _rm_build, _rm, MANY)
RENAME = Command("rename", "CONTAINER NEW_NAME", "Rename a container", _none, _rename, (2, 2))
WAIT = Command("wait", "CONTAINER [CONTAINER...]",
               "Block until one or more containers stop, then print their exit codes", _none,
               _wait, MANY)
PRUNE = Command("prune", "[OPTIONS]", "Remove all stopped containers", prune_flags, _prune)
COMMANDS = [START, STOP, RESTART, KILL, PAUSE, UNPAUSE, RM, RENAME, WAIT]
