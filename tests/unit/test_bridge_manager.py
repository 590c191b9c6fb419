"""NetworkManager against a fake LinkOps and the recording iptables (no root)."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from dockyard.errors import Conflict, Forbidden, Internal, InvalidArgument, NotFound
from dockyard.host.firewall import FakeIptables, Firewall
from dockyard.host.links import BridgeSpec, Route, VethSpec
from dockyard.metadata.db import Database
from dockyard.network.bridge import BridgeConfig, NetworkManager
from dockyard.network.store import PortMapping

CID1, CID2, CID3 = "a" * 64, "b" * 64, "c" * 64


@dataclass
class FakeLinks:
    routes: list[Route] = field(default_factory=lambda: [
        Route(IPv4Network("192.0.2.0/24"), "eth0"), Route(IPv4Network("172.31.0.0/24"), "wg0")])
    bridges: dict[str, BridgeSpec] = field(default_factory=dict)
    veths: dict[str, VethSpec] = field(default_factory=dict)
    fail_attach: bool = False

    def ensure_bridge(self, spec: BridgeSpec) -> None:
        self.bridges[spec.name] = spec

    def delete_link(self, name: str) -> bool:
        return (self.bridges.pop(name, None) or self.veths.pop(name, None)) is not None

    def attach_veth(self, spec: VethSpec) -> str:
        if self.fail_attach:
            raise Internal("boom")
        self.veths[spec.host_name] = spec
        return spec.ifname

    def close(self) -> None:
        pass

    def ipv4_routes(self) -> list[Route]:
        ours = [Route(IPv4Network(f"{b.address}/{b.prefixlen}", strict=False), b.name)
                for b in self.bridges.values()]
        return self.routes + ours


CONFIG = BridgeConfig(default_bridge="dyt0", link_prefix="dyt", chain_prefix="DOCKYARD-t",
                      ip_forward=False)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "dockyard.db")


@pytest.fixture
def links() -> FakeLinks:
    return FakeLinks()


@pytest.fixture
def iptables() -> FakeIptables:
    return FakeIptables()


@pytest.fixture
def mgr(db: Database, links: FakeLinks, iptables: FakeIptables) -> NetworkManager:
    m = NetworkManager(db, CONFIG, links, Firewall(CONFIG.chain_prefix, iptables))
    m.ensure_defaults()
    return m


def test_predefined_networks(mgr: NetworkManager, links: FakeLinks) -> None:
    nets = {n.name: n for n in mgr.list()}
    assert {k: v.driver for k, v in nets.items()} == {"bridge": "bridge", "host": "host",
                                                      "none": "null"}
    bridge = nets["bridge"]
    assert (bridge.subnet, bridge.gateway, bridge.bridge) == ("172.30.0.0/16", "172.30.0.1",
                                                              "dyt0")
    assert bridge.options["com.docker.network.bridge.default_bridge"] == "true"
    assert links.bridges["dyt0"] == BridgeSpec("dyt0", "172.30.0.1", 16, 1500)
    assert all(len(n.id) == 64 for n in nets.values())
    mgr.ensure_defaults()
    assert len(mgr.list()) == 3


def test_default_bridge_falls_back_to_the_pools_on_overlap(db: Database,
                                                            links: FakeLinks) -> None:
    links.routes.append(Route(IPv4Network("172.30.0.0/16"), "docker_gwbridge"))
    m = NetworkManager(db, CONFIG, links, Firewall(CONFIG.chain_prefix, FakeIptables()))
    m.ensure_defaults()
    assert m.get("bridge").subnet == "172.31.1.0/24"  # 172.31.0.0/24 is routed via wg0


def test_user_networks_get_the_next_free_block(mgr: NetworkManager,
                                               iptables: FakeIptables) -> None:
    a = mgr.create("a", labels={"x": "1"})
    b = mgr.create("b")
    assert (a.subnet, a.gateway) == ("172.31.1.0/24", "172.31.1.1")
    assert b.subnet == "172.31.2.0/24"
    assert a.bridge == f"dyt-{a.id}"[:15] and len(a.bridge) == 15
    assert a.labels == {"x": "1"} and mgr.get("a") == a
    rules = Firewall(CONFIG.chain_prefix, iptables).rules()
    assert f"nat -A DOCKYARD-t-POSTROUTING -s 172.31.1.0/24 ! -o {a.bridge} -j MASQUERADE" in rules


def test_explicit_subnet_and_gateway(mgr: NetworkManager) -> None:
    net = mgr.create("c", subnet="10.77.0.0/16", gateway="10.77.0.254")
    assert (net.subnet, net.gateway) == ("10.77.0.0/16", "10.77.0.254")
    with pytest.raises(Forbidden, match="^Pool overlaps with other one on this address space$"):
        mgr.create("d", subnet="10.77.5.0/24")
    with pytest.raises(Forbidden, match="^Pool overlaps"):
        mgr.create("e", subnet="192.0.2.128/25")  # the host's own LAN
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        mgr.create("f", subnet="10.78.0.0/16", gateway="10.79.0.1")
    assert [n.name for n in mgr.list()] == ["bridge", "host", "none", "c"]


def test_create_refusals(mgr: NetworkManager) -> None:
    mgr.create("a")
    with pytest.raises(Conflict, match="^network with name a already exists$"):
        mgr.create("a")
    with pytest.raises(Conflict, match="^network with name bridge already exists$"):
        mgr.create("bridge")
    with pytest.raises(Forbidden, match='only one instance of "host" network is allowed'):
        mgr.create("h", driver="host")
    with pytest.raises(NotFound, match='plugin "overlay" not found'):
        mgr.create("o", driver="overlay")


def test_lookup_by_name_id_and_prefix(mgr: NetworkManager) -> None:
    net = mgr.create("a")
    assert mgr.get(net.id) == mgr.get(net.id[:5]) == mgr.get("a") == net
    with pytest.raises(NotFound, match="^network nope not found$"):
        mgr.get("nope")


def test_remove(mgr: NetworkManager, links: FakeLinks, iptables: FakeIptables) -> None:
    with pytest.raises(Forbidden, match="^bridge is a pre-defined network and cannot be removed$"):
        mgr.remove("bridge")
    net = mgr.create("a")
    mgr.connect("a", CID1, "/run/netns/x")
    with pytest.raises(Forbidden, match=f"network a id {net.id} has active endpoints"):
        mgr.remove("a")
    mgr.disconnect("a", CID1)
    mgr.remove(net.id[:12])
    assert net.bridge not in links.bridges
    assert not any(net.bridge in r for r in Firewall(CONFIG.chain_prefix, iptables).rules())
    assert mgr.ipam.allocated(net.id) == {}
    assert mgr.create("again").subnet == net.subnet  # its block is free again


def test_connect_allocates_address_mac_and_names(mgr: NetworkManager, links: FakeLinks) -> None:
    mgr.create("a")
    ep = mgr.connect("a", CID1, "/run/netns/c1", aliases=["web"])
    assert (ep.ip, ep.prefixlen, ep.gateway, ep.ifname) == ("172.31.1.2", 24, "172.31.1.1",
                                                            "eth0")
    assert ep.mac == "02:42:ac:1f:01:02" and ep.aliases == ("web",)
    assert ep.veth_host.startswith("dyt") and len(ep.veth_host) == 15
    spec = links.veths[ep.veth_host]
    assert (spec.bridge, spec.address, spec.gateway, spec.netns_path) == (
        mgr.get("a").bridge, "172.31.1.2", "172.31.1.1", Path("/run/netns/c1"))
    assert mgr.connect("a", CID2, "/run/netns/c2").ip == "172.31.1.3"
    second = mgr.connect("bridge", CID1, "/run/netns/c1")
    assert (second.ip, second.ifname) == ("172.30.0.2", "eth1")
    assert [e.network_id for e in mgr.endpoints(CID1)] == [mgr.get("a").id, mgr.get("bridge").id]


def test_connect_refusals(mgr: NetworkManager) -> None:
    mgr.create("a")
    mgr.connect("a", CID1, "/run/netns/c1")
    with pytest.raises(Forbidden, match="already exists in network a"):
        mgr.connect("a", CID1, "/run/netns/c1")
    with pytest.raises(InvalidArgument, match="user defined networks only"):
        mgr.connect("bridge", CID2, "/run/netns/c2", ip="172.30.0.9")
    with pytest.raises(Forbidden, match="host network"):
        mgr.connect("host", CID2, "/run/netns/c2")
    with pytest.raises(Forbidden, match="^Address already in use$"):
        mgr.connect("a", CID2, "/run/netns/c2", ip="172.31.1.2")
    assert mgr.connect("a", CID2, "/run/netns/c2", ip="172.31.1.200").ip == "172.31.1.200"


def test_a_restarted_container_keeps_its_address(mgr: NetworkManager) -> None:
    mgr.create("a")
    first = mgr.connect("a", CID1, "/proc/100/ns/net")
    mgr.connect("a", CID2, "/proc/200/ns/net")
    again = mgr.connect("a", CID1, "/proc/300/ns/net")
    assert again.ip == first.ip and again.netns_path == "/proc/300/ns/net"
    assert len(mgr.endpoints(CID1)) == 1


def test_disconnect_releases_the_address(mgr: NetworkManager, links: FakeLinks) -> None:
    mgr.create("a")
    ep = mgr.connect("a", CID1, "/run/netns/c1")
    mgr.disconnect("a", CID1)
    assert ep.veth_host not in links.veths and mgr.endpoints(CID1) == []
    with pytest.raises(NotFound, match="is not connected to network a"):
        mgr.disconnect("a", CID1)
    assert mgr.connect("a", CID2, "/run/netns/c2").ip == ep.ip


def test_a_failed_attach_gives_the_address_back(mgr: NetworkManager, links: FakeLinks) -> None:
    mgr.create("a")
    links.fail_attach = True
    with pytest.raises(Internal):
        mgr.connect("a", CID1, "/run/netns/c1")
    links.fail_attach = False
    assert mgr.endpoints() == []
    assert mgr.connect("a", CID1, "/run/netns/c1").ip == "172.31.1.2"


def test_published_ports_follow_the_endpoint(mgr: NetworkManager,
                                              iptables: FakeIptables) -> None:
    mgr.create("a")
    mgr.connect("a", CID1, "/run/netns/c1")
    ep = mgr.publish("a", CID1, [PortMapping(80, 8080)])
    assert ep.ports == (PortMapping(80, 8080),) and mgr.endpoints(CID1)[0].ports == ep.ports
    fw = Firewall(CONFIG.chain_prefix, iptables)
    dnat = ("nat -A DOCKYARD-t -p tcp -m tcp --dport 8080 -j DNAT "
            "--to-destination 172.31.1.2:80")
    assert dnat in fw.rules()
    with pytest.raises(InvalidArgument):
        mgr.publish("a", CID1, [PortMapping(80, 0)])
    mgr.disconnect("a", CID1)
    assert dnat not in fw.rules()


def test_restore_recreates_what_a_reboot_lost(db: Database, mgr: NetworkManager) -> None:
    a = mgr.create("a", internal=True)
    mgr.connect("a", CID1, "/run/netns/c1")
    mgr.publish("a", CID1, [PortMapping(80, 8080)])
    links, iptables = FakeLinks(), FakeIptables()  # the kernel after a reboot
    again = NetworkManager(db, CONFIG, links, Firewall(CONFIG.chain_prefix, iptables))
    again.restore()
    assert set(links.bridges) == {"dyt0", a.bridge}
    rules = Firewall(CONFIG.chain_prefix, iptables).rules()
    assert f"filter -A DOCKYARD-t-ISOLATION ! -i {a.bridge} -o {a.bridge} -j DROP" in rules
    assert any("--dport 8080" in r for r in rules)
    assert again.connect("a", CID2, "/run/netns/c2").ip == "172.31.1.3"


def test_internal_networks_get_no_default_route(mgr: NetworkManager, links: FakeLinks) -> None:
    mgr.create("i", internal=True)
    ep = mgr.connect("i", CID3, "/run/netns/c3")
    assert links.veths[ep.veth_host].gateway is None


def test_teardown_all(mgr: NetworkManager, links: FakeLinks, iptables: FakeIptables) -> None:
    mgr.create("a")
    mgr.connect("a", CID1, "/run/netns/c1")
    mgr.teardown_all()
    assert links.bridges == {} and links.veths == {} and iptables.empty()
