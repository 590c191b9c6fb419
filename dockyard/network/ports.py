"""Published ports: Docker's ``-p`` specs and the API's port shapes.

A ``-p`` spec is ``[ip:][hostPort:]containerPort[/proto]`` (go-connections ``nat``): the IP may
be ``[v6]``, both ports may be ranges (``8000-8010:80-90``, equal sizes) and a host range with a
single container port (``8000-8010:80``) means "any free port of that range". Parsing yields one
``PortBinding`` per container port; the API keeps them as ``Config.ExposedPorts``
(``{"80/tcp": {}}``), ``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp", "HostPort"}]}``)
and, once the ports are bound, ``NetworkSettings.Ports`` (``null`` for exposed-only ports).

Picking concrete host ports (and holding them) is ``portalloc``'s business.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard import errors

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortBinding:
    """One container port published on the host.

    ``host_ip`` ``""`` means every address; ``host_port`` 0 means any free ephemeral port and
    ``host_port_end > host_port`` means any free port of ``host_port..host_port_end``.
    """

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0

    @property
    def key(self) -> str:
        """The API's port key, ``80/tcp``."""
        return port_key(self.container_port, self.proto)

    @property
    def dynamic(self) -> bool:
        return self.host_port == 0 or self.host_port_end > self.host_port

    @property
    def listen_ip(self) -> str:
        """The address to listen on: ``0.0.0.0`` for "every address"."""
        return self.host_ip or "0.0.0.0"

    def host_port_text(self) -> str:
        if self.host_port == 0:
            return ""
        if self.host_port_end > self.host_port:
            return f"{self.host_port}-{self.host_port_end}"
        return str(self.host_port)

    def api(self) -> dict[str, str]:
        """The ``HostConfig.PortBindings`` entry."""
        return {"HostIp": self.host_ip, "HostPort": self.host_port_text()}


@dataclass(frozen=True)
class PortSpecs:
    """``Config.ExposedPorts`` and ``HostConfig.PortBindings`` as the API carries them."""

    exposed: dict[str, dict[str, Any]]
    bindings: dict[str, list[dict[str, str]]]


def port_key(port: int, proto: str = "tcp") -> str:
    return f"{port}/{proto}"


def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: ``80/udp`` → (``udp``, ``80``); no proto means tcp."""
    port, _, proto = raw.partition("/")
    if not port:
        return "", ""
    return proto or "tcp", port


def _uint16(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    value = int(text)
    if value > 65535:
        raise ValueError(text)
    return value


def parse_port_range(text: str) -> tuple[int, int]:
    """nat.ParsePortRange: ``80`` or ``8000-8010``; ValueError when malformed."""
    if not text:
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        port = _uint16(text)
        return port, port
    parts = text.split("-")
    start, end = _uint16(parts[0]), _uint16(parts[1])
    if len(parts) > 2:
        raise ValueError(text)
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def parse_port_key(key: str) -> tuple[int, str]:
    """``80/tcp`` → (80, ``tcp``), the daemon's check of ``PortBindings`` keys."""
    proto, port = split_proto_port(key)
    try:
        number = _uint16(port)
    except ValueError:
        raise errors.InvalidArgument(f"invalid port specification: {port!r}") from None
    if proto.lower() not in PROTOCOLS:
        raise errors.InvalidArgument(f"invalid proto: {proto}")
    return number, proto.lower()


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _host_ip(ip: str, raw: str) -> str:
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise errors.InvalidArgument(f"invalid port format for --publish: {raw}")
        ip = ip[1:-1]
    if not ip:
        return ""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise errors.InvalidArgument(f"invalid IP address: {ip}") from None
    return ip


def long_syntax(spec: str) -> str:
    """The CLI's ``target=80,published=8080,protocol=udp`` → ``8080:80/udp``."""
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise errors.InvalidArgument(
                f"invalid publish opts format (should be name=value but got '{param}')")
        params[key] = value
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def parse_port_spec(raw: str) -> list[PortBinding]:
    """nat.ParsePortSpec: one ``-p`` value → one binding per container port."""
    spec = long_syntax(raw) if "=" in raw else raw
    if spec.count("/") > 1 or any(c.isspace() for c in spec):
        raise errors.InvalidArgument(f"invalid port format for --publish: {raw}")
    ip, host, container = _split_parts(spec)
    proto, container = split_proto_port(container)
    proto = proto.lower()
    if container and proto not in PROTOCOLS:
        raise errors.InvalidArgument(f"invalid proto: {proto}")
    host_ip = _host_ip(ip, raw)
    if not container:
        raise errors.InvalidArgument(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container)
    except ValueError:
        raise errors.InvalidArgument(f"invalid containerPort: {container}") from None
    hstart = hend = 0
    if host:
        try:
            hstart, hend = parse_port_range(host)
        except ValueError:
            raise errors.InvalidArgument(f"invalid hostPort: {host}") from None
        if end - start != hend - hstart and end != start:
            raise errors.InvalidArgument(
                f"invalid ranges specified for container and host Ports: {container} and {host}")
    if start == end:
        return [PortBinding(start, proto, host_ip, hstart, hend if hend > hstart else 0)]
    return [PortBinding(start + i, proto, host_ip, hstart + i if host else 0)
            for i in range(end - start + 1)]


def parse_port_specs(specs: Iterable[str]) -> PortSpecs:
    """nat.ParsePortSpecs: every ``-p`` → ``ExposedPorts`` and ``PortBindings``."""
    return to_api(b for raw in specs for b in parse_port_spec(raw))


def to_api(bindings: Iterable[PortBinding]) -> PortSpecs:
    exposed: dict[str, dict[str, Any]] = {}
    api: dict[str, list[dict[str, str]]] = {}
    for binding in bindings:
        exposed.setdefault(binding.key, {})
        api.setdefault(binding.key, []).append(binding.api())
    return PortSpecs(exposed, api)


def _api_host_port(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    try:
        start, end = parse_port_range(split_proto_port(text)[1])
    except ValueError:
        raise errors.InvalidArgument(f"invalid port specification: {text!r}") from None
    return start, (end if end > start else 0)


def bindings_from_api(port_bindings: Mapping[str, Any] | None) -> list[PortBinding]:
    """``HostConfig.PortBindings`` → bindings, with the daemon's validation messages."""
    out: list[PortBinding] = []
    for key, entries in (port_bindings or {}).items():
        port, proto = parse_port_key(key)
        for entry in entries or [{}]:
            entry = entry or {}
            start, end = _api_host_port(str(entry.get("HostPort") or ""))
            host_ip = _host_ip(str(entry.get("HostIp") or ""), key)
            out.append(PortBinding(port, proto, host_ip, start, end))
    return out


def publish_all(exposed: Iterable[str], bindings: Iterable[PortBinding]) -> list[PortBinding]:
    """``-P``: every exposed port without a binding of its own gets a random host port."""
    out = list(bindings)
    bound = {b.key for b in out}
    for key in exposed:
        port, proto = parse_port_key(key)
        if port_key(port, proto) not in bound:
            out.append(PortBinding(port, proto))
            bound.add(port_key(port, proto))
    return out


ApiPorts = dict[str, list[dict[str, str]] | None]


def network_settings_ports(exposed: Iterable[str], published: Iterable[PortBinding]) -> ApiPorts:
    """``NetworkSettings.Ports``: bound ports with their host side, exposed-only ones null."""
    ports: ApiPorts = {}
    for key in exposed:
        port, proto = parse_port_key(key)
        ports[port_key(port, proto)] = None
    for binding in published:
        entries = ports.get(binding.key) or []
        entries.append({"HostIp": binding.listen_ip, "HostPort": str(binding.host_port)})
        ports[binding.key] = entries
    return ports
