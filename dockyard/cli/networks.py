"""``network`` commands: create, ls, inspect, rm, prune, connect, disconnect."""
from __future__ import annotations

import argparse
import ipaddress
import re
from typing import Any
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containerinfo import natural_key
from dockyard.cli.containers import confirm
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve, truncate_id
from dockyard.cli.inspect import inspect_all
from dockyard.cli.listopts import (
    add_filter,
    filters_of,
    flat,
    go_time_text,
    kv_map,
    label_opt,
    labels_text,
    list_format,
    strings_opt,
)
from dockyard.client.errors import APIError


# -- network ls -------------------------------------------------------------------------------
TABLE_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
RAW_FORMAT = "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
           "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
           "CreatedAt": "CREATED AT"}


def _go_bool(value: Any) -> str:
    return "true" if value else "false"


class NetworkContext:
    """One row of ``network ls``."""

    def __init__(self, n: dict[str, Any], trunc: bool) -> None:
        self.n, self.trunc = n, trunc

    @property
    def ID(self) -> str:
        ident = str(self.n.get("Id", ""))
        return truncate_id(ident) if self.trunc else ident

    @property
    def Name(self) -> str:
        return str(self.n.get("Name", ""))

    @property
    def Driver(self) -> str:
        return str(self.n.get("Driver", ""))

    @property
    def Scope(self) -> str:
        return str(self.n.get("Scope", ""))

    @property
    def IPv4(self) -> str:
        return _go_bool(self.n.get("EnableIPv4"))

    @property
    def IPv6(self) -> str:
        return _go_bool(self.n.get("EnableIPv6"))

    @property
    def Internal(self) -> str:
        return _go_bool(self.n.get("Internal"))

    @property
    def Labels(self) -> str:
        return labels_text(self.n.get("Labels"))

    def Label(self, name: str) -> str:
        return str((self.n.get("Labels") or {}).get(name, ""))

    @property
    def CreatedAt(self) -> str:
        return go_time_text(str(self.n.get("Created") or ""))

    def to_json(self) -> dict[str, str]:
        keys = ("CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name",
                "Scope")
        return {k: getattr(self, k) for k in keys}


def _ls_build(p: FlagParser) -> None:
    add_filter(p, "-f", "--filter", help='Provide filter values (e.g. "driver=bridge")')
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    nets = ctx.client.get("/networks", {"filters": filters_of(ns.filter) or None}) or []
    nets.sort(key=lambda n: natural_key(str(n.get("Name", ""))))
    fmt = list_format(ctx, ns, "networksFormat",
                      (TABLE_FORMAT, "{{.ID}}", RAW_FORMAT, "network_id: {{.ID}}"))
    rows = [NetworkContext(n, not ns.no_trunc) for n in nets]
    ctx.stdout.write(render(resolve(fmt, TABLE_FORMAT), rows, HEADERS))
    return 0


# -- network create ---------------------------------------------------------------------------
def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not re.search(r"/\d+$", text):
        raise ValueError(f"invalid CIDR address: {text}")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {text}") from None


def _subnet_matches(subnet: str, data: str) -> bool:
    try:
        net = _cidr(subnet)
    except ValueError as exc:
        raise ValueError(f"invalid subnet: {exc}") from None
    if "/" in data:
        _cidr(data)
        ip: Any = ipaddress.ip_interface(data).ip
    else:
        try:
            ip = ipaddress.ip_address(data)
        except ValueError:
            return False
    return ip.version == net.version and ip in net


def ipam_config(subnets: list[str], ranges: list[str], gateways: list[str],
                aux: dict[str, str]) -> list[dict[str, Any]]:
    """docker's createIPAMConfig: each range, gateway and aux address joins its subnet."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise ValueError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for s in subnets:
        for k in configs:
            if _subnet_matches(s, k) or _subnet_matches(k, s):
                raise ValueError("multiple overlapping subnet configuration is not supported")
        configs[s] = {"Subnet": s}
    for field, flag, values in (("IPRange", "range", ranges), ("Gateway", "gateway", gateways)):
        for value in values:
            match = False
            for s in subnets:
                if not _subnet_matches(s, value):
                    continue
                if configs[s].get(field):
                    what = "ranges" if field == "IPRange" else "gateways"
                    prep = "on" if field == "IPRange" else "for"
                    raise ValueError(f"cannot configure multiple {what} ({value}, "
                                     f"{configs[s][field]}) {prep} the same subnet ({s})")
                configs[s][field] = value
                match = True
            if not match:
                raise ValueError(f"no matching subnet for {flag} {value}")
    for key, addr in aux.items():
        matched = [s for s in subnets if _subnet_matches(s, addr)]
        if not matched:
            raise ValueError(f"no matching subnet for aux-address {addr}")
        for s in matched:
            configs[s].setdefault("AuxiliaryAddresses", {})[key] = addr
    return list(configs.values())


def _create_build(p: FlagParser) -> None:
    p.add_argument("--attachable", action="store_true", help="Enable manual container attachment")
    p.add_argument("--aux-address", action="append", default=[], metavar="map",
                   help="Auxiliary IPv4 or IPv6 addresses used by Network driver")
    p.add_argument("--config-from", default="",
                   help="The network from which to copy the configuration")
    p.add_argument("--config-only", action="store_true",
                   help="Create a configuration only network")
    p.add_argument("-d", "--driver", default="bridge",
                   help='Driver to manage the Network (default "bridge")')
    p.add_argument("--gateway", action="append", type=strings_opt, metavar="strings",
                   help="IPv4 or IPv6 Gateway for the master subnet")
    p.add_argument("--ingress", action="store_true", help="Create swarm routing-mesh network")
    p.add_argument("--internal", action="store_true",
                   help="Restrict external access to the network")
    p.add_argument("--ip-range", action="append", type=strings_opt, metavar="strings",
                   help="Allocate container ip from a sub-range")
    p.add_argument("--ipam-driver", default="default",
                   help='IP Address Management Driver (default "default")')
    p.add_argument("--ipam-opt", action="append", default=[], metavar="map",
                   help="Set IPAM driver specific options")
    p.add_argument("--ipv4", action="store_true", default=None,
                   help="Enable or disable IPv4 address assignment (default true)")
    p.add_argument("--ipv6", action="store_true", default=None,
                   help="Enable or disable IPv6 address assignment")
    p.add_argument("--label", action="append", default=[], type=label_opt,
                   help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="map",
                   help="Set driver specific options")
    p.add_argument("--scope", default="", help="Control the network's scope")
    p.add_argument("--subnet", action="append", type=strings_opt, metavar="strings",
                   help="Subnet in CIDR format that represents a network segment")


def _create(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        config = ipam_config(flat(ns.subnet), flat(ns.ip_range), flat(ns.gateway),
                             kv_map(ns.aux_address))
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    body: dict[str, Any] = {
        "Name": ns.args[0], "Driver": ns.driver, "Scope": ns.scope,
        "IPAM": {"Driver": ns.ipam_driver, "Config": config, "Options": kv_map(ns.ipam_opt)},
        "Internal": ns.internal, "Attachable": ns.attachable, "Ingress": ns.ingress,
        "ConfigOnly": ns.config_only, "Options": kv_map(ns.opt), "Labels": kv_map(ns.label)}
    if ns.ipv4 is not None:
        body["EnableIPv4"] = ns.ipv4
    if ns.ipv6 is not None:
        body["EnableIPv6"] = ns.ipv6
    if ns.config_from:
        body["ConfigFrom"] = {"Network": ns.config_from}
    resp = ctx.client.post("/networks/create", None, body) or {}
    ctx.out(str(resp.get("Id", "")))
    return 0


# -- inspect, rm, prune, connect, disconnect ----------------------------------------------------
def _inspect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help="Format output using a custom template")
    p.add_argument("-v", "--verbose", action="store_true", help="Verbose output for diagnostics")


def _inspect(ctx: Context, ns: argparse.Namespace) -> int:
    return inspect_all(ctx, ns.args, ("network",), ns.format)


INGRESS_WARNING = ("WARNING! Before removing the routing-mesh network, make sure all the nodes "
                   "in your swarm run the same docker engine version. Otherwise, removal may "
                   "not be effective and functionality of newly create ingress networks will "
                   "be impaired.")


def _rm_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Do not error if the network does not exist")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    failed = False
    for name in ns.args:
        path = f"/networks/{quote(name, safe='')}"
        try:
            if (ctx.client.get(path) or {}).get("Ingress") and \
                    not confirm(ctx, INGRESS_WARNING):
                continue
        except APIError:
            pass
        try:
            ctx.client.delete(path)
        except APIError as exc:
            if not (ns.force and exc.status == 404):
                ctx.err(f"Error response from daemon: {exc.message}")
                failed = True
            continue
        ctx.out(name)
    if failed:
        raise StatusError("exit status 1")
    return 0


def _prune_build(p: FlagParser) -> None:
    add_filter(p, "--filter", help='Provide filter values (e.g. "until=<timestamp>")')
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


PRUNE_WARNING = "WARNING! This will remove all custom networks not used by at least one container."


def _prune(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.force and not confirm(ctx, PRUNE_WARNING):
        return 0
    report = ctx.client.post("/networks/prune", {"filters": filters_of(ns.filter) or None}) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        ctx.out("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted))
    return 0


def _connect_build(p: FlagParser) -> None:
    p.add_argument("--alias", action="append", type=strings_opt, metavar="strings",
                   help="Add network-scoped alias for the container")
    p.add_argument("--driver-opt", action="append", type=strings_opt, metavar="strings",
                   help="driver options for the network")
    p.add_argument("--gw-priority", type=int, default=0,
                   help="Highest gw-priority provides the default gateway. Accepts positive "
                        "and negative values.")
    p.add_argument("--ip", default="", help='IPv4 address (e.g., "172.30.100.104")')
    p.add_argument("--ip6", default="", help='IPv6 address (e.g., "2001:db8::33")')
    p.add_argument("--link", action="append", default=[], help="Add link to another container")
    p.add_argument("--link-local-ip", action="append", type=strings_opt, metavar="strings",
                   help="Add a link-local address for the container")


def _driver_opts(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StatusError("invalid key/value pair format in driver options")
        out[key.strip()] = value.strip()
    return out


def _connect(ctx: Context, ns: argparse.Namespace) -> int:
    ipam = {k: v for k, v in (("IPv4Address", ns.ip), ("IPv6Address", ns.ip6),
                              ("LinkLocalIPs", flat(ns.link_local_ip))) if v}
    endpoint: dict[str, Any] = {"IPAMConfig": ipam, "Links": ns.link or None,
                                "Aliases": flat(ns.alias) or None,
                                "DriverOpts": _driver_opts(flat(ns.driver_opt)) or None,
                                "GwPriority": ns.gw_priority}
    body = {"Container": ns.args[1],
            "EndpointConfig": {k: v for k, v in endpoint.items() if v is not None}}
    ctx.client.post(f"/networks/{quote(ns.args[0], safe='')}/connect", None, body)
    return 0


def _disconnect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the container to disconnect from a network")


def _disconnect(ctx: Context, ns: argparse.Namespace) -> int:
    body = {"Container": ns.args[1], "Force": ns.force}
    ctx.client.post(f"/networks/{quote(ns.args[0], safe='')}/disconnect", None, body)
    return 0


LS = Command("ls", "[OPTIONS]", "List networks", _ls_build, _ls)
RM = Command("rm", "NETWORK [NETWORK...]", "Remove one or more networks", _rm_build, _rm,
             (1, None))
GROUP: dict[str, Command] = {
    "connect": Command("connect", "[OPTIONS] NETWORK CONTAINER",
                       "Connect a container to a network", _connect_build, _connect, (2, 2)),
    "create": Command("create", "[OPTIONS] NETWORK", "Create a network", _create_build,
                      _create, (1, 1)),
    "disconnect": Command("disconnect", "[OPTIONS] NETWORK CONTAINER",
                          "Disconnect a container from a network", _disconnect_build,
                          _disconnect, (2, 2)),
    "inspect": Command("inspect", "[OPTIONS] NETWORK [NETWORK...]",
                       "Display detailed information on one or more networks", _inspect_build,
                       _inspect, (1, None)),
    "ls": LS, "list": LS,
    "prune": Command("prune", "[OPTIONS]", "Remove all unused networks", _prune_build, _prune),
    "rm": RM, "remove": RM,
}
