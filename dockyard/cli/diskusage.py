"""``system df`` and ``system prune``."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containers import confirm, prune_containers
from dockyard.cli.context import Context
from dockyard.cli.dfverbose import verbose
from dockyard.cli.format import render, resolve
from dockyard.cli.gofuncs import GoMap
from dockyard.cli.images import prune_images
from dockyard.cli.ps import parse_filters
from dockyard.cli.units import human_size
from dockyard.client.errors import APIError

DF_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
ACTIVE_STATES = ("running", "paused", "restarting")


def _with_percent(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def _row(kind: str, count: int, active: int, size: int, reclaimable: str) -> dict[str, str]:
    return GoMap({"Type": kind, "TotalCount": str(count), "Active": str(active),
            "Size": human_size(size), "Reclaimable": reclaimable})


def summary_rows(du: dict[str, Any]) -> list[dict[str, str]]:
    """The four rows of ``docker system df`` (docker's diskUsage*Context logic)."""
    images = du.get("Images") or []
    layers = int(du.get("LayersSize") or 0)
    used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
               if i.get("Containers", 0) not in (0,) and i.get("Size", -1) != -1
               and i.get("SharedSize", -1) != -1)
    active_images = sum(1 for i in images if i.get("Containers", 0) > 0)
    rows = [_row("Images", len(images), active_images, layers,
                 _with_percent(layers - used, layers))]
    containers = du.get("Containers") or []
    c_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_idle = sum(int(c.get("SizeRw") or 0) for c in containers
                 if c.get("State") not in ACTIVE_STATES)
    rows.append(_row("Containers", len(containers),
                     sum(1 for c in containers if c.get("State") in ACTIVE_STATES), c_size,
                     _with_percent(c_idle, c_size)))
    volumes = du.get("Volumes") or []
    usage = [(v.get("UsageData") or {}) for v in volumes]
    v_size = sum(u.get("Size", 0) for u in usage if u.get("Size", -1) != -1)
    v_idle = sum(u.get("Size", 0) for u in usage
                 if u.get("RefCount", 0) == 0 and u.get("Size", -1) != -1)
    rows.append(_row("Local Volumes", len(volumes),
                     sum(1 for u in usage if u.get("RefCount", 0) > 0), v_size,
                     _with_percent(v_idle, v_size)))
    cache = du.get("BuildCache") or []
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    in_use = sum(int(b.get("Size") or 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    rows.append(_row("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")),
                     b_size, human_size(b_size - in_use)))
    return rows


def _df_build(p: FlagParser) -> None:
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")


def _df(ctx: Context, ns: argparse.Namespace) -> int:
    du = ctx.client.get("/system/df") or {}
    if ns.verbose and not ns.format:
        ctx.stdout.write(verbose(du))
        return 0
    rows = summary_rows(du)
    ctx.stdout.write(render(resolve(ns.format, DF_FORMAT), rows, DF_HEADERS))
    return 0


def _prune_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused images not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[],
                   help="Provide filter values (e.g. \"label=<key>=<value>\")")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")


def _warning(ns: argparse.Namespace) -> str:
    items = ["all stopped containers", "all networks not used by at least one container"]
    if ns.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if ns.all
                 else "all dangling images")
    items.append("unused build cache")
    return "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)


def _optional(ctx: Context, path: str, filters: list[str], key: str,
              title: str) -> tuple[int, str]:
    """Prune a resource the daemon may not serve yet (networks, volumes, build cache)."""
    try:
        report = ctx.client.post(path, {"filters": parse_filters(filters) or None}) or {}
    except APIError as exc:
        if exc.status in (404, 405, 501):
            return 0, ""
        raise
    deleted = report.get(key) or []
    output = f"{title}:\n" + "".join(f"{d}\n" for d in deleted) if deleted else ""
    return int(report.get("SpaceReclaimed") or 0), output


def _skip_unsupported(step: Callable[[], tuple[int, str]]) -> tuple[int, str]:
    try:
        return step()
    except StatusError as exc:
        if "not supported by this daemon" in exc.message:
            return 0, ""
        raise


def _prune(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.force and not confirm(ctx, _warning(ns)):
        return 0
    try:
        parse_filters(ns.filter)
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    total = 0
    steps: list[Callable[[], tuple[int, str]]] = [lambda: prune_containers(ctx, ns.filter),
             lambda: _optional(ctx, "/networks/prune", ns.filter, "NetworksDeleted",
                               "Deleted Networks")]
    if ns.volumes:
        steps.append(lambda: _optional(ctx, "/volumes/prune", ns.filter, "VolumesDeleted",
                                       "Deleted Volumes"))
    steps.append(lambda: _skip_unsupported(lambda: prune_images(ctx, ns.filter, ns.all)))
    steps.append(lambda: _optional(ctx, "/build/prune", ns.filter, "CachesDeleted",
                                   "Deleted build cache objects"))
    for step in steps:
        space, output = step()
        total += space
        if output:
            ctx.out(output)
    ctx.out(f"Total reclaimed space: {human_size(total)}")
    return 0


DF = Command("df", "[OPTIONS]", "Show dockyard disk usage", _df_build, _df)
PRUNE = Command("prune", "[OPTIONS]", "Remove unused data", _prune_build, _prune)
