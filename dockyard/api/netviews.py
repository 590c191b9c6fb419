"""Wire shapes for networks: ``GET /networks`` objects and a container's NetworkSettings."""
from __future__ import annotations

from typing import Any

from dockyard.network.store import Endpoint, Network

DRIVER_NAMES = {"null": "null", "host": "host", "bridge": "bridge"}


def network_json(net: Network, endpoints: list[Endpoint], names: dict[str, str]) -> dict[str, Any]:
    config = [{"Subnet": net.subnet, "Gateway": net.gateway}] if net.subnet else []
    return {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
        "Driver": net.driver, "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {ep.container_id: {
            "Name": names.get(ep.container_id, ""), "EndpointID": ep.endpoint_id,
            "MacAddress": ep.mac, "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
            "IPv6Address": ""} for ep in endpoints},
        "Options": dict(net.options), "Labels": dict(net.labels),
    }


def swarm_network_json(obj: Any, endpoints: list[Endpoint],
                       names: dict[str, str]) -> dict[str, Any]:
    """A swarm network (a stored cluster object), with this node's endpoints on it."""
    spec = obj.spec
    containers = {ep.container_id: {
        "Name": names.get(ep.container_id, ""), "EndpointID": ep.endpoint_id,
        "MacAddress": ep.mac, "IPv4Address": f"{ep.ip}/{ep.prefixlen}", "IPv6Address": ""}
        for ep in endpoints}
    return {"Name": spec.get("Name", ""), "Id": obj.id, "Created": obj.created_at,
            "Scope": "swarm", "Driver": spec.get("Driver", "overlay"), "EnableIPv4": True,
            "EnableIPv6": False, "IPAM": spec.get("IPAM") or {},
            "Internal": bool(spec.get("Internal")), "Attachable": bool(spec.get("Attachable")),
            "Ingress": bool(spec.get("Ingress")), "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": containers or None,
            "Options": dict(spec.get("Options") or {}), "Labels": dict(spec.get("Labels") or {})}


def endpoint_json(net: Network, ep: Endpoint | None, aliases: list[str],
                  dns_names: list[str]) -> dict[str, Any]:
    return {
        "IPAMConfig": None, "Links": None, "Aliases": aliases or None,
        "MacAddress": ep.mac if ep else "", "DriverOpts": None, "GwPriority": 0,
        "NetworkID": net.id, "EndpointID": ep.endpoint_id if ep else "",
        "Gateway": ep.gateway if ep else "", "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names or None,
    }


def ports_json(exposed: dict[str, Any], endpoints: list[Endpoint]) -> dict[str, Any]:
    """``NetworkSettings.Ports``: every exposed port, with its host bindings (or null)."""
    ports: dict[str, Any] = {key: None for key in exposed or {}}
    for ep in endpoints:
        for mapping in ep.ports:
            key = f"{mapping.container_port}/{mapping.proto}"
            bindings = ports.get(key) or []
            bindings.append({"HostIp": mapping.host_ip or "0.0.0.0",
                             "HostPort": str(mapping.host_port)})
            ports[key] = bindings
    return ports
