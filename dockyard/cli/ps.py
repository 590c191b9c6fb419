"""``ps`` / ``container ls``: the container table, exactly like docker's formatter."""
from __future__ import annotations

import argparse
import time
from typing import Any

from dockyard.cli.command import Command, FlagParser, invalid
from dockyard.cli.context import Context
from dockyard.cli.format import ellipsis, render, resolve, truncate_id
from dockyard.cli.refs import familiar_image
from dockyard.cli.units import go_time_string, human_duration, human_size

DEFAULT_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t" \
                 "{{.Ports}}\t{{.Names}}"
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
           "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
           "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
           "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
           "Networks": "NETWORKS", "Label": "LABEL"}


def _port_key(port: dict[str, Any]) -> tuple[int, str, int, str]:
    return (port.get("PrivatePort", 0), port.get("IP", "") or "", port.get("PublicPort", 0),
            port.get("Type", ""))


def _join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{kind}"


def displayable_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: ranges grouped, host mappings last."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports or [], key=_port_key):
        current = int(port.get("PrivatePort", 0))
        key = port.get("Type", "tcp")
        ip = port.get("IP", "") or ""
        if ip:
            public = int(port.get("PublicPort", 0) or 0)
            if public != current:
                mappings.append(f"{_join_host_port(ip, public)}->{current}/{key}")
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(_form_group(key, group[0], group[1]))
            groups[key] = [current, current]
    result.extend(_form_group(k, *groups[k]) for k in order)
    return ", ".join(result + mappings)


class ContainerContext:
    """The fields ``--format`` can use for one container of ``GET /containers/json``."""

    def __init__(self, c: dict[str, Any], trunc: bool = True, now: float | None = None) -> None:
        self.c = c
        self.trunc = trunc
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        ident = self.c.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    @property
    def Names(self) -> str:
        names = [n.removeprefix("/") for n in self.c.get("Names") or []]
        if self.trunc:
            for name in names:
                if "/" not in name:
                    names = [name]
                    break
        return ",".join(names)

    @property
    def Image(self) -> str:
        image = self.c.get("Image", "")
        if not image:
            return "<no image>"
        if self.trunc:
            if truncate_id(self.c.get("ImageID", "")) == truncate_id(image):
                return truncate_id(image)
            return familiar_image(image)
        return str(image)

    @property
    def Command(self) -> str:
        command = self.c.get("Command", "")
        if self.trunc:
            command = ellipsis(command, 20)
        return _go_quote(command)

    @property
    def CreatedAt(self) -> str:
        return go_time_string(self.c.get("Created", 0))

    @property
    def RunningFor(self) -> str:
        return human_duration(self.now - self.c.get("Created", 0)) + " ago"

    @property
    def Ports(self) -> str:
        return displayable_ports(self.c.get("Ports") or [])

    @property
    def State(self) -> str:
        return str(self.c.get("State", ""))

    @property
    def Status(self) -> str:
        return str(self.c.get("Status", ""))

    @property
    def Size(self) -> str:
        srw = human_size(self.c.get("SizeRw", 0) or 0, 3)
        root = self.c.get("SizeRootFs", 0) or 0
        return f"{srw} (virtual {human_size(root, 3)})" if root > 0 else srw

    @property
    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def Label(self, name: str) -> str:
        return str((self.c.get("Labels") or {}).get(name, ""))

    @property
    def Mounts(self) -> str:
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "")
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:
        nets = ((self.c.get("NetworkSettings") or {}).get("Networks")) or {}
        return ",".join(sorted(nets))

    @property
    def Platform(self) -> None:
        return None  # docker fills this from the image manifest descriptor, if any

    def to_json(self) -> dict[str, str | None]:
        keys = ("Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
                "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State",
                "Status")
        return {k: getattr(self, k) for k in keys}


def _go_quote(text: str) -> str:
    """strconv.Quote for printable text."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def parse_filters(items: list[str]) -> dict[str, dict[str, bool]]:
    """``-f key=value`` flags → the API's ``{"key": {"value": true}}``."""
    out: dict[str, dict[str, bool]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError("bad format of filter (expected name=value)")
        out.setdefault(key.strip().lower(), {})[value] = True
    return out


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise invalid(value, f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def build(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all containers (default shows just running)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output based on conditions provided")
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("-n", "--last", type=_int, default=-1,
                   help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="Show the latest created container (includes all states)")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")


def list_query(ns: argparse.Namespace) -> dict[str, Any]:
    fmt = ns.format or ""
    size = ns.size or (not ns.quiet and ".Size" in fmt)
    limit = 1 if ns.latest else ns.last
    query: dict[str, Any] = {"all": True if ns.all else None,
                             "limit": limit if limit > 0 else None,
                             "size": True if size else None}
    filters = parse_filters(ns.filter)
    if filters:
        query["filters"] = filters
    return query


def choose_format(ns: argparse.Namespace) -> str:
    if ns.quiet:
        return "{{.ID}}"
    if ns.format:
        return str(ns.format)
    return DEFAULT_FORMAT + ("\t{{.Size}}" if ns.size else "")


def run(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        query = list_query(ns)
    except ValueError as exc:
        ctx.err(str(exc))
        return 1
    containers = ctx.client.get("/containers/json", query) or []
    now = time.time()
    rows = [ContainerContext(c, trunc=not ns.no_trunc, now=now) for c in containers]
    ctx.stdout.write(render(resolve(choose_format(ns), DEFAULT_FORMAT), rows, HEADERS))
    return 0


PS = Command("ps", "[OPTIONS]", "List containers", build, run)
