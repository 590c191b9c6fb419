"""The routing mesh end to end: two daemons on this host in one swarm (own VXLAN data ports,
own publish addresses 127.0.0.1 and 127.0.0.2), a service publishing a port in ingress mode
answers on both nodes' addresses and balances over both replicas. Real docker CLI."""
from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_swarm import eventually, free_port, ok
from tests.e2e.swarmfixtures import manager_and_workers
from tests.e2e.test_swarm_overlay import overlay_namespaces

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crun") or not shutil.which("etcd"),
    reason="needs root, crun and etcd")

ADDRS = ("127.0.0.1", "127.0.0.2")
SERVE = "mkdir -p /w && hostname > /w/index.html && httpd -f -p 80 -h /w"


@pytest.fixture(scope="module")
def swarm() -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    with manager_and_workers("dytest-mesh-", ADDRS) as (manager, worker):
        yield manager, worker


def get(addr: str, port: int) -> str | None:
    """One HTTP request; the body, "" when the connection was closed, None when refused."""
    try:
        with socket.create_connection((addr, port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except ConnectionRefusedError:
        return None
    except OSError:  # reset
        return ""
    return data.partition(b"\r\n\r\n")[2].decode().strip()


def test_ingress_network_and_a_balanced_published_port(
        swarm: tuple[DaemonProcess, DaemonProcess]) -> None:
    manager, worker = swarm
    for d in (manager, worker):
        [ingress] = json.loads(ok(d, "network", "inspect", "ingress"))
        assert (ingress["Scope"], ingress["Driver"], ingress["Ingress"]) == \
            ("swarm", "overlay", True)
        assert ingress["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24",
                                              "Gateway": "10.0.0.1"}]
    assert "ingress" in ok(worker, "network", "ls", "--format", "{{.Name}}").split()
    port = free_port()
    ok(manager, "service", "create", "-d", "--name", "mesh", "--replicas", "2",
       "--publish", f"{port}:80", "--stop-grace-period", "1s", "bb:latest", "sh", "-c", SERVE)
    eventually(lambda: ok(manager, "service", "ls", "--format", "{{.Replicas}} {{.Ports}}")
               .strip() == f"2/2 *:{port}->80/tcp", timeout=60)
    [service] = json.loads(ok(manager, "service", "inspect", "mesh"))
    assert service["Endpoint"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80,
                                             "PublishedPort": port, "PublishMode": "ingress"}]
    [vip] = service["Endpoint"]["VirtualIPs"]
    assert vip["NetworkID"] == ingress["Id"] and vip["Addr"].startswith("10.0.0.")
    tasks = json.loads(ok(manager, "inspect", "--type", "task",
                          *ok(manager, "service", "ps", "-q", "mesh").split()))
    for task in tasks:
        [attachment] = task["NetworksAttachments"]
        assert attachment["Network"]["ID"] == ingress["Id"]
        assert attachment["Addresses"][0].startswith("10.0.0.")
    hostnames = set()
    for d in (manager, worker):
        for cid in ok(d, "ps", "-q").split():
            hostnames.add(ok(d, "exec", cid, "hostname").strip())
    assert len(hostnames) == 2

    def balanced() -> bool:
        """both replicas answer through each node's published port"""
        return all({get(addr, port) for _ in range(4)} == hostnames for addr in ADDRS)
    eventually(balanced, timeout=30)

    clash = manager.docker("service", "create", "-d", "--name", "clash", "--publish",
                           f"{port}:81", "bb:latest", "sleep", "1d")
    assert clash.returncode != 0
    assert f"port '{port}' is already in use by service 'mesh' ({service['ID']}) as an " \
           "ingress port" in clash.stderr.decode()
    busy = manager.docker("network", "rm", "ingress", input=b"y\n")
    assert busy.returncode != 0
    assert f"ingress network cannot be removed because service {service['ID']} depends on " \
           "it" in busy.stderr.decode()

    ok(manager, "service", "scale", "-d", "mesh=0")
    eventually(lambda: all(get(addr, port) in ("", None) for addr in ADDRS), timeout=30)
    ok(manager, "service", "rm", "mesh")
    eventually(lambda: all(get(addr, port) is None for addr in ADDRS)
               and not overlay_namespaces(manager) and not overlay_namespaces(worker))
    assert not ok(worker, "ps", "-aq").split() and not ok(manager, "ps", "-aq").split()


def test_a_dynamic_published_port(swarm: tuple[DaemonProcess, DaemonProcess]) -> None:
    """``--publish 80``: the swarm picks the port (30000 and up); a node without the task
    answers on it too."""
    manager, worker = swarm
    ok(manager, "service", "create", "-d", "--name", "dyn", "--publish", "target=80",
       "--constraint", "node.role==manager", "--stop-grace-period", "1s", "bb:latest",
       "sh", "-c", SERVE)
    try:
        eventually(lambda: ok(manager, "service", "ls", "--format", "{{.Replicas}}").strip()
                   == "1/1", timeout=60)
        [service] = json.loads(ok(manager, "service", "inspect", "dyn"))
        [published] = service["Endpoint"]["Ports"]
        assert published["PublishMode"] == "ingress" and published["TargetPort"] == 80
        port = published["PublishedPort"]
        assert 30000 <= port <= 32767
        [cid] = ok(manager, "ps", "-q").split()
        host = ok(manager, "exec", cid, "hostname").strip()
        assert not ok(worker, "ps", "-q").split()
        eventually(lambda: get(ADDRS[1], port) == host == get(ADDRS[0], port))
    finally:
        ok(manager, "service", "rm", "dyn")
    eventually(lambda: not overlay_namespaces(manager) and not overlay_namespaces(worker)
               and not ok(manager, "ps", "-aq").split())


def test_mesh_listener_balances_tcp_and_udp() -> None:
    """``network.mesh`` alone, its upstreams made in this daemon-less test's own namespace:
    round-robin per connection and per UDP flow, no backend closes at once, a busy port is
    skipped (and bound once free), removal closes the listener."""
    import threading
    from dockyard.network.mesh import Mesh, MeshListener

    port = free_port()
    servers: list[socket.socket] = []
    stop = threading.Event()

    def serve_tcp(sock: socket.socket, name: bytes) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(name)

    def serve_udp(sock: socket.socket, name: bytes) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(100)
            except OSError:
                continue
            sock.sendto(name, peer)

    backends = ("127.0.0.3", "127.0.0.4")
    for ip in backends:
        for kind, fn in ((socket.SOCK_STREAM, serve_tcp), (socket.SOCK_DGRAM, serve_udp)):
            s = socket.socket(socket.AF_INET, kind)
            s.bind((ip, 9999))
            if kind == socket.SOCK_STREAM:
                s.listen()
            servers.append(s)
            threading.Thread(target=fn, args=(s, ip.encode()), daemon=True).start()
    blocker = socket.socket()
    blocker.bind(("127.0.0.5", port + 1))
    mesh = Mesh("127.0.0.5")
    here = Path("/proc/self/ns/net")
    try:
        mesh.sync(here, [MeshListener("tcp", port, 9999, backends),
                         MeshListener("udp", port, 9999, backends),
                         MeshListener("tcp", port + 1, 9999, backends)])
        assert mesh.ports() == [("tcp", port), ("udp", port)], "the busy port is skipped"

        def tcp() -> bytes:
            with socket.create_connection(("127.0.0.5", port), timeout=5) as c:
                return c.recv(100)
        assert sorted(tcp() for _ in range(4)) == [b"127.0.0.3"] * 2 + [b"127.0.0.4"] * 2
        answers = []
        for _ in range(2):  # a new client port per flow
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(5)
                u.sendto(b"hi", ("127.0.0.5", port))
                answers.append(u.recv(100))
        assert sorted(answers) == [b"127.0.0.3", b"127.0.0.4"]
        blocker.close()
        mesh.sync(here, [MeshListener("tcp", port, 9999, ()),
                         MeshListener("tcp", port + 1, 9999, backends[:1])])
        assert mesh.ports() == [("tcp", port), ("tcp", port + 1)]
        assert tcp() == b"", "no running task: accepted and closed"
        with socket.create_connection(("127.0.0.5", port + 1), timeout=5) as c:
            assert c.recv(100) == b"127.0.0.3"
        mesh.sync(None, [])
        assert mesh.ports() == []
        with pytest.raises(ConnectionRefusedError):
            tcp()
    finally:
        stop.set()
        mesh.close()
        blocker.close()
        for s in servers:
            s.close()
