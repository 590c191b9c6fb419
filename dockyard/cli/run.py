"""``run`` and ``create``: create (pulling when missing), attach, wait, start, stream, exit."""
from __future__ import annotations

import argparse
import os
import re
from typing import Any

from dockyard.cli import term
from dockyard.cli.attach import StartFailed, attach_start_wait
from dockyard.cli.command import PROG, Command, StatusError
from dockyard.cli.context import Context
from dockyard.cli.refs import familiar_image, split_reference, with_default_tag
from dockyard.cli.registry import pull_image
from dockyard.cli.runconfig import CreateRequest, build_create, detach_adjust
from dockyard.cli.runflags import add_create_flags, add_run_flags
from dockyard.cli.runparse import OptionError
from dockyard.cli.stdio import Streams
from dockyard.client.errors import APIError, ClientError

_ID_LIKE = re.compile(r"^(sha256:)?[a-f0-9]{64}$")


def start_error_status(message: str) -> int:
    """docker's runStartContainerErr: 127 not found, 126 cannot invoke, else 125."""
    text = message.removeprefix("Error response from daemon: ")
    if any(s in text for s in ("executable file not found", "no such file or directory",
                               "system cannot find the file specified")):
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


def report(ctx: Context, command: str, message: str, with_help: bool) -> None:
    text = f"{PROG}: {message}"
    if with_help:
        text += f"\n\nRun '{PROG} {command} --help' for more information"
    ctx.err(text)


def _cidfile_open(path: str) -> int | None:
    if not path:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise StatusError(f"container ID file found, make sure the other container isn't "
                          f"running or delete {path}") from None


def _pull_missing(ctx: Context, image: str, ns: argparse.Namespace) -> None:
    if not ns.quiet:
        ctx.err(f"Unable to find image '{familiar_image(with_default_tag(image))}' locally")
    pull_image(ctx, image, out=ctx.stderr, quiet=ns.quiet, platform=ns.platform)


def create_container(ctx: Context, req: CreateRequest, ns: argparse.Namespace) -> str:
    """POST /containers/create, pulling the image first or on 404 per ``--pull``."""
    image = req.body["Image"]
    named = not _ID_LIKE.match(image)
    fd = _cidfile_open(ns.cidfile)
    try:
        if ns.pull == "always" and named:
            pull_image(ctx, image, out=ctx.stderr, quiet=ns.quiet, platform=ns.platform)
        try:
            resp = ctx.client.post("/containers/create", req.query, req.body)
        except APIError as exc:
            if exc.status != 404 or not named or ns.pull != "missing" or \
                    "no such image" not in exc.message.lower():
                raise
            _pull_missing(ctx, image, ns)
            resp = ctx.client.post("/containers/create", req.query, req.body)
        for warning in resp.get("Warnings") or []:
            ctx.err(f"WARNING: {warning}")
        cid = str(resp["Id"])
        if fd is not None:
            os.write(fd, cid.encode())
        return cid
    except BaseException:
        if fd is not None:
            os.unlink(ns.cidfile)
        raise
    finally:
        if fd is not None:
            os.close(fd)


def _build(ctx: Context, ns: argparse.Namespace) -> CreateRequest:
    image, cmd = ns.args[0], ns.args[1:]
    if not split_reference(image)[0]:
        raise OptionError("invalid reference format")
    req = build_create(ns, image, cmd, ctx.env)
    if req.body["Tty"] and ctx.stdout_is_tty():
        dims = term.size(ctx.stdout.fileno())
        if dims:
            req.body["HostConfig"]["ConsoleSize"] = list(dims)
    return req


def _streams(body: dict[str, Any]) -> Streams:
    return Streams(stdin=bool(body.get("AttachStdin")), stdout=bool(body.get("AttachStdout")),
                   stderr=bool(body.get("AttachStderr")), tty=bool(body.get("Tty")))


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        req = _build(ctx, ns)
    except (OptionError, OSError) as exc:
        report(ctx, "run", str(exc), with_help=True)
        return 125
    if ns.detach:
        if ns.attach:
            raise StatusError("conflicting options: cannot specify both --attach and --detach")
        detach_adjust(req.body)
    elif req.body["AttachStdin"] and req.body["Tty"] and not ctx.stdin_is_tty():
        raise StatusError("the input device is not a TTY")
    try:
        cid = create_container(ctx, req, ns)
    except APIError as exc:
        report(ctx, "run", f"Error response from daemon: {exc.message}", with_help=True)
        return start_error_status(exc.message)
    except StatusError as exc:
        report(ctx, "run", exc.message, with_help=True)
        return 125
    except ClientError as exc:
        report(ctx, "run", str(exc), with_help=True)
        return 125
    streams = _streams(req.body)
    if not streams.stdout and not streams.stderr:
        ctx.out(cid)
    try:
        if not (streams.stdin or streams.stdout or streams.stderr):
            ctx.client.post(f"/containers/{cid}/start")
            return 0
        status = attach_start_wait(ctx, cid, streams, ns.rm, ns.detach_keys, ns.sig_proxy)
    except APIError as exc:
        report(ctx, "run", f"Error response from daemon: {exc.message}", with_help=True)
        return start_error_status(exc.message)
    except StartFailed as exc:
        report(ctx, "run", f"Error response from daemon: {exc.error.message}", with_help=True)
        return start_error_status(exc.error.message)
    return status if streams.stdout or streams.stderr else 0


def _create(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        req = _build(ctx, ns)
    except (OptionError, OSError) as exc:
        report(ctx, "create", str(exc), with_help=True)
        return 125
    ctx.out(create_container(ctx, req, ns))
    return 0


RUN = Command("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
              "Create and run a new container from an image", add_run_flags, _run, (1, None),
              interspersed=False)
CREATE = Command("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
                 add_create_flags, _create, (1, None), interspersed=False)
COMMANDS = [RUN, CREATE]
