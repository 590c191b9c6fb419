"""Host port allocation for published ports: which host port, and keeping it ours.

``PortAllocator`` hands out concrete host ports. Every port, explicit (``-p 8080:80``) or
dynamic (``-p 80``, ``-P``, a host range), must pass two checks: no port this allocator handed
out overlaps it (Docker's ``Bind for 0.0.0.0:8080 failed: port is already allocated``), and a
socket of the binding's protocol can bind it on the requested host address — with kernel NAT
nothing else would notice another process already using the port, and the DNAT rule would
silently take its traffic (Docker's ``listen tcp4 0.0.0.0:8080: bind: address already in
use``). With ``reserve=bind_port`` the bound (never listening) socket stays open until the port
is released, so no other process can take the port while the mapping lives, as docker-proxy's
socket does for Docker; packets never reach it, DNAT rewrites them before the socket lookup.
"""
from __future__ import annotations

import errno
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from dockyard import errors
from dockyard.network.ports import PortBinding

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_RANGE = (49153, 60999)  # Docker's fallback when /proc is unreadable
_WILDCARDS = ("", "0.0.0.0", "::")


class Held(Protocol):
    """What keeps a host port reserved (a bound socket); closed when the port is released."""

    def close(self) -> None: ...


# (host IP, port, proto) → what holds the port, or None; raises OSError when it cannot be bound.
Reserve = Callable[[str, int, str], Held | None]


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (Docker allocates dynamic host ports from it)."""
    try:
        low, high = (int(f) for f in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    return (low, high) if 0 < low <= high <= 65535 else DEFAULT_EPHEMERAL_RANGE


def bind_port(host_ip: str, port: int, proto: str) -> socket.socket | None:
    """A socket of ``proto`` bound to ``host_ip:port`` (``""``: every address), not listening.

    TCP binds with SO_REUSEADDR (TIME_WAIT leftovers of an earlier server do not make a port
    busy) and clears it once bound: otherwise another SO_REUSEADDR socket could still bind the
    port and listen on it. UDP binds without it (two SO_REUSEADDR UDP sockets share a port).
    SCTP is not probed (None), nor is IPv6 on a host without it.
    """
    if proto == "sctp":
        return None
    ip = host_ip or "0.0.0.0"
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT:
            return None
        raise
    try:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    except BaseException:
        sock.close()
        raise
    return sock


def probe_port(host_ip: str, port: int, proto: str) -> None:
    """Bind test only: raises OSError when ``host_ip:port`` cannot be bound right now."""
    sock = bind_port(host_ip, port, proto)
    if sock is not None:
        sock.close()


def port_is_free(host_ip: str, port: int, proto: str) -> bool:
    """Bind test: can a socket of ``proto`` bind ``host_ip:port`` right now?"""
    try:
        probe_port(host_ip, port, proto)
    except OSError:
        return False
    return True


def bind_error(host_ip: str, port: int, proto: str, exc: OSError) -> errors.DockyardError:
    """Docker's text for a host port the kernel refused: ``listen tcp4 IP:PORT: bind: …``."""
    ip = host_ip or "0.0.0.0"
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    text = f"listen {proto}{6 if ':' in ip else 4} {ip}:{port}: bind: " \
           f"{reason[:1].lower()}{reason[1:]}"
    if exc.errno == errno.EADDRINUSE:
        return errors.Conflict(text)
    return errors.InvalidArgument(text)


class PortAllocator:
    """Hands out host ports, process-wide; thread-safe.

    ``reserve`` bind-tests each port before it is handed out (default: ``probe_port``, which
    closes its socket again; ``bind_port`` keeps it open until ``release``). A wildcard host
    IP overlaps every address of the same port and protocol.
    """

    def __init__(self, port_range: tuple[int, int] | None = None,
                 reserve: Reserve = probe_port, rng: random.Random | None = None) -> None:
        self._range = port_range or ephemeral_range()
        self._reserve = reserve
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._taken: dict[tuple[str, int], set[str]] = {}  # (proto, port) → host IPs
        self._held: dict[tuple[str, str, int], Held] = {}  # (proto, host IP, port)

    def allocate(self, binding: PortBinding) -> PortBinding:
        """The binding with a concrete ``host_port``; Conflict when it cannot have one."""
        with self._lock:
            if not binding.dynamic:
                ip, proto, port = binding.host_ip, binding.proto, binding.host_port
                if self._overlaps(ip, proto, port):
                    raise errors.Conflict(
                        f"Bind for {ip or '0.0.0.0'}:{port} failed: port is already allocated")
                try:
                    held = self._reserve(ip, port, proto)
                except OSError as exc:
                    raise bind_error(ip, port, proto, exc) from None
                self._take(ip, proto, port, held)
                return binding
            port, held = self._pick(binding)
            self._take(binding.host_ip, binding.proto, port, held)
            return replace(binding, host_port=port, host_port_end=0)

    def restore(self, binding: PortBinding) -> None:
        """Boot: a port a live container publishes already. Recorded, and held again when it
        can be bound (when not, the mapping exists anyway: nothing to fail)."""
        with self._lock:
            ip, proto, port = binding.host_ip, binding.proto, binding.host_port
            if (proto, ip, port) in self._held:
                return
            try:
                held = self._reserve(ip, port, proto)
            except OSError:
                held = None
            self._take(ip, proto, port, held)

    def release(self, binding: PortBinding) -> None:
        with self._lock:
            ips = self._taken.get((binding.proto, binding.host_port), set())
            ips.discard(binding.host_ip)
            if not ips:
                self._taken.pop((binding.proto, binding.host_port), None)
            held = self._held.pop((binding.proto, binding.host_ip, binding.host_port), None)
        if held is not None:
            held.close()

    def allocated(self) -> set[tuple[str, str, int]]:
        """(proto, host IP, port) of every port handed out and not released."""
        with self._lock:
            return {(proto, ip, port) for (proto, port), ips in self._taken.items() for ip in ips}

    def holding(self) -> set[tuple[str, str, int]]:
        """(proto, host IP, port) of the ports kept reserved by an open socket."""
        with self._lock:
            return set(self._held)

    def _take(self, host_ip: str, proto: str, port: int, held: Held | None) -> None:
        self._taken.setdefault((proto, port), set()).add(host_ip)
        if held is not None:
            self._held[(proto, host_ip, port)] = held

    def _overlaps(self, host_ip: str, proto: str, port: int) -> bool:
        ips = self._taken.get((proto, port))
        if not ips:
            return False
        return host_ip in ips or host_ip in _WILDCARDS or any(ip in _WILDCARDS for ip in ips)

    def _pick(self, binding: PortBinding) -> tuple[int, Held | None]:
        low, high = self._range
        if binding.host_port:
            low, high = binding.host_port, binding.host_port_end
        size = high - low + 1
        first = self._rng.randrange(size)
        for i in range(size):
            port = low + (first + i) % size
            if self._overlaps(binding.host_ip, binding.proto, port):
                continue
            try:
                return port, self._reserve(binding.host_ip, port, binding.proto)
            except OSError:
                continue
        if binding.host_port:
            raise errors.Conflict(
                f"Bind for {binding.listen_ip}:{binding.host_port_text()} failed: "
                "port is already allocated")
        raise errors.Conflict("all ports are allocated")
