"""Bridge networking on the real kernel (root): two networks, three network namespaces.

Everything is named with this run's prefix (links ``dy<hex>…``, chains ``DOCKYARD-<hex>…``)
and removed in the fixture's finalizer even when a test fails; the finalizer then checks that
no link, namespace file, chain or rule is left. Traffic only flows between namespaces, bridges
and the host's own addresses. ``net.ipv4.ip_forward`` is switched on only inside the tests
that route between bridges and restored to the value it had.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.host import links as hostlinks
from dockyard.host import netns
from dockyard.host.firewall import FakeIptables, Firewall
from dockyard.metadata.db import Database
from dockyard.network.bridge import BridgeConfig, NetworkManager
from dockyard.network.ipam import IpamConfig, Pool
from dockyard.network.store import Endpoint, PortMapping

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("busybox"),
    reason="needs root, iptables and busybox")


@dataclass
class Env:
    mgr: NetworkManager
    short: str
    link_prefix: str
    chain_prefix: str
    nsdir: Path
    eps: dict[str, Endpoint]

    def ns(self, name: str) -> Path:
        return self.nsdir / name


def _leftovers(link_prefix: str, chain_prefix: str, nsdir: Path) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    found = [line.split(":")[1].strip() for line in links.splitlines()
             if line.split(":")[1].strip().split("@")[0].startswith(link_prefix)]
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True,
                               text=True, check=False).stdout
        found += [f"{table}: {r}" for r in rules.splitlines() if chain_prefix in r]
    found += [str(p) for p in nsdir.glob("*")] if nsdir.exists() else []
    return found


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    short = secrets.token_hex(3)
    link_prefix, chain_prefix = f"dy{short}", f"DOCKYARD-{short}"
    base = tmp_path_factory.mktemp("bridge-net")
    config = BridgeConfig(default_bridge=f"{link_prefix}0", link_prefix=link_prefix,
                          chain_prefix=chain_prefix, ip_forward=False,
                          ipam=IpamConfig(default_bridge=None,
                                          pools=(Pool("10.213.0.0/16", 24),)))
    db = Database(base / "dockyard.db")
    mgr = NetworkManager.system(db, config)
    nsdir = base / "netns"
    try:
        mgr.ensure_defaults()
        mgr.restore()
        mgr.create(f"{short}-a")
        mgr.create(f"{short}-b")
        eps: dict[str, Endpoint] = {}
        for name, net in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            netns.create(nsdir / name)
            eps[name] = mgr.connect(f"{short}-{net}", name * 32, nsdir / name)
        yield Env(mgr, short, link_prefix, chain_prefix, nsdir, eps)
    finally:
        with contextlib.suppress(Exception):
            mgr.teardown_all()
        for path in nsdir.glob("*") if nsdir.exists() else []:
            netns.delete(path)
        mgr.firewall.teardown()
        mgr.close()
        db.close()
        left = _leftovers(link_prefix, chain_prefix, nsdir)
        assert left == [], f"left behind: {left}"


@contextlib.contextmanager
def ip_forward() -> Iterator[None]:
    before = hostlinks.read_sysctl("net/ipv4/ip_forward")
    hostlinks.write_sysctl("net/ipv4/ip_forward", "1")
    try:
        yield
    finally:
        hostlinks.write_sysctl("net/ipv4/ip_forward", before)


def ping(env: Env, ns: str, address: str) -> bool:
    done = netns.run_in(env.ns(ns), lambda: subprocess.run(
        ["busybox", "ping", "-c", "1", "-W", "1", address], capture_output=True, check=False))
    return done.returncode == 0


class Listener:
    """A TCP server socket (made inside a namespace or on the host) that answers one line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, peer = self.sock.accept()
                with conn:
                    self.peers.append(peer[0])
                    conn.sendall(b"hello\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def listen_in(env: Env, ns: str | None, address: str = "0.0.0.0", port: int = 0) -> Listener:
    def make() -> socket.socket:
        return socket.create_server((address, port))
    return Listener(make() if ns is None else netns.run_in(env.ns(ns), make))


def talk(env: Env, ns: str | None, address: str, port: int, timeout: float = 1.0) -> bytes:
    """Connect (from a namespace or the host) and read the greeting; b"" if it failed."""
    def dial() -> bytes:
        try:
            with socket.create_connection((address, port), timeout=timeout) as conn:
                return conn.recv(16)
        except OSError:
            return b""
    return dial() if ns is None else netns.run_in(env.ns(ns), dial)


def test_endpoints_are_configured(env: Env) -> None:
    a1, a2, b1 = env.eps["a1"], env.eps["a2"], env.eps["b1"]
    assert a1.gateway == a2.gateway != b1.gateway
    assert a1.ip != a2.ip
    out = netns.run_in(env.ns("a1"), lambda: subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", "eth0"], capture_output=True, text=True, check=False)).stdout
    assert f"{a1.ip}/{a1.prefixlen}" in out
    route = netns.run_in(env.ns("a1"), lambda: subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, check=False)).stdout
    assert f"default via {a1.gateway} dev eth0" in route
    mac = Path(f"/sys/class/net/{a1.veth_host}/brport/hairpin_mode").read_text().strip()
    assert mac == "1"


def test_members_of_a_network_reach_each_other(env: Env) -> None:
    a1, a2 = env.eps["a1"], env.eps["a2"]
    assert ping(env, "a1", a2.ip) and ping(env, "a2", a1.ip)
    server = listen_in(env, "a2")
    try:
        assert talk(env, "a1", a2.ip, server.port) == b"hello\n"
        assert server.peers == [a1.ip]
    finally:
        server.close()


def test_the_gateway_is_the_host(env: Env) -> None:
    a1 = env.eps["a1"]
    assert ping(env, "a1", a1.gateway)
    server = listen_in(env, None, a1.gateway)
    try:
        assert talk(env, "a1", a1.gateway, server.port) == b"hello\n"
    finally:
        server.close()


def test_networks_are_isolated_from_each_other(env: Env) -> None:
    b1 = env.eps["b1"]
    server = listen_in(env, "b1")
    isolation2 = f"{env.chain_prefix}-ISOLATION-2"
    try:
        with ip_forward():
            assert talk(env, "b1", b1.gateway, 22, timeout=0.5) == b""  # sanity: nothing there
            assert talk(env, "a1", b1.ip, server.port) == b""
            assert not ping(env, "a1", b1.ip)
            # control: without the isolation rules the same connection is routed
            subprocess.run(["iptables", "-w", "-F", isolation2], check=True)
            try:
                assert talk(env, "a1", b1.ip, server.port) == b"hello\n"
            finally:
                env.mgr.restore()
            assert talk(env, "a1", b1.ip, server.port) == b""
    finally:
        server.close()


def test_masquerade_and_chains_are_in_place(env: Env) -> None:
    rules = env.mgr.firewall.rules()
    for short in ("a", "b"):
        net = env.mgr.get(f"{env.short}-{short}")
        assert (f"nat -A {env.chain_prefix}-POSTROUTING -s {net.subnet} ! -o {net.bridge} "
                f"-j MASQUERADE") in rules
    assert f"filter -A FORWARD -j {env.chain_prefix}-ISOLATION" in rules
    assert f"nat -A POSTROUTING -j {env.chain_prefix}-POSTROUTING" in rules


def test_the_recording_fake_matches_real_iptables(env: Env) -> None:
    """Same operations on FakeIptables give what the kernel's iptables -S prints."""
    fake = Firewall(env.chain_prefix, FakeIptables())
    twin = NetworkManager(env.mgr.store.db, env.mgr.config, env.mgr.links, fake)
    twin.restore()
    assert fake.rules() == env.mgr.firewall.rules()


def test_published_port_from_localhost_other_containers_and_itself(env: Env) -> None:
    a1, a2 = env.eps["a1"], env.eps["a2"]
    server = listen_in(env, "a2", port=8000 + secrets.randbelow(1000))
    with socket.create_server(("127.0.0.1", 0)) as probe:
        host_port = probe.getsockname()[1]
    net = f"{env.short}-a"
    env.mgr.publish(net, a2.container_id, [PortMapping(server.port, host_port)])
    try:
        with ip_forward():
            assert talk(env, None, "127.0.0.1", host_port) == b"hello\n"
            assert talk(env, "a1", a1.gateway, host_port) == b"hello\n"
            assert talk(env, "a2", a2.gateway, host_port) == b"hello\n"  # hairpin
    finally:
        server.close()
        assert env.mgr.unpublish(net, a2.container_id).ports == ()
        assert not any(f"--dport {host_port}" in r for r in env.mgr.firewall.rules())


def test_restore_recreates_a_vanished_bridge(env: Env) -> None:
    net = env.mgr.create(f"{env.short}-c")
    try:
        assert isinstance(env.mgr.links, hostlinks.Links)
        env.mgr.links.delete_link(net.bridge)
        assert not env.mgr.links.exists(net.bridge)
        env.mgr.restore()
        assert env.mgr.links.exists(net.bridge)
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", net.bridge],
                             capture_output=True, text=True, check=False).stdout
        assert f"{net.gateway}/{net.prefixlen}" in out
    finally:
        env.mgr.remove(net.id)
    assert not env.mgr.links.exists(net.bridge)


def test_overlap_with_a_live_network_is_refused(env: Env) -> None:
    from dockyard.errors import Forbidden
    subnet = env.mgr.get(f"{env.short}-a").subnet
    with pytest.raises(Forbidden, match="Pool overlaps"):
        env.mgr.create(f"{env.short}-d", subnet=subnet)


def test_connect_disconnect_timing(env: Env) -> None:
    net = f"{env.short}-a"
    connect: list[float] = []
    disconnect: list[float] = []
    for i in range(10):
        path = env.ns(f"t{i}")
        netns.create(path)
        cid = f"{i:064x}"
        start = time.perf_counter()
        env.mgr.connect(net, cid, path)
        middle = time.perf_counter()
        env.mgr.disconnect(net, cid, delete_link=False)
        netns.delete(path)
        end = time.perf_counter()
        connect.append(middle - start)
        disconnect.append(end - middle)
    c, d = statistics.median(connect) * 1e3, statistics.median(disconnect) * 1e3
    print(f"connect {c:.2f} ms, disconnect+netns delete {d:.2f} ms (medians of 10)")
    assert c < 50 and d < 50
