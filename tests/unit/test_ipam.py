"""IPv4 address management: subnet choice, overlap checks, allocations kept in SQLite."""
from __future__ import annotations

import threading
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dockyard.errors import Forbidden, InvalidArgument, Unavailable
from dockyard.metadata.db import Database
from dockyard.network import ipam
from dockyard.network.ipam import GATEWAY, Ipam, Pool

NET = IPv4Network("172.31.5.0/29")  # hosts .1 - .6


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "dockyard.db")


def test_pools_are_cut_into_blocks() -> None:
    blocks = list(Pool("10.210.0.0/22", 24).blocks())
    assert [str(b) for b in blocks] == ["10.210.0.0/24", "10.210.1.0/24", "10.210.2.0/24",
                                        "10.210.3.0/24"]
    assert [str(b) for b in Pool("10.0.0.0/24", 16).blocks()] == ["10.0.0.0/24"]


def test_choose_subnet_prefers_the_default_then_skips_what_is_taken() -> None:
    pools = [Pool("172.31.0.0/22", 24)]
    assert str(ipam.choose_subnet([], pools, "172.30.0.0/16")) == "172.30.0.0/16"
    taken = [IPv4Network("172.30.5.0/24"), IPv4Network("172.31.0.0/24"),
             IPv4Network("172.31.1.128/25")]
    assert str(ipam.choose_subnet(taken, pools, "172.30.0.0/16")) == "172.31.2.0/24"


def test_choose_subnet_fails_with_dockers_text_when_exhausted() -> None:
    with pytest.raises(Unavailable, match="non-overlapping IPv4 address pool"):
        ipam.choose_subnet([IPv4Network("172.31.0.0/16")], [Pool("172.31.0.0/23", 24)])


def test_the_default_pools_avoid_this_kind_of_host() -> None:
    """Docker's 172.17/16 and the usual LAN and test ranges are not in the defaults."""
    defaults = [IPv4Network(ipam.DEFAULT_BRIDGE_SUBNET)]
    defaults += [IPv4Network(p.base) for p in ipam.DEFAULT_POOLS]
    for busy in ("172.17.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "10.0.0.0/16",
                 "192.0.2.0/24", "127.0.0.0/8"):
        assert not ipam.overlaps(IPv4Network(busy), defaults), busy
    assert all(n.is_private for n in defaults)


def test_an_overlapping_subnet_is_refused_with_dockers_text() -> None:
    with pytest.raises(Forbidden, match="^Pool overlaps with other one on this address space$"):
        ipam.check_subnet(IPv4Network("10.1.0.0/16"), [IPv4Network("10.1.2.0/24")])
    ipam.check_subnet(IPv4Network("10.2.0.0/16"), [IPv4Network("10.1.2.0/24")])


@pytest.mark.parametrize("text", ["10.1.0.0", "10.1.0.0/33", "banana/24", "10.1.0.0/31"])
def test_bad_subnets(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ipam.parse_subnet(text)


def test_gateway_must_be_a_host_of_the_subnet() -> None:
    ipam.check_gateway(NET, IPv4Address("172.31.5.6"))
    for bad in ("172.31.5.0", "172.31.5.7", "172.31.6.1"):
        with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
            ipam.check_gateway(NET, IPv4Address(bad))
    assert str(ipam.default_gateway(NET)) == "172.31.5.1"


def test_mac_is_derived_from_the_address() -> None:
    assert ipam.mac_for(IPv4Address("172.31.0.2")) == "02:42:ac:1f:00:02"


def test_addresses_are_handed_out_lowest_first_and_never_twice(db: Database) -> None:
    a = Ipam(db)
    a.reserve("n1", NET, GATEWAY, IPv4Address("172.31.5.1"))
    got = [a.reserve("n1", NET, f"c{i}") for i in range(5)]
    assert [str(x) for x in got] == [f"172.31.5.{i}" for i in range(2, 7)]
    with pytest.raises(Unavailable, match="No available addresses on this pool"):
        a.reserve("n1", NET, "c5")
    a.release("n1", "172.31.5.4")
    assert str(a.reserve("n1", NET, "c6")) == "172.31.5.4"


def test_networks_have_separate_address_spaces(db: Database) -> None:
    a = Ipam(db)
    assert a.reserve("n1", NET, "c1") == a.reserve("n2", NET, "c1")


def test_a_requested_address(db: Database) -> None:
    a = Ipam(db)
    assert str(a.reserve("n1", NET, "c1", IPv4Address("172.31.5.5"))) == "172.31.5.5"
    with pytest.raises(Forbidden, match="^Address already in use$"):
        a.reserve("n1", NET, "c2", IPv4Address("172.31.5.5"))
    with pytest.raises(InvalidArgument, match="no configured subnet"):
        a.reserve("n1", NET, "c2", IPv4Address("10.0.0.5"))
    with pytest.raises(InvalidArgument, match="out of range"):
        a.reserve("n1", NET, "c2", IPv4Address("172.31.5.7"))
    assert str(a.reserve("n1", NET, "c2")) == "172.31.5.1"  # lowest free (no gateway here)


def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    first = Database(tmp_path / "d.db")
    Ipam(first).reserve("n1", NET, GATEWAY, IPv4Address("172.31.5.1"))
    Ipam(first).reserve("n1", NET, "c1")
    first.close()
    again = Ipam(Database(tmp_path / "d.db"))
    assert again.allocated("n1") == {"172.31.5.1": GATEWAY, "172.31.5.2": "c1"}
    assert str(again.reserve("n1", NET, "c2")) == "172.31.5.3"


def test_release_by_owner_and_network(db: Database) -> None:
    a = Ipam(db)
    a.reserve("n1", NET, "c1")
    a.reserve("n1", NET, "c2")
    a.release_owner("n1", "c1")
    assert a.allocated("n1") == {"172.31.5.2": "c2"}
    a.release_network("n1")
    assert a.allocated("n1") == {}


def test_concurrent_reservations_get_distinct_addresses(db: Database) -> None:
    a = Ipam(db)
    net = IPv4Network("172.31.8.0/24")
    got: list[IPv4Address] = []
    lock = threading.Lock()

    def grab(i: int) -> None:
        for j in range(10):
            address = a.reserve("n1", net, f"c{i}-{j}")
            with lock:
                got.append(address)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 80


def test_a_subnet_with_host_bits_is_refused_like_docker() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid subnet 10.1.0.5/24: it should be "
                                              r"10.1.0.0/24$"):
        ipam.parse_subnet("10.1.0.5/24")
    assert str(ipam.parse_subnet("10.1.0.0/24")) == "10.1.0.0/24"
