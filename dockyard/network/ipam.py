"""IPv4 address management: subnets for new networks, addresses for endpoints.

Subnets: a network created without ``--subnet`` gets the first block of the configured pools
that overlaps neither another network nor anything routed on the host (interface addresses and
main-table routes, the default route excepted); an explicit ``--subnet`` that overlaps fails
with Docker's ``Pool overlaps with other one on this address space``. The default ``bridge``
network prefers ``default_bridge`` (172.30.0.0/16) and falls back to the pools.

Addresses live in ``ip_allocations(network_id, address, owner)``: the primary key makes an
address impossible to hand out twice, also across restarts; the gateway is stored with owner
``GATEWAY``. Allocation picks the lowest free host address inside one write transaction.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dockyard.errors import Forbidden, InvalidArgument, Unavailable
from dockyard.metadata.db import Database

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address
GATEWAY = "GATEWAY"

POOL_OVERLAP = "Pool overlaps with other one on this address space"
NO_POOL = ("could not find an available, non-overlapping IPv4 address pool among the "
           "defaults to assign to the network")


@dataclass(frozen=True)
class Pool:
    """Carve ``base`` into blocks of ``/size`` (Docker: default-address-pools base/size)."""
    base: str
    size: int

    def blocks(self) -> Iterator[IPv4Network]:
        net = IPv4Network(self.base)
        if self.size < net.prefixlen:
            yield net
        else:
            yield from net.subnets(new_prefix=self.size)


DEFAULT_BRIDGE_SUBNET = "172.30.0.0/16"
DEFAULT_POOLS: tuple[Pool, ...] = (Pool("172.31.0.0/16", 24), Pool("10.210.0.0/16", 24),
                                   Pool("192.168.224.0/19", 24))


@dataclass(frozen=True)
class IpamConfig:
    default_bridge: str | None = DEFAULT_BRIDGE_SUBNET
    pools: tuple[Pool, ...] = DEFAULT_POOLS


def parse_subnet(text: str) -> IPv4Network:
    """A ``--subnet`` value: CIDR notation with no host bits set, at most a /30."""
    try:
        net = IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    if "/" not in text:
        raise InvalidArgument(f"invalid CIDR address: {text}")
    if IPv4Address(text.split("/")[0]) != net.network_address:
        raise InvalidArgument(f"invalid subnet {text}: it should be {net}")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {text} is too small: at most /30")
    return net


def parse_address(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None


def overlaps(net: IPv4Network, taken: Iterable[IPv4Network]) -> bool:
    return any(net.overlaps(other) for other in taken)


def choose_subnet(taken: list[IPv4Network], pools: Iterable[Pool],
                  preferred: str | None = None) -> IPv4Network:
    """The preferred subnet if it is free, else the first free block of the pools."""
    if preferred:
        net = IPv4Network(preferred)
        if not overlaps(net, taken):
            return net
    for pool in pools:
        for block in pool.blocks():
            if not overlaps(block, taken):
                return block
    raise Unavailable(NO_POOL)


def check_subnet(net: IPv4Network, taken: list[IPv4Network]) -> None:
    if overlaps(net, taken):
        raise Forbidden(POOL_OVERLAP)


def default_gateway(net: IPv4Network) -> IPv4Address:
    return net.network_address + 1


def check_gateway(net: IPv4Network, gateway: IPv4Address) -> None:
    if gateway not in net or gateway in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"no matching subnet for gateway {gateway}")


def mac_for(address: IPv4Address) -> str:
    """Docker's classic MAC for a bridge endpoint: 02:42 followed by the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


class Ipam:
    """Address allocations of every network, stored in SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def reserve(self, network_id: str, net: IPv4Network, owner: str,
                address: IPv4Address | None = None) -> IPv4Address:
        """Allocate ``address`` (Forbidden if taken) or the lowest free one (Unavailable)."""
        with self.db.tx() as cur:
            rows = cur.execute("SELECT address FROM ip_allocations WHERE network_id=?",
                               (network_id,)).fetchall()
            used = {IPv4Address(r[0]) for r in rows}
            if address is None:
                chosen = _lowest_free(net, used)
            else:
                _check_requested(net, address)
                if address in used:
                    raise Forbidden("Address already in use")
                chosen = address
            cur.execute("INSERT INTO ip_allocations(network_id, address, owner) VALUES(?,?,?)",
                        (network_id, str(chosen), owner))
            return chosen

    def release(self, network_id: str, address: IPv4Address | str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM ip_allocations WHERE network_id=? AND address=?",
                        (network_id, str(address)))

    def release_owner(self, network_id: str, owner: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM ip_allocations WHERE network_id=? AND owner=?",
                        (network_id, owner))

    def release_network(self, network_id: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM ip_allocations WHERE network_id=?", (network_id,))

    def allocated(self, network_id: str) -> dict[str, str]:
        """address → owner for one network."""
        rows = self.db.query("SELECT address, owner FROM ip_allocations WHERE network_id=?",
                             (network_id,))
        return {str(a): str(o) for a, o in rows}


def _check_requested(net: IPv4Network, address: IPv4Address) -> None:
    if address not in net:
        raise InvalidArgument(f"no configured subnet or ip-range contain the IP address "
                              f"{address}")
    if address in (net.network_address, net.broadcast_address):
        raise InvalidArgument("requested address is out of range")


def _lowest_free(net: IPv4Network, used: set[IPv4Address]) -> IPv4Address:
    for host in net.hosts():
        if host not in used:
            return host
    raise Unavailable("No available addresses on this pool")
