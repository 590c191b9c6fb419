"""``compose images/ls/version``: what a project runs, the projects the daemon knows, and
which Compose this is."""
from __future__ import annotations

import argparse
import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.compose.common import (
    cname,
    label,
    load_name,
    parallel,
    project_containers,
    selected,
)
from dockyard.cli.context import Context
from dockyard.cli.format import tabwrite, truncate_id
from dockyard.cli.refs import familiar_name, split_reference
from dockyard.cli.units import human_size, parse_rfc3339, time_ago
from dockyard.compose import labels as L

# What `compose version` prints: the Compose release whose behaviour we follow, marked as ours
# (like Docker Desktop's ``v2.29.7-desktop.1``), so version checks of scripts keep working.
VERSION = f"v{L.COMPOSE_VERSION}-dockyard"

Container = Mapping[str, Any]


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json", ""):
        raise StatusError(f'format value "{fmt}" could not be parsed: parsing failed')


# -- images ----------------------------------------------------------------------------------
def _images_flags(p: FlagParser) -> None:
    p.add_argument("--format", default="table", help="Format the output. Values: "
                   "[table | json]")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _image_row(ctx: Context, c: Container) -> dict[str, Any]:
    img = ctx.client.get(f"/images/{c.get('ImageID') or c.get('Image')}/json") or {}
    ref = str(c.get("Image") or "")
    repo = tag = ""
    if ref and not ref.startswith("sha256:"):
        name, tag, _ = split_reference(ref)
        repo = familiar_name(name)
        tag = tag or ("" if "@" in ref else "latest")
    platform = "/".join(x for x in (img.get("Os") or "unknown", img.get("Architecture"),
                                     img.get("Variant")) if x)
    row: dict[str, Any] = {"ID": img.get("Id", ""), "ContainerName": cname(c),
                           "Repository": repo, "Tag": tag, "Platform": platform,
                           "Size": int(img.get("Size") or 0)}
    if img.get("Created"):
        row["Created"] = img["Created"]
    last = (img.get("Metadata") or {}).get("LastTagTime") or ""
    if last and not last.startswith("0001-"):
        row["LastTagTime"] = last
    return row


def _images(ctx: Context, ns: argparse.Namespace) -> int:
    _check_format(ns.format)
    name, project = load_name(ctx, ns)
    cs = project_containers(ctx, name, selected(project, ns.args) if ns.args else ())
    rows: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def one(c: Container) -> None:
        row = _image_row(ctx, c)
        with lock:
            rows[cname(c)] = row
    parallel(one, cs)
    ordered = [rows[k] for k in sorted(rows)]
    if ns.quiet:
        ids = dict.fromkeys(str(r["ID"]).partition(":")[2] or str(r["ID"]) for r in ordered)
        for i in ids:
            ctx.out(i)
    elif ns.format == "json":
        ctx.out(json.dumps(ordered, separators=(",", ":")))
    else:
        lines = ["CONTAINER\tREPOSITORY\tTAG\tPLATFORM\tIMAGE ID\tSIZE\tCREATED"]
        for r in ordered:
            created = time_ago(parse_rfc3339(r["Created"])) if r.get("Created") else "N/A"
            lines.append("\t".join([r["ContainerName"], r["Repository"] or "<none>",
                                    r["Tag"] or "<none>", r["Platform"],
                                    truncate_id(str(r["ID"])), human_size(r["Size"], 3),
                                    created]))
        ctx.out(tabwrite("\n".join(lines) + "\n", minwidth=20), end="")
    return 0


# -- ls --------------------------------------------------------------------------------------
def _ls_flags(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all stopped Compose projects")
    p.add_argument("--filter", action="append", default=[], help="Filter output based on "
                   "conditions provided")
    p.add_argument("--format", default="table", help="Format the output. Values: "
                   "[table | json]")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display project names")


def combined_status(states: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{s}({counts[s]})" for s in sorted(counts))


def projects(cs: Sequence[Container]) -> list[dict[str, str]]:
    """Compose's stacks: per project label, the combined status and its config files."""
    groups: dict[str, list[Container]] = {}
    for c in cs:
        groups.setdefault(label(c, L.PROJECT), []).append(c)
    out = []
    for name in sorted(groups):
        files: list[str] = []
        for c in groups[name]:
            for f in label(c, L.CONFIG_FILES).split(","):
                if f and f not in files:
                    files.append(f)
        out.append({"Name": name,
                    "Status": combined_status([str(c.get("State", "")) for c in groups[name]]),
                    "ConfigFiles": ",".join(files)})
    return out


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    patterns: list[str] = []
    for f in ns.filter:
        key, eq, value = f.partition("=")
        if not eq:
            raise StatusError(f"bad format of filter (expected name=value): {f}")
        if key != "name":
            raise StatusError(f"invalid filter '{key}'")
        patterns.append(value)
    _check_format(ns.format)
    cs = ctx.client.get("/containers/json", {"all": ns.all, "filters": {"label": [L.PROJECT]}})
    stacks = [s for s in projects(cs or [])
              if not patterns or any(re.search(p, s["Name"]) for p in patterns)]
    if ns.quiet:
        for s in stacks:
            ctx.out(s["Name"])
    elif ns.format == "json":
        ctx.out(json.dumps(stacks, separators=(",", ":")))
    else:
        lines = ["NAME\tSTATUS\tCONFIG FILES"]
        lines += [f"{s['Name']}\t{s['Status']}\t{s['ConfigFiles']}" for s in stacks]
        ctx.out(tabwrite("\n".join(lines) + "\n", minwidth=20), end="")
    return 0


# -- version ---------------------------------------------------------------------------------
def _version_flags(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format the output. Values: "
                   "[pretty | json]. (Default: pretty)")
    p.add_argument("--short", action="store_true", help="Shows only Compose's version number")


def _version(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.short:
        ctx.out(VERSION[1:])
    elif ns.format == "json":
        ctx.out(json.dumps({"version": VERSION}, separators=(",", ":")))
    else:
        ctx.out(f"Docker Compose version {VERSION}")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("images", "[OPTIONS] [SERVICE...]", "List images used by the created containers",
            _images_flags, _images, (0, None)),
    Command("ls", "[OPTIONS]", "List running compose projects", _ls_flags, _ls, (0, 0)),
    Command("version", "[OPTIONS]", "Show the Docker Compose version information",
            _version_flags, _version, (0, 0)),
)
