"""Published ports: Docker's ``-p`` specs, the API's port shapes and host port allocation.

A ``-p`` spec is ``[ip:][hostPort:]containerPort[/proto]`` (go-connections ``nat``): the IP may
be ``[v6]``, both ports may be ranges (``8000-8010:80-90``, equal sizes) and a host range with a
single container port (``8000-8010:80``) means "any free port of that range". Parsing yields one
``PortBinding`` per container port; the API keeps them as ``Config.ExposedPorts``
(``{"80/tcp": {}}``), ``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp", "HostPort"}]}``)
and, once the ports are bound, ``NetworkSettings.Ports`` (``null`` for exposed-only ports).

``PortAllocator`` picks concrete host ports: explicit ones are checked against what it already
handed out (Docker's ``Bind for 0.0.0.0:8080 failed: port is already allocated``), dynamic ones
come from the kernel's ephemeral range, skipping ports some other socket holds (a bind test on
the host address).
"""
from __future__ import annotations

import ipaddress
import random
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockyard import errors

PROTOCOLS = ("tcp", "udp", "sctp")
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_RANGE = (49153, 60999)  # Docker's fallback when /proc is unreadable
_WILDCARDS = ("", "0.0.0.0", "::")


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


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (Docker allocates dynamic host ports from it)."""
    try:
        low, high = (int(f) for f in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    return (low, high) if 0 < low <= high <= 65535 else DEFAULT_EPHEMERAL_RANGE


def port_is_free(host_ip: str, port: int, proto: str) -> bool:
    """Bind test: can a socket of ``proto`` bind ``host_ip:port`` right now?"""
    if proto == "sctp":
        return True
    ip = host_ip or "0.0.0.0"
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        if proto == "tcp":  # as the proxy does: TIME_WAIT leftovers do not make a port busy
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


Probe = Callable[[str, int, str], bool]


class PortAllocator:
    """Hands out host ports, process-wide; thread-safe.

    Explicit ports conflict only with ports this allocator handed out (the listener's bind
    reports other holders); dynamic ports must also pass ``probe`` (a bind test). A wildcard
    host IP overlaps every address of the same port and protocol.
    """

    def __init__(self, port_range: tuple[int, int] | None = None, probe: Probe = port_is_free,
                 rng: random.Random | None = None) -> None:
        self._range = port_range or ephemeral_range()
        self._probe = probe
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._taken: dict[tuple[str, int], set[str]] = {}  # (proto, port) → host IPs

    def allocate(self, binding: PortBinding) -> PortBinding:
        """The binding with a concrete ``host_port``; Conflict when it cannot have one."""
        with self._lock:
            if not binding.dynamic:
                self._claim(binding.host_ip, binding.proto, binding.host_port)
                return binding
            port = self._pick(binding)
            self._taken.setdefault((binding.proto, port), set()).add(binding.host_ip)
            return replace(binding, host_port=port, host_port_end=0)

    def release(self, binding: PortBinding) -> None:
        with self._lock:
            ips = self._taken.get((binding.proto, binding.host_port), set())
            ips.discard(binding.host_ip)
            if not ips:
                self._taken.pop((binding.proto, binding.host_port), None)

    def allocated(self) -> set[tuple[str, str, int]]:
        """(proto, host IP, port) of every port handed out and not released."""
        with self._lock:
            return {(proto, ip, port) for (proto, port), ips in self._taken.items() for ip in ips}

    def _claim(self, host_ip: str, proto: str, port: int) -> None:
        if self._overlaps(host_ip, proto, port):
            raise errors.Conflict(
                f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated")
        self._taken.setdefault((proto, port), set()).add(host_ip)

    def _overlaps(self, host_ip: str, proto: str, port: int) -> bool:
        ips = self._taken.get((proto, port))
        if not ips:
            return False
        return host_ip in ips or host_ip in _WILDCARDS or any(ip in _WILDCARDS for ip in ips)

    def _pick(self, binding: PortBinding) -> int:
        low, high = self._range
        if binding.host_port:
            low, high = binding.host_port, binding.host_port_end
        size = high - low + 1
        first = self._rng.randrange(size)
        for i in range(size):
            port = low + (first + i) % size
            if self._overlaps(binding.host_ip, binding.proto, port):
                continue
            if self._probe(binding.host_ip, port, binding.proto):
                return port
        if binding.host_port:
            raise errors.Conflict(
                f"Bind for {binding.listen_ip}:{binding.host_port_text()} failed: "
                "port is already allocated")
        raise errors.Conflict("all ports are allocated")
