"""``volume`` commands: create, ls, inspect, rm, prune, update."""
from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError, invalid
from dockyard.cli.containerinfo import natural_key
from dockyard.cli.containers import confirm, for_each
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.inspect import inspect_all
from dockyard.cli.listopts import (
    add_filter,
    filters_of,
    kv_map,
    label_opt,
    labels_text,
    list_format,
)
from dockyard.cli.units import human_size, ram_in_bytes

TABLE_FORMAT = "table {{.Driver}}\t{{.Name}}"
CLUSTER_FORMAT = "table {{.Name}}\t{{.Group}}\t{{.Driver}}\t{{.Availability}}\t{{.Status}}"
RAW_FORMAT = "name: {{.Name}}\\ndriver: {{.Driver}}\\n"
HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
           "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
           "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS"}


class VolumeContext:
    """One row of ``volume ls``."""

    def __init__(self, v: dict[str, Any]) -> None:
        self.v = v
        self.cluster: dict[str, Any] | None = v.get("ClusterVolume")

    @property
    def Name(self) -> str:
        return str(self.v.get("Name", ""))

    @property
    def Driver(self) -> str:
        return str(self.v.get("Driver", ""))

    @property
    def Scope(self) -> str:
        return str(self.v.get("Scope", ""))

    @property
    def Mountpoint(self) -> str:
        return str(self.v.get("Mountpoint", ""))

    @property
    def Labels(self) -> str:
        return labels_text(self.v.get("Labels"))

    def Label(self, name: str) -> str:
        return str((self.v.get("Labels") or {}).get(name, ""))

    @property
    def Links(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if usage is None else str(usage.get("RefCount", 0))

    @property
    def Size(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if usage is None else human_size(usage.get("Size", 0) or 0)

    def _spec(self, key: str) -> str:
        if self.cluster is None:
            return "N/A"
        return str((self.cluster.get("Spec") or {}).get(key, ""))

    @property
    def Group(self) -> str:
        return self._spec("Group")

    @property
    def Availability(self) -> str:
        return self._spec("Availability")

    @property
    def Status(self) -> str:
        if self.cluster is None:
            return "N/A"
        if not (self.cluster.get("Info") or {}).get("VolumeID"):
            return "pending creation"
        nodes = len(self.cluster.get("PublishStatus") or [])
        return {0: "created", 1: "in use (1 node)"}.get(nodes, f"in use ({nodes} nodes)")

    def to_json(self) -> dict[str, str]:
        keys = ("Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name",
                "Scope", "Size", "Status")
        return {k: getattr(self, k) for k in keys}


def _ls_build(p: FlagParser) -> None:
    p.add_argument("--cluster", action="store_true",
                   help="Display only cluster volumes, and use cluster volume list formatting")
    add_filter(p, "-f", "--filter", help='Provide filter values (e.g. "dangling=true")')
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    found = ctx.client.get("/volumes", {"filters": filters_of(ns.filter) or None}) or {}
    vols = list(found.get("Volumes") or [])
    if ns.cluster:
        vols = [v for v in vols if v.get("ClusterVolume") is not None]
        fmt = "{{.Name}}" if ns.quiet else CLUSTER_FORMAT
    else:
        fmt = list_format(ctx, ns, "volumesFormat",
                          (TABLE_FORMAT, "{{.Name}}", RAW_FORMAT, "name: {{.Name}}"))
    vols.sort(key=lambda v: natural_key(str(v.get("Name", ""))))
    rows = [VolumeContext(v) for v in vols]
    ctx.stdout.write(render(resolve(fmt, TABLE_FORMAT), rows, HEADERS))
    return 0


def _size(value: str) -> int:
    try:
        return ram_in_bytes(value)
    except ValueError:
        raise invalid(value, f"invalid size: '{value}'") from None


CLUSTER_FLAGS = ("availability", "group", "limit_bytes", "required_bytes", "scope", "secret",
                 "sharing", "topology_preferred", "topology_required", "type")


def _create_build(p: FlagParser) -> None:
    p.add_argument("--availability", default=None,
                   help='Cluster Volume availability ("active", "pause", "drain") '
                        '(default "active")')
    p.add_argument("-d", "--driver", default="local",
                   help='Specify volume driver name (default "local")')
    p.add_argument("--group", default=None, help="Cluster Volume group (cluster volumes)")
    p.add_argument("--label", action="append", default=[], type=label_opt,
                   help="Set metadata for a volume")
    p.add_argument("--limit-bytes", type=_size, default=None,
                   help="Minimum size of the Cluster Volume in bytes")
    p.add_argument("--name", default="", help=argparse.SUPPRESS)
    p.add_argument("-o", "--opt", action="append", default=[], metavar="map",
                   help="Set driver specific options")
    p.add_argument("--required-bytes", type=_size, default=None,
                   help="Maximum size of the Cluster Volume in bytes")
    p.add_argument("--scope", default=None,
                   help='Cluster Volume access scope ("single", "multi") (default "single")')
    p.add_argument("--secret", action="append", default=None, metavar="map",
                   help="Cluster Volume secrets")
    p.add_argument("--sharing", default=None,
                   help='Cluster Volume access sharing ("none", "readonly", "onewriter", '
                        '"all") (default "none")')
    p.add_argument("--topology-preferred", action="append", default=None,
                   help="A topology that the Cluster Volume would be preferred in")
    p.add_argument("--topology-required", action="append", default=None,
                   help="A topology that the Cluster Volume must be accessible from")
    p.add_argument("--type", default=None,
                   help='Cluster Volume access type ("mount", "block") (default "block")')


def _topology(items: list[str] | None) -> list[dict[str, Any]]:
    return [{"Segments": kv_map(item.split(","))} for item in items or []]


def cluster_spec(ns: argparse.Namespace) -> dict[str, Any]:
    """The ``ClusterVolumeSpec`` of ``volume create`` with any cluster flag."""
    access: dict[str, Any] = {"Scope": ns.scope or "single", "Sharing": ns.sharing or "none"}
    access["MountVolume" if ns.type == "mount" else "BlockVolume"] = {}
    spec: dict[str, Any] = {"Group": ns.group or "", "AccessMode": access,
                            "Availability": ns.availability or "active"}
    if ns.secret:
        spec["Secrets"] = [{"Key": k, "Secret": v} for k, v in kv_map(ns.secret).items()]
    if ns.required_bytes is not None or ns.limit_bytes is not None:
        spec["CapacityRange"] = {"RequiredBytes": ns.required_bytes or 0,
                                 "LimitBytes": ns.limit_bytes or 0}
    if ns.topology_preferred or ns.topology_required:
        spec["AccessibilityRequirements"] = {"Requisite": _topology(ns.topology_required),
                                             "Preferred": _topology(ns.topology_preferred)}
    return spec


def _create(ctx: Context, ns: argparse.Namespace) -> int:
    name = ns.name
    if ns.args:
        if name:
            raise StatusError("conflicting options: cannot specify a volume-name through both "
                              "--name and as a positional arg")
        name = ns.args[0]
    body: dict[str, Any] = {"Driver": ns.driver, "DriverOpts": kv_map(ns.opt),
                            "Labels": kv_map(ns.label), "Name": name}
    if any(getattr(ns, flag) is not None for flag in CLUSTER_FLAGS):
        body["ClusterVolumeSpec"] = cluster_spec(ns)
    vol = ctx.client.post("/volumes/create", None, body) or {}
    ctx.out(str(vol.get("Name", "")))
    return 0


def _inspect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help="Format output using a custom template")


VOLUME_FIELDS = ("ClusterVolume", "CreatedAt", "Driver", "Labels", "Mountpoint", "Name",
                 "Options", "Scope", "Status", "UsageData")
OMIT_EMPTY = frozenset({"ClusterVolume", "CreatedAt", "Status", "UsageData"})


def typed_volume(raw: dict[str, Any]) -> dict[str, Any]:
    """docker decodes a volume into its Go struct and marshals that: fields in declaration
    order, ``omitempty`` ones dropped, map keys sorted."""
    out: dict[str, Any] = {}
    for key in VOLUME_FIELDS:
        value = raw.get(key)
        if key in OMIT_EMPTY and not value:
            continue
        if isinstance(value, dict) and key in ("Labels", "Options", "Status"):
            value = dict(sorted(value.items()))
        out[key] = "" if value is None and key in ("Driver", "Mountpoint", "Name", "Scope") \
            else value
    return out


def _inspect(ctx: Context, ns: argparse.Namespace) -> int:
    return inspect_all(ctx, ns.args, ("volume",), ns.format, typed=typed_volume)


def _rm_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the removal of one or more volumes")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"force": True if ns.force else None}
    return for_each(ctx, ns.args,
                    lambda name: ctx.client.delete(f"/volumes/{quote(name, safe='')}", query))


def _prune_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused volumes, not just anonymous ones")
    add_filter(p, "--filter", help='Provide filter values (e.g. "label=<label>")')
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


ANONYMOUS_WARNING = ("WARNING! This will remove anonymous local volumes not used by at least "
                     "one container.")
ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one container."


def _api_before(version: str, wanted: tuple[int, int]) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")) < wanted
    except ValueError:
        return False


def _prune(ctx: Context, ns: argparse.Namespace) -> int:
    filters = filters_of(ns.filter)
    warning = ANONYMOUS_WARNING
    if _api_before(ctx.client.version, (1, 42)):
        warning = ALL_WARNING  # older daemons remove named volumes too
    elif ns.all:
        if "all" in filters:
            raise StatusError("conflicting options: cannot specify both --all and --filter all=1")
        filters["all"] = {"true": True}
        warning = ALL_WARNING
    if not ns.force and not confirm(ctx, warning):
        return 0
    report = ctx.client.post("/volumes/prune", {"filters": filters or None}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        ctx.out("Deleted Volumes:\n" + "".join(f"{name}\n" for name in deleted))
    ctx.out(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0


def _update_build(p: FlagParser) -> None:
    p.add_argument("--availability", default="active",
                   help='Cluster Volume availability ("active", "pause", "drain")')


def _update(ctx: Context, ns: argparse.Namespace) -> int:
    path = f"/volumes/{quote(ns.args[0], safe='')}"
    vol = ctx.client.get(path) or {}
    cluster = vol.get("ClusterVolume")
    if cluster is None:
        raise StatusError("Can only update cluster volumes")
    spec = dict(cluster.get("Spec") or {})
    spec["Availability"] = ns.availability
    version = (cluster.get("Version") or {}).get("Index", 0)
    ctx.client.call("PUT", path, {"version": version}, {"Spec": spec})
    return 0


LS = Command("ls", "[OPTIONS]", "List volumes", _ls_build, _ls)
RM = Command("rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", _rm_build,
             _rm, (1, None))
GROUP: dict[str, Command] = {
    "create": Command("create", "[OPTIONS] [VOLUME]", "Create a volume", _create_build,
                      _create, (0, 1)),
    "inspect": Command("inspect", "[OPTIONS] VOLUME [VOLUME...]",
                       "Display detailed information on one or more volumes", _inspect_build,
                       _inspect, (1, None)),
    "ls": LS, "list": LS,
    "prune": Command("prune", "[OPTIONS]", "Remove unused local volumes", _prune_build, _prune),
    "rm": RM, "remove": RM,
    "update": Command("update", "[OPTIONS] [VOLUME]", "Update a volume (cluster volumes only)",
                      _update_build, _update, (1, 1)),
}
