"""``compose ps/logs/stop/start/restart/down/rm``: operate on a project's containers."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.compose.common import (
    cname,
    follow_logs,
    levels,
    load_name,
    no_flags,
    parallel,
    progress_printer,
    project_containers,
    selected,
    stop_containers,
    timeout_flag,
)
from dockyard.cli.compose.progress import Printer
from dockyard.cli.context import Context
from dockyard.cli.format import ellipsis, tabwrite
from dockyard.cli.ps import displayable_ports
from dockyard.cli.units import human_size, time_ago
from dockyard.client.errors import APIError
from dockyard.compose import labels as L
from dockyard.compose.converge import Converger, image_name, list_containers
from dockyard.compose.model import Project


def _ps_flags(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all stopped containers "
                   "(including those created by the run command)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")
    p.add_argument("--services", action="store_true", help="Display services")
    p.add_argument("--format", default="table", help="Format the output (table|json)")


def _ps(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    services = selected(project, ns.args) if ns.args else ()
    cs = project_containers(ctx, name, services, all=ns.all)
    if ns.all:  # Compose: -a includes the one-off (`compose run`) containers
        cs += [c for c in list_containers(ctx.client, name, oneoff=True)
               if not services or (c.get("Labels") or {}).get(L.SERVICE) in services]
    if ns.quiet:
        for c in cs:
            ctx.out(str(c["Id"]))
        return 0
    if ns.services:
        seen: list[str] = []
        for c in cs:
            s = (c.get("Labels") or {}).get(L.SERVICE, "")
            if s not in seen:
                seen.append(s)
                ctx.out(s)
        return 0
    if ns.format == "json":
        import json
        for c in cs:
            lb = c.get("Labels") or {}
            ctx.out(json.dumps({"ID": c["Id"], "Name": cname(c), "Image": c.get("Image"),
                                "Command": c.get("Command"), "Project": name,
                                "Service": lb.get(L.SERVICE), "Created": c.get("Created"),
                                "State": c.get("State"), "Status": c.get("Status"),
                                "Ports": displayable_ports(c.get("Ports") or []),
                                "Labels": lb}, separators=(",", ":")))
        return 0
    rows = ["NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS"]
    for c in cs:
        lb = c.get("Labels") or {}
        cmd = '"' + ellipsis(str(c.get("Command") or ""), 20) + '"'
        rows.append("\t".join([cname(c), str(c.get("Image") or ""), cmd,
                               lb.get(L.SERVICE, ""), time_ago(float(c.get("Created") or 0)),
                               str(c.get("Status") or ""),
                               displayable_ports(c.get("Ports") or [])]))
    ctx.out(tabwrite("\n".join(rows) + "\n", minwidth=0), end="")
    return 0


def _logs_flags(p: FlagParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end "
                   "of the logs for each container")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--no-color", action="store_true", help="Produce monochrome output")
    p.add_argument("--no-log-prefix", action="store_true", help="Don't print prefix in logs")


def _logs(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    try:
        follow_logs(ctx, name, cs, ns.follow, ns.tail, ns.timestamps, not ns.no_log_prefix)
    except KeyboardInterrupt:
        return 130
    return 0


def _stop(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    with progress_printer(ctx, getattr(ns, "progress", None), "Stopping") as progress:
        stop_containers(ctx, cs, ns.timeout, project, progress)
    return 0


def _start(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    if not cs:
        raise StatusError("service(s) not found" if ns.args else "no containers to start")
    order = [s for level in levels(project) for s in level] if project else []

    def rank(c: Mapping[str, Any]) -> int:
        svc = str((c.get("Labels") or {}).get(L.SERVICE, ""))
        return order.index(svc) if svc in order else len(order)
    with progress_printer(ctx, getattr(ns, "progress", None), "Starting") as progress:
        conv = Converger(ctx.client, project, progress) if project else None
        for c in sorted(cs, key=rank):
            if c.get("State") == "running":
                continue
            if conv is not None:
                conv.start(cname(c), str(c["Id"]))
            else:
                progress("Container", cname(c), "Starting")
                ctx.client.post(f"/containers/{c['Id']}/start")
                progress("Container", cname(c), "Started")
    return 0


def _restart(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    with progress_printer(ctx, getattr(ns, "progress", None), "Restarting") as progress:
        def restart(c: Mapping[str, Any]) -> None:
            progress("Container", cname(c), "Restarting")
            ctx.client.post(f"/containers/{c['Id']}/restart", {"t": ns.timeout})
            progress("Container", cname(c), "Started")
        parallel(restart, cs)
    return 0


def _down_flags(p: FlagParser) -> None:
    p.add_argument("-v", "--volumes", action="store_true", help="Remove named volumes declared "
                   "in the \"volumes\" section of the Compose file and anonymous volumes "
                   "attached to containers")
    p.add_argument("--rmi", default="", help="Remove images used by services. \"local\" "
                   "remove only images that don't have a custom tag (\"local\"|\"all\")")
    p.add_argument("--remove-orphans", action="store_true", help="Remove containers for "
                   "services not defined in the Compose file")
    p.add_argument("-f", "--force", action="store_true", help="With -v, also remove named "
                   "volumes that hold data (kept otherwise)")
    timeout_flag(p)


def _volume_sizes(ctx: Context) -> dict[str, int]:
    """Bytes held by each local volume, as the daemon counts them (``system df``); an
    empty map if the daemon cannot tell (then every named volume counts as holding data)."""
    try:
        df = ctx.client.get("/system/df", {"type": "volume"}) or {}
    except APIError as exc:
        ctx.err(f"WARN[0000] cannot tell which volumes hold data: {exc.message}")
        return {}
    return {str(v.get("Name")): int((v.get("UsageData") or {}).get("Size", -1))
            for v in df.get("Volumes") or []}


def remove_volumes(ctx: Context, project: str, progress: Callable[[str, str, str], None],
                   force: bool) -> list[str]:
    """``down -v``: remove the project's named volumes; unless ``force``, those holding data
    are kept (dockyard's safety net, not in Compose). Returns a message per kept volume."""
    vols = (ctx.client.get("/volumes", {"filters": L.project_filter(project)}) or {}) \
        .get("Volumes") or []
    sizes = {} if force else _volume_sizes(ctx)
    kept: list[str] = []
    for vol in sorted(vols, key=lambda v: str(v.get("Name"))):
        name = str(vol["Name"])
        size = sizes.get(name, -1)
        # only local volumes without options are measured; the others keep no data of
        # their own here (bind/tmpfs/nfs options) or belong to a plugin: removed as before
        measured = not vol.get("Options") and vol.get("Driver", "local") == "local"
        if not force and measured and size != 0:
            held = human_size(size) if size > 0 else "an unknown amount of data"
            progress("Volume", name, "Kept")
            kept.append(f"volume {name} holds {held}; not removed (use \"down -v --force\" "
                        "to delete it)")
            continue
        progress("Volume", name, "Removing")
        try:
            ctx.client.delete(f"/volumes/{name}")
            progress("Volume", name, "Removed")
        except APIError as exc:
            if exc.status != 404:
                ctx.err(f"WARN[0000] volume {name}: {exc.message}")
    return kept


def _down(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.rmi not in ("", "local", "all"):
        raise StatusError(f"invalid value for --rmi: {ns.rmi}")
    name, project = load_name(ctx, ns)
    with progress_printer(ctx, getattr(ns, "progress", None), "Running") as progress:
        kept = _take_down(ctx, ns, name, project, progress)
    if kept:
        raise StatusError("\n".join(kept))
    return 0


def _take_down(ctx: Context, ns: argparse.Namespace, name: str, project: Project | None,
               progress: Printer) -> list[str]:
    cs = project_containers(ctx, name)
    if ns.remove_orphans:  # Compose removes one-off (`compose run`) containers only then
        cs += list_containers(ctx.client, name, oneoff=True)
    if project is not None and not ns.remove_orphans:
        keep = [c for c in cs if (c.get("Labels") or {}).get(L.SERVICE) in project.services]
        if len(keep) != len(cs):
            progress.log("WARN[0000] Found orphan containers for this project; use "
                         "--remove-orphans to remove them.")
        cs = keep
    stop_containers(ctx, cs, ns.timeout, project, progress)

    def rm(c: Mapping[str, Any]) -> None:
        progress("Container", cname(c), "Removing")
        ctx.client.delete(f"/containers/{c['Id']}", {"force": True, "v": ns.volumes or None})
        progress("Container", cname(c), "Removed")
    parallel(rm, cs)
    nets = ctx.client.get("/networks", {"filters": L.project_filter(name)})
    for net in sorted(nets, key=lambda n: str(n.get("Name"))):
        progress("Network", net["Name"], "Removing")
        try:
            ctx.client.delete(f"/networks/{net['Id']}")
            progress("Network", net["Name"], "Removed")
        except APIError as exc:
            if exc.status != 404:
                progress.log(f"WARN[0000] network {net['Name']}: {exc.message}")
    kept = remove_volumes(ctx, name, progress, ns.force) if ns.volumes else []
    if ns.rmi and project is not None:
        images = {image_name(project, s) for s in project.services.values()
                  if ns.rmi == "all" or not s.image}
        for ref in sorted(images):
            try:
                ctx.client.delete(f"/images/{ref}")
                progress("Image", ref, "Removed")
            except APIError as exc:
                if exc.status != 404:
                    progress.log(f"WARN[0000] image {ref}: {exc.message}")
    return kept


def _rm_flags(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Don't ask to confirm removal")
    p.add_argument("-s", "--stop", action="store_true", help="Stop the containers, if "
                   "required, before removing")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove any anonymous volumes "
                   "attached to containers")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    if ns.stop:
        stop_containers(ctx, cs, None, project)
        cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    cs = [c for c in cs if c.get("State") != "running"]
    with progress_printer(ctx, getattr(ns, "progress", None), "Removing") as progress:
        for c in cs:
            progress("Container", cname(c), "Removing")
            ctx.client.delete(f"/containers/{c['Id']}", {"v": ns.volumes or None})
            progress("Container", cname(c), "Removed")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("down", "[OPTIONS] [SERVICES]", "Stop and remove containers, networks",
            _down_flags, _down, (0, None)),
    Command("logs", "[OPTIONS] [SERVICE...]", "View output from containers", _logs_flags,
            _logs, (0, None)),
    Command("ps", "[OPTIONS] [SERVICE...]", "List containers", _ps_flags, _ps, (0, None)),
    Command("restart", "[OPTIONS] [SERVICE...]", "Restart service containers", timeout_flag,
            _restart, (0, None)),
    Command("rm", "[OPTIONS] [SERVICE...]", "Removes stopped service containers", _rm_flags,
            _rm, (0, None)),
    Command("start", "[SERVICE...]", "Start services", no_flags, _start, (0, None)),
    Command("stop", "[OPTIONS] [SERVICE...]", "Stop services", timeout_flag, _stop,
            (0, None)),
)
