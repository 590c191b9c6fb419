"""The embedded DNS server's upstream side: the host's resolvers and asking them.

``forward`` sends a client's query to each upstream in turn (UDP, or TCP for TCP clients)
under a random id, and accepts only a reply that carries that id and the same question; the
reply goes back under the client's id. Each upstream gets ``timeout`` seconds.
"""
from __future__ import annotations

import ipaddress
import random
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from dockyard.network import dnscodec as codec
from dockyard.network.dnscodec import DnsFormatError, Message

Address = tuple[str, int]


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order."""
    servers = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                servers.append(str(ipaddress.ip_address(fields[1].split("%", 1)[0])))
            except ValueError:
                continue
    return servers


def host_upstreams(path: Path = Path("/etc/resolv.conf"),
                   systemd: Path = Path("/run/systemd/resolve/resolv.conf")) -> list[Address]:
    """The host's resolvers: its non-loopback nameservers; behind systemd-resolved (only
    127.0.0.53) the real ones from ``systemd``; else the loopback ones, which this server can
    reach since it runs in the host's network namespace."""
    def read(p: Path) -> list[str]:
        try:
            return parse_resolv_conf(p.read_text())
        except OSError:
            return []
    servers = read(path)
    remote = [s for s in servers if not ipaddress.ip_address(s).is_loopback]
    if not remote and servers:
        remote = [s for s in read(systemd) if not ipaddress.ip_address(s).is_loopback]
    return [(s, 53) for s in (remote or servers)]


def forward(upstreams: Sequence[Address], wire: bytes, tcp: bool,
            timeout: float) -> bytes | None:
    """The first upstream reply to the query ``wire``, under its id; None if none answers."""
    query = codec.parse(wire)
    for server in upstreams:
        ident = random.getrandbits(16)
        try:
            reply = exchange(server, struct.pack("!H", ident) + wire[2:], tcp, timeout)
            if reply is not None and _matches(reply, ident, query):
                return wire[:2] + reply[2:]
        except (OSError, DnsFormatError):
            continue
    return None


def _matches(reply: bytes, ident: int, query: Message) -> bool:
    parsed = codec.parse(reply)
    return (parsed.is_response and parsed.id == ident
            and [(codec.name_key(q.name), q.qtype, q.qclass) for q in parsed.questions]
            == [(codec.name_key(q.name), q.qtype, q.qclass) for q in query.questions])


def exchange(upstream: Address, wire: bytes, tcp: bool, timeout: float) -> bytes | None:
    """One query to one server: the reply carrying the query's id, None on timeout."""
    if tcp:
        with socket.create_connection(upstream, timeout=timeout) as conn:
            conn.sendall(struct.pack("!H", len(wire)) + wire)
            return read_tcp_message(conn)
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(upstream)
        sock.send(wire)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            reply = sock.recv(65535)
            if reply[:2] == wire[:2]:  # skip stray datagrams: a reply carries our id
                return reply
    return None


def read_tcp_message(conn: socket.socket) -> bytes | None:
    head = _read_exact(conn, 2)
    if head is None:
        return None
    return _read_exact(conn, struct.unpack("!H", head)[0])


def _read_exact(conn: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)

