"""``compose top/kill/pause/unpause/port/push/wait``: operations on a project's containers
and the images it builds."""
from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from dockyard.cli import auth
from dockyard.cli.command import Command, FlagParser, StatusError, parse
from dockyard.cli.compose import manage
from dockyard.cli.compose.common import (
    cname,
    label,
    load,
    load_name,
    no_flags,
    parallel,
    progress_printer,
    project_containers,
    selected,
    with_deps,
)
from dockyard.cli.context import Context
from dockyard.cli.format import tabwrite
from dockyard.cli.refs import normalize_name, registry_host, split_reference
from dockyard.client.errors import APIError
from dockyard.compose import labels as L

Container = Mapping[str, Any]


def _running(ctx: Context, ns: argparse.Namespace, oneoff: bool = False,
             keep_orphans: bool = False) -> list[Container]:
    """Running (and paused) containers of the selected services; with ``oneoff`` also those
    of ``compose run``; orphans only with ``keep_orphans`` (or without a compose file)."""
    name, project = load_name(ctx, ns)
    services = selected(project, ns.args) if ns.args else ()
    if oneoff:
        query = {"all": False, "filters": L.project_filter(name)}
        cs: list[Container] = ctx.client.get("/containers/json", query) or []
        cs = [c for c in cs if not services or label(c, L.SERVICE) in services]
    else:
        cs = project_containers(ctx, name, services, all=False)
    if project is not None and not keep_orphans:
        cs = [c for c in cs if label(c, L.SERVICE) in project.services]
    return cs


# -- top ------------------------------------------------------------------------------------
def top_table(summaries: Sequence[tuple[str, str, Mapping[str, Any]]]) -> str:
    """Compose's ``top``: one table, ``SERVICE`` and ``#`` (replica) first, ``CMD`` last."""
    header = ["SERVICE", "#"]
    rows: list[dict[str, str]] = []
    for service, number, result in summaries:
        titles = list(result.get("Titles") or [])
        for proc in result.get("Processes") or []:
            row = {"SERVICE": service, "#": number}
            for i, title in enumerate(titles):
                if title not in header:
                    header.append(title)
                row[title] = proc[i] if i < len(proc) else ""
            rows.append(row)
    if not rows:
        return ""
    if "CMD" in header:
        header.remove("CMD")
        header.append("CMD")
    lines = ["\t".join(header)] + ["\t".join(r.get(h, "-") for h in header) for r in rows]
    return tabwrite("\n".join(lines) + "\n", minwidth=4, padding=2)


def _top(ctx: Context, ns: argparse.Namespace) -> int:
    cs = sorted(_running(ctx, ns), key=cname)
    summaries = [(label(c, L.SERVICE), label(c, L.NUMBER),
                  ctx.client.get(f"/containers/{c['Id']}/top") or {}) for c in cs]
    ctx.out(top_table(summaries), end="")
    return 0


# -- kill / pause / unpause ----------------------------------------------------------------------
def _kill_flags(p: FlagParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL", help="SIGNAL to send to the container")
    p.add_argument("--remove-orphans", action="store_true", help="Remove containers for "
                   "services not defined in the Compose file")


def _each(ctx: Context, ns: argparse.Namespace, cs: Sequence[Container], title: str,
          action: str, doing: str, done: str, query: Mapping[str, Any] | None = None) -> None:
    with progress_printer(ctx, getattr(ns, "progress", None), title) as progress:
        def one(c: Container) -> None:
            if doing:
                progress("Container", cname(c), doing)
            try:
                ctx.client.post(f"/containers/{c['Id']}/{action}", dict(query or {}))
            except APIError:
                progress("Container", cname(c), "Error")
                raise
            progress("Container", cname(c), done)
        parallel(one, cs)


def _kill(ctx: Context, ns: argparse.Namespace) -> int:
    cs = _running(ctx, ns, oneoff=True, keep_orphans=ns.remove_orphans)
    if not cs:
        ctx.err("No container to kill")
        return 0
    _each(ctx, ns, cs, "Killing", "kill", "Killing", "Killed", {"signal": ns.signal})
    return 0


def _pause(ctx: Context, ns: argparse.Namespace) -> int:
    cs = [c for c in _running(ctx, ns) if c.get("State") != "paused"]
    _each(ctx, ns, cs, "Pausing", "pause", "", "Paused")
    return 0


def _unpause(ctx: Context, ns: argparse.Namespace) -> int:
    cs = [c for c in _running(ctx, ns) if c.get("State") == "paused"]
    _each(ctx, ns, cs, "Running", "unpause", "", "Unpaused")
    return 0


# -- port ------------------------------------------------------------------------------------
def _port_flags(p: FlagParser) -> None:
    p.add_argument("--protocol", default=None, help="tcp or udp")
    p.add_argument("--index", type=int, default=0, help="Index of the container if service "
                   "has multiple replicas")


def _port(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    service = ns.args[0]
    private = 0
    if len(ns.args) > 1:
        text = ns.args[1]
        if not text.isdigit() or int(text) > 65535:
            raise StatusError(f'strconv.ParseUint: parsing "{text}": '
                              f'{"value out of range" if text.isdigit() else "invalid syntax"}')
        private = int(text)
    index = ns.index or 1
    cs = [c for c in project_containers(ctx, name, [service], all=False)
          if label(c, L.NUMBER) == str(index)]
    if not cs:
        raise StatusError(f"no container found for {service}-{index}")
    ports = cs[0].get("Ports") or []
    if not private:
        proto = (ns.protocol or "").lower()
        for p in ports:
            if p.get("PublicPort") and (not proto or p.get("Type") == proto):
                ctx.out(f"{p.get('PrivatePort')}/{p.get('Type')} -> "
                        f"{p.get('IP', '')}:{p.get('PublicPort')}")
        return 0
    proto = (ns.protocol or "tcp").lower()
    for p in ports:
        if p.get("PrivatePort") == private and p.get("Type") == proto and p.get("PublicPort"):
            ctx.out(f"{p.get('IP', '')}:{p.get('PublicPort')}")
            return 0
    have = ", ".join(f"{p.get('PublicPort', 0)}/{p.get('Type')}" for p in ports)
    raise StatusError(f"no port {private}/{proto} for container {cname(cs[0])}: {have}")


# -- push ------------------------------------------------------------------------------------
def _push_flags(p: FlagParser) -> None:
    p.add_argument("--ignore-push-failures", action="store_true", help="Push what it can and "
                   "ignores images with push failures")
    p.add_argument("--include-deps", action="store_true", help="Also push images of "
                   "services declared as dependencies")
    p.add_argument("-q", "--quiet", action="store_true", help="Push without printing progress "
                   "information")


def push_image(ctx: Context, ref: str) -> None:
    """``POST /images/{name}/push`` with the credentials `dockyard push` would send; an
    error in the stream raises :class:`StatusError`."""
    name, tag, _ = split_reference(ref)
    headers = {"X-Registry-Auth": auth.encode_header(
        auth.credentials(ctx.config_path, registry_host(ref)))}
    path = f"/images/{quote(normalize_name(name), safe='/:')}/push"
    try:
        with ctx.client.stream("POST", path, {"tag": tag or "latest"}, headers=headers) as resp:
            for msg in resp.iter_json():
                if msg.get("error") or msg.get("errorDetail"):
                    detail = msg.get("errorDetail") or {}
                    raise StatusError(str(msg.get("error") or detail.get("message")))
    except APIError as exc:
        raise StatusError(f"Error response from daemon: {exc.message}") from None


def _push(ctx: Context, ns: argparse.Namespace) -> int:
    project = load(ctx, ns)
    names = selected(project, ns.args)
    if ns.include_deps:
        names = with_deps(project, names)
    mode = "quiet" if ns.quiet else getattr(ns, "progress", None)
    with progress_printer(ctx, mode, "Pushing") as progress:
        for svc in (project.services[n] for n in names):
            if svc.build is None or not svc.image:  # Compose pushes only what it builds
                progress("Service", svc.name, "Skipped")
                continue
            progress("Image", svc.image, "Pushing")
            try:
                push_image(ctx, svc.image)
            except StatusError as exc:
                progress("Image", svc.image, "Error")
                if not ns.ignore_push_failures:
                    raise
                progress.log(f"WARN[0000] Pushing {svc.name}: {exc.message}")
                continue
            progress("Image", svc.image, "Pushed")
    return 0


# -- wait / version --------------------------------------------------------------------------
def _wait_flags(p: FlagParser) -> None:
    p.add_argument("--down-project", action="store_true", help="Drops project when the first "
                   "container stops")


def _wait(ctx: Context, ns: argparse.Namespace) -> int:
    name, _ = load_name(ctx, ns)
    cs = _running(ctx, ns, oneoff=True, keep_orphans=True)
    if not cs:
        raise StatusError(f'no containers for project "{name}"')
    codes: list[int] = []
    lock = threading.Lock()

    def wait(c: Container) -> None:
        result = ctx.client.post(f"/containers/{c['Id']}/wait") or {}
        with lock:
            codes.append(int(result.get("StatusCode", 0)))
            ctx.out(f'container "{c["Id"]}" exited with status code {codes[-1]}')
    try:
        parallel(wait, cs)
    except APIError as exc:
        raise StatusError(f"Error response from daemon: {exc.message}", 42) from None
    if ns.down_project:
        down = next(c for c in manage.COMMANDS if c.name == "down")
        parser = FlagParser("down")
        down.build(parser)
        down_ns = parse(down, parser, ["--remove-orphans"])
        for key, value in vars(ns).items():
            if key not in vars(down_ns):
                setattr(down_ns, key, value)
        down.run(ctx, down_ns)
    return codes[-1] if codes else 0


COMMANDS: tuple[Command, ...] = (
    Command("kill", "[OPTIONS] [SERVICE...]", "Force stop service containers", _kill_flags,
            _kill, (0, None)),
    Command("pause", "[SERVICE...]", "Pause services", no_flags, _pause, (0, None)),
    Command("port", "[OPTIONS] SERVICE [PRIVATE_PORT]", "List port mappings or print the "
            "public port for a specific mapping for the service", _port_flags, _port, (1, 2)),
    Command("push", "[OPTIONS] [SERVICE...]", "Push service images", _push_flags, _push,
            (0, None)),
    Command("top", "[SERVICES...]", "Display the running processes", no_flags, _top,
            (0, None)),
    Command("unpause", "[SERVICE...]", "Unpause services", no_flags, _unpause, (0, None)),
    Command("wait", "SERVICE [SERVICE...] [OPTIONS]", "Block until containers of all (or "
            "specified) services stop.", _wait_flags, _wait, (1, None)),
)
