"""Read-only container views: top, port, diff."""
from __future__ import annotations

import argparse
import re

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import tabwrite

KINDS = {0: "C", 1: "A", 2: "D"}


def _none(_: FlagParser) -> None:
    return None


def _top(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"ps_args": " ".join(ns.args[1:]) or None}
    result = ctx.client.get(f"/containers/{ns.args[0]}/top", query) or {}
    lines = ["\t".join(result.get("Titles") or [])]
    lines.extend("\t".join(proc) for proc in result.get("Processes") or [])
    ctx.stdout.write(tabwrite("\n".join(lines) + "\n", minwidth=20))
    return 0


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """sortorder.NaturalLess: digit runs compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", text) if part]


def join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(ctx: Context, ns: argparse.Namespace) -> int:
    name = ns.args[0]
    info = ctx.client.get(f"/containers/{name}/json")
    ports = ((info.get("NetworkSettings") or {}).get("Ports")) or {}
    out: list[str] = []
    if len(ns.args) > 1:
        spec = ns.args[1]
        port, _, proto = spec.partition("/")
        if not port.isdigit() or int(port) > 65535:
            raise StatusError(f'Error: invalid port ({port}): strconv.ParseUint: parsing '
                              f'"{port}": invalid syntax')
        frontends = ports.get(f"{port}/{proto or 'tcp'}") or []
        if not frontends:
            raise StatusError(f"Error: No public port '{spec}' published for {name}")
        out = [join_host_port(f.get("HostIp", ""), f.get("HostPort", "")) for f in frontends]
    else:
        for private, frontends in ports.items():
            for f in frontends or []:
                out.append(f"{private} -> {join_host_port(f.get('HostIp', ''), f.get('HostPort', ''))}")
    if out:
        ctx.out("\n".join(sorted(out, key=natural_key)))
    return 0


def _diff(ctx: Context, ns: argparse.Namespace) -> int:
    changes = ctx.client.get(f"/containers/{ns.args[0]}/changes") or []
    for change in changes:
        ctx.out(f"{KINDS.get(change.get('Kind'), '?')} {change.get('Path', '')}")
    return 0


TOP = Command("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
              _none, _top, (1, None), interspersed=False)
PORT = Command("port", "CONTAINER [PRIVATE_PORT[/PROTO]]",
               "List port mappings or a specific mapping for the container", _none, _port,
               (1, 2))
DIFF = Command("diff", "CONTAINER",
               "Inspect changes to files or directories on a container's filesystem", _none,
               _diff, (1, 1))
COMMANDS = [TOP, PORT, DIFF]
