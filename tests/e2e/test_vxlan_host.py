"""``host.vxlan`` on this kernel, without daemons: two overlay namespaces on one host (two
"nodes" on different data ports over 127.0.0.1), a container namespace on each, UDP across
the tunnel; forwarding entries follow ``set_fdb``; ``destroy`` frees the data port at once."""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.host import netns, vxlan
from dockyard.host.links import VethSpec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


@pytest.fixture
def root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="dytest-vxlan-", dir="/tmp"))
    try:
        yield base
    finally:
        for path in sorted(base.iterdir()):
            if path.name.startswith("ov"):
                vxlan.destroy(path)
            else:
                netns.delete(path)
        base.rmdir()


def test_two_nodes_over_loopback(root: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    ports = [udp_port(), udp_port()]
    nodes = []
    for i, port in enumerate(ports):
        spec = vxlan.OverlaySpec(root / f"ov{i}", f"vxt{tag}{i}", 4242, port,
                                 f"10.250.9.{10 + i}", 24, f"02:42:0a:fa:09:{10 + i:02x}")
        vxlan.ensure(spec)
        vxlan.ensure(spec)  # idempotent
        assert bound(port), "the VXLAN socket listens in the host namespace"
        container = root / f"c{i}"
        netns.create(container)
        vxlan.attach(spec.path, VethSpec(f"vt{tag}{i}", "br0", container,
                                         f"02:42:0a:fa:09:{i + 1:02x}", f"10.250.9.{i + 1}",
                                         24, None, 1450))
        nodes.append((spec, container))
    for (spec, _), other in zip(nodes, reversed(ports)):
        flood = vxlan.FdbEntry(vxlan.ZERO_MAC, "127.0.0.1", other)
        stale = vxlan.FdbEntry(vxlan.ZERO_MAC, "127.0.0.2", other)
        vxlan.set_fdb(spec.path, {flood, stale}, set())
        vxlan.set_fdb(spec.path, set(), {stale})
        assert vxlan.fdb(spec.path) == {flood}

    def serve() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("10.250.9.2", 9999))
        s.settimeout(5)
        return s

    def ask() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("10.250.9.2", 9999))
            return s.recvfrom(100)[0]

    server = netns.run_in(nodes[1][1], serve)
    try:
        done: list[bytes] = []

        def echo() -> None:
            data, peer = server.recvfrom(100)
            server.sendto(b"pong:" + data, peer)
            done.append(data)
        thread = threading.Thread(target=echo)
        thread.start()
        assert netns.run_in(nodes[0][1], ask) == b"pong:ping"
        thread.join(5)
        assert done == [b"ping"]
    finally:
        server.close()
    for spec, _ in nodes:
        vxlan.destroy(spec.path)
        assert not bound(spec.port), "the data port is free at once"
        assert not spec.path.exists()
