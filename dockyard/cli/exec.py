"""``exec``: run a command in a running container and exit with its status."""
from __future__ import annotations

import argparse
import time
from typing import Any

from dockyard.cli import runparse, term
from dockyard.cli.attach import session
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.stdio import Streams, pump


def _build(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Detached mode: run command in the background")
    p.add_argument("--detach-keys", default="",
                   help="Override the key sequence for detaching a container")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[],
                   help="Read in a file of environment variables")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="Keep STDIN open even if not attached")
    p.add_argument("--privileged", action="store_true",
                   help="Give extended privileges to the command")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", default="",
                   help="Username or UID (format: \"<name|uid>[:<group|gid>]\")")
    p.add_argument("-w", "--workdir", default="", help="Working directory inside the container")


def exec_config(ns: argparse.Namespace, env: dict[str, str], env_files: list[str]) -> dict[str, Any]:
    """The ``POST /containers/{id}/exec`` body for parsed flags (pure)."""
    environ: list[str] = list(env_files)
    environ.extend(runparse.env_value(item, env) for item in ns.env)
    attach = not ns.detach
    return {"User": ns.user, "Privileged": ns.privileged, "Tty": ns.tty,
            "AttachStdin": ns.interactive and attach, "AttachStdout": attach,
            "AttachStderr": attach, "Detach": ns.detach, "DetachKeys": ns.detach_keys,
            "Env": environ or None, "WorkingDir": ns.workdir, "Cmd": ns.args[1:]}


def _env_files(ctx: Context, paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                out.extend(runparse.read_kv_file(fh.read(), ctx.env))
        except OSError as exc:
            raise StatusError(str(exc)) from None
    return out


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    container = ns.args[0]
    try:
        body = exec_config(ns, dict(ctx.env), _env_files(ctx, ns.env_file))
    except runparse.OptionError as exc:
        raise StatusError(str(exc)) from None
    if body["AttachStdin"] and ns.tty and not ctx.stdin_is_tty():
        raise StatusError("the input device is not a TTY")
    created = ctx.client.post(f"/containers/{container}/exec", json_body=body) or {}
    exec_id = created["Id"]
    if ns.detach:
        ctx.client.post(f"/exec/{exec_id}/start", json_body={"Detach": True, "Tty": ns.tty})
        return 0
    start: dict[str, Any] = {"Detach": False, "Tty": ns.tty}
    dims = term.size(ctx.stdout.fileno()) if ns.tty and ctx.stdout_is_tty() else None
    if dims:
        start["ConsoleSize"] = list(dims)
    conn = ctx.client.hijack(f"/exec/{exec_id}/start", json_body=start)
    streams = Streams(stdin=body["AttachStdin"], stdout=True, stderr=True, tty=ns.tty,
                      detach_keys=ns.detach_keys)
    with session(ctx, f"/exec/{exec_id}/resize", streams, None):
        if pump(ctx, conn, streams):
            return 0
    return exit_code(ctx, exec_id)


def exit_code(ctx: Context, exec_id: str, polls: int = 40) -> int:
    """ExitCode from ``GET /exec/{id}/json`` (briefly waiting for the process to be reaped)."""
    result: dict[str, Any] = {}
    for _ in range(polls):
        result = ctx.client.get(f"/exec/{exec_id}/json") or {}
        if not result.get("Running"):
            break
        time.sleep(0.05)
    return int(result.get("ExitCode") or 0)
EXEC = Command("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
               "Execute a command in a running container", _build, _run, (2, None),
               interspersed=False)
COMMANDS = [EXEC]
