"""``compose exec`` and ``compose run``: a command in a service's container, or in a new
one-off container of the service (Compose's labels, dependencies started and waited for)."""
from __future__ import annotations

import argparse
import os
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockyard.cli import runparse, term
from dockyard.cli.attach import StartFailed, attach_start_wait, session
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.compose.common import (
    config_files,
    load,
    load_name,
    progress_printer,
    with_deps,
)
from dockyard.cli.compose.up import converge_up
from dockyard.cli.context import Context
from dockyard.cli.exec import exit_code
from dockyard.cli.run import start_error_status
from dockyard.cli.stdio import Streams, pump
from dockyard.client.errors import APIError
from dockyard.compose import config_hash, parse_ports, parse_volume
from dockyard.compose import labels as L
from dockyard.compose.body import oneoff_body
from dockyard.compose.converge import ComposeError, Converger
from dockyard.compose.model import Project, Service
from dockyard.errors import DockyardError


def _tty_flags(p: FlagParser, what: str) -> None:
    shown, hidden = ("--no-TTY", "--no-tty") if what == "run" else ("--no-tty", "--no-TTY")
    p.add_argument("-T", shown, dest="no_tty", action="store_true",
                   help=f"Disable pseudo-TTY allocation. By default 'docker compose {what}' "
                   "allocates a TTY.")
    p.add_argument(hidden, dest="no_tty", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-i", "--interactive", action="store_true", default=True,
                   help=argparse.SUPPRESS)
    p.add_argument("-t", "--tty", action="store_true", default=True, help=argparse.SUPPRESS)


def _want_tty(ctx: Context, ns: argparse.Namespace) -> bool:
    """Compose allocates a TTY unless -T, when the local streams are terminals."""
    return not ns.no_tty and ctx.stdout_is_tty() and ctx.stdin_is_tty()


def _env(ns: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    try:
        return [runparse.env_value(item, environ) for item in ns.env]
    except runparse.OptionError as exc:
        raise StatusError(str(exc)) from None


# -- exec -----------------------------------------------------------------------------------------
def _exec_flags(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: Run command in "
                   "the background")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment "
                   "variables")
    p.add_argument("--index", type=int, default=0, help="Index of the container if service "
                   "has multiple replicas")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the "
                   "process")
    p.add_argument("-u", "--user", default="", help="Run the command as this user")
    p.add_argument("-w", "--workdir", default="", help="Path to workdir directory for this "
                   "command")
    _tty_flags(p, "exec")


def _number(c: Mapping[str, Any]) -> int:
    try:
        return int((c.get("Labels") or {}).get(L.NUMBER, "0"))
    except ValueError:
        return 0


def service_container(ctx: Context, project: str, service: str, index: int) -> str:
    """The running container of ``service`` numbered ``index`` (0: the lowest number, one-off
    containers last), as Compose's getSpecifiedContainer picks it."""
    extra = [f"{L.SERVICE}={service}", L.CONFIG_HASH]
    if index > 0:
        extra.append(f"{L.NUMBER}={index}")
    cs = ctx.client.get("/containers/json", {"filters": L.project_filter(project, *extra)})
    if not cs:
        suffix = f" container #{index}" if index > 0 else ""
        raise StatusError(f"service \"{service}\" is not running{suffix}")
    cs.sort(key=lambda c: (_number(c), (c.get("Labels") or {}).get(L.ONEOFF) == "True"))
    return str(cs[0]["Id"])


def _exec(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    environ = project.environment if project is not None else dict(ctx.env)
    cid = service_container(ctx, name, ns.args[0], ns.index)
    tty = _want_tty(ctx, ns)
    attach = not ns.detach
    body = {"User": ns.user, "Privileged": ns.privileged, "Tty": tty,
            "AttachStdin": ns.interactive and attach, "AttachStdout": attach,
            "AttachStderr": attach, "Detach": ns.detach, "Env": _env(ns, environ) or None,
            "WorkingDir": ns.workdir, "Cmd": ns.args[1:]}
    exec_id = (ctx.client.post(f"/containers/{cid}/exec", json_body=body) or {})["Id"]
    if ns.detach:
        ctx.client.post(f"/exec/{exec_id}/start", json_body={"Detach": True, "Tty": tty})
        return 0
    start: dict[str, Any] = {"Detach": False, "Tty": tty}
    dims = term.size(ctx.stdout.fileno()) if tty else None
    if dims:
        start["ConsoleSize"] = list(dims)
    conn = ctx.client.hijack(f"/exec/{exec_id}/start", json_body=start)
    streams = Streams(stdin=body["AttachStdin"], stdout=True, stderr=True, tty=tty)
    with session(ctx, f"/exec/{exec_id}/resize", streams, None):
        if pump(ctx, conn, streams):
            return 0
    return exit_code(ctx, exec_id)


# -- run ------------------------------------------------------------------------------------------
def _run_flags(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background "
                   "and print container ID")
    p.add_argument("--entrypoint", default=None, help="Override the entrypoint of the image")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment "
                   "variables")
    p.add_argument("-l", "--label", action="append", default=[], help="Add or override a "
                   "label")
    p.add_argument("--name", default="", help="Assign a name to the container")
    p.add_argument("--no-deps", action="store_true", help="Don't start linked services")
    p.add_argument("-p", "--publish", action="append", default=[], help="Publish a "
                   "container's port(s) to the host")
    p.add_argument("--rm", action="store_true", help="Automatically remove the container when "
                   "it exits")
    p.add_argument("--service-ports", action="store_true", help="Run command with all "
                   "service's ports enabled and mapped to the host")
    p.add_argument("--use-aliases", action="store_true", help="Use the service's network "
                   "useAliases in the network(s) the container connects to")
    p.add_argument("-u", "--user", default="", help="Run as specified username or uid")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    p.add_argument("-w", "--workdir", default="", help="Working directory inside the "
                   "container")
    _tty_flags(p, "run")


def _overrides(project: Project, svc: Service, ns: argparse.Namespace, tty: bool) -> Service:
    """The service as ``run``'s flags change it (Compose's applyRunOptions)."""
    changes: dict[str, Any] = {"tty": tty, "stdin_open": ns.interactive, "container_name": None}
    command = ns.args[1:]
    if command:
        changes["command"] = tuple(command)
    if ns.entrypoint is not None:
        try:
            changes["entrypoint"] = tuple(shlex.split(ns.entrypoint))
        except ValueError as exc:
            raise StatusError(str(exc)) from None
        if not command:
            changes["command"] = ()
    if ns.user:
        changes["user"] = ns.user
    if ns.workdir:
        changes["working_dir"] = ns.workdir
    if ns.env:
        env = dict(svc.environment)
        for item in _env(ns, project.environment):
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
        changes["environment"] = env
    if ns.label:
        labels = dict(svc.labels)
        for item in ns.label:
            key, sep, value = item.partition("=")
            if not sep:
                raise StatusError("label must be set as KEY=VALUE")
            labels[key] = value
        changes["labels"] = labels
    try:
        if ns.publish:
            changes["ports"] = tuple(p for spec in ns.publish for p in parse_ports(spec))
        elif not ns.service_ports:
            changes["ports"] = ()
        if ns.volume:
            changes["volumes"] = svc.volumes + tuple(_volume(v) for v in ns.volume)
    except DockyardError as exc:
        raise StatusError(str(exc)) from None
    return replace(svc, **changes)


def _volume(spec: str) -> Any:
    vol = parse_volume(spec)
    if vol.type == "volume" and vol.source and vol.source.startswith((".", "~")):
        source = os.path.abspath(os.path.expanduser(vol.source))
        return replace(vol, type="bind", source=source, create_host_path=True)
    return vol


def _start_dependencies(ctx: Context, ns: argparse.Namespace, project: Project,
                        conv: Converger, service: str) -> None:
    deps = [d for d in with_deps(project, [service]) if d != service]
    if not ns.no_deps and deps:
        sub = argparse.Namespace(**vars(ns))
        sub.args, sub.no_deps, sub.scale = deps, True, []
        sub.force_recreate = sub.no_recreate = sub.remove_orphans = sub.build = False
        converge_up(ctx, sub, project)
    try:
        conv.ensure_images([service], pull_missing=True)
        conv.ensure_networks([service])
        conv.ensure_volumes([service])
        if not ns.no_deps:
            conv.wait_dependencies(project.services[service], {})
    except ComposeError as exc:
        raise StatusError(str(exc)) from None


def _create_oneoff(ctx: Context, ns: argparse.Namespace, project: Project, conv: Converger,
                   svc: Service, tty: bool) -> str:
    slug = uuid.uuid4().hex + uuid.uuid4().hex
    name = ns.name or f"{project.name}-{svc.name}-run-{slug[:12]}"
    body, extra = oneoff_body(project, svc, slug, config_hash(svc), conv.config_files,
                              conv.resolve, image_id=conv.image_id(svc),
                              interactive=ns.interactive, detach=ns.detach,
                              auto_remove=ns.rm, use_aliases=ns.use_aliases)
    if tty and ctx.stdout_is_tty():
        dims = term.size(ctx.stdout.fileno())
        if dims:
            body["HostConfig"]["ConsoleSize"] = list(dims)
    cid = str(ctx.client.post("/containers/create", {"name": name}, json_body=body)["Id"])
    for net, ep in extra:
        ctx.client.post(f"/networks/{net}/connect",
                        json_body={"Container": cid, "EndpointConfig": ep})
    return cid


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.publish and ns.service_ports:
        raise StatusError("--service-ports and --publish are incompatible")
    project = load(ctx, ns)
    name = ns.args[0]
    if name not in project.services:
        raise StatusError(f"no such service: {name}")
    tty = _want_tty(ctx, ns) and not ns.detach
    svc = _overrides(project, project.services[name], ns, tty)
    conv = Converger(ctx.client, project, progress_printer(ctx), config_files(ctx, ns, project),
                     warn=lambda m: ctx.err(f"WARN[0000] {m}"))
    _start_dependencies(ctx, ns, project, conv, name)
    cid = _create_oneoff(ctx, ns, project, conv, svc, tty)
    try:
        if ns.detach:
            ctx.client.post(f"/containers/{cid}/start")
            ctx.out(cid)
            return 0
        streams = Streams(stdin=ns.interactive, stdout=True, stderr=True, tty=tty)
        return attach_start_wait(ctx, cid, streams, ns.rm)
    except StartFailed as exc:
        ctx.err(f"Error response from daemon: {exc.error.message}")
        return start_error_status(exc.error.message)
    except APIError as exc:
        ctx.err(f"Error response from daemon: {exc.message}")
        return start_error_status(exc.message)


COMMANDS: tuple[Command, ...] = (
    Command("exec", "[OPTIONS] SERVICE COMMAND [ARGS...]", "Execute a command in a running "
            "container", _exec_flags, _exec, (2, None), interspersed=False),
    Command("run", "[OPTIONS] SERVICE [COMMAND] [ARGS...]", "Run a one-off command on a "
            "service", _run_flags, _run, (1, None), interspersed=False),
)
