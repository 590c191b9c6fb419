"""Network and endpoint records over the ``networks`` and ``endpoints`` tables (schema v3).

``networks.data`` holds subnet, gateway, bridge device, flags, labels and options;
``endpoints.data`` holds the address, MAC, host-side veth, interface name, aliases and the
published ports of one container on one network.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.metadata.db import Database

PREDEFINED = ("bridge", "host", "none")


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str  # bridge | host | null
    created: str  # RFC 3339
    subnet: str = ""  # "172.31.0.0/24"; "" for host and none
    gateway: str = ""
    bridge: str = ""  # the Linux bridge device
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

    def data(self) -> str:
        fields = asdict(self)
        for key in ("id", "name", "driver", "created"):
            fields.pop(key)
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    proto: str = "tcp"
    host_ip: str = ""  # "" = every address


@dataclass(frozen=True)
class Endpoint:
    network_id: str
    container_id: str
    endpoint_id: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    veth_host: str
    ifname: str = ""  # inside the container: eth0, eth1, …
    netns_path: str = ""
    aliases: tuple[str, ...] = ()
    ports: tuple[PortMapping, ...] = ()

    def data(self) -> str:
        fields = asdict(self)
        fields.pop("network_id")
        fields.pop("container_id")
        return json.dumps(fields, sort_keys=True)


def _network(row: tuple[Any, ...]) -> Network:
    nid, name, driver, data, created = row
    return Network(id=nid, name=name, driver=driver, created=created, **json.loads(data))


def _endpoint(row: tuple[Any, ...]) -> Endpoint:
    network_id, container_id, data = row
    fields = json.loads(data)
    fields["aliases"] = tuple(fields.get("aliases", ()))
    fields["ports"] = tuple(PortMapping(**p) for p in fields.get("ports", ()))
    return Endpoint(network_id=network_id, container_id=container_id, **fields)


_NET_COLUMNS = "id, name, driver, data, created"


class NetworkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- networks --------------------------------------------------------------------------

    def insert(self, net: Network) -> None:
        with self.db.tx() as cur:
            if cur.execute("SELECT 1 FROM networks WHERE name=?", (net.name,)).fetchone():
                raise Conflict(f"network with name {net.name} already exists")
            cur.execute(f"INSERT INTO networks({_NET_COLUMNS}) VALUES(?,?,?,?,?)",
                        (net.id, net.name, net.driver, net.data(), net.created))

    def delete(self, network_id: str) -> None:
        """Remove the network with its endpoints and address allocations (one transaction)."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM endpoints WHERE network_id=?", (network_id,))
            cur.execute("DELETE FROM ip_allocations WHERE network_id=?", (network_id,))
            cur.execute("DELETE FROM networks WHERE id=?", (network_id,))

    def all(self) -> list[Network]:
        rows = self.db.query(f"SELECT {_NET_COLUMNS} FROM networks ORDER BY created, name")
        return [_network(r) for r in rows]

    def find(self, ref: str) -> Network:
        """By full id, exact name, then unique id prefix (Docker's order)."""
        if not ref:
            raise NotFound("network  not found")
        for column in ("id", "name"):
            rows = self.db.query(f"SELECT {_NET_COLUMNS} FROM networks WHERE {column}=?", (ref,))
            if rows:
                return _network(rows[0])
        rows = self.db.query(f"SELECT {_NET_COLUMNS} FROM networks WHERE substr(id, 1, ?)=?",
                             (len(ref), ref.lower()))
        if len(rows) == 1:
            return _network(rows[0])
        if len(rows) > 1:
            raise InvalidArgument(f"network {ref} is ambiguous ({len(rows)} matches found "
                                  f"based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    # -- endpoints -------------------------------------------------------------------------

    def put_endpoint(self, ep: Endpoint) -> None:
        with self.db.tx() as cur:
            cur.execute("INSERT OR REPLACE INTO endpoints(network_id, container_id, data) "
                        "VALUES(?,?,?)", (ep.network_id, ep.container_id, ep.data()))

    def delete_endpoint(self, network_id: str, container_id: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM endpoints WHERE network_id=? AND container_id=?",
                        (network_id, container_id))

    def endpoint(self, network_id: str, container_id: str) -> Endpoint | None:
        rows = self.db.query("SELECT network_id, container_id, data FROM endpoints "
                             "WHERE network_id=? AND container_id=?", (network_id, container_id))
        return _endpoint(rows[0]) if rows else None

    def endpoints(self, network_id: str | None = None,
                  container_id: str | None = None) -> list[Endpoint]:
        sql = "SELECT network_id, container_id, data FROM endpoints WHERE 1=1"
        params: list[str] = []
        if network_id is not None:
            sql += " AND network_id=?"
            params.append(network_id)
        if container_id is not None:
            sql += " AND container_id=?"
            params.append(container_id)
        return [_endpoint(r) for r in self.db.query(sql + " ORDER BY rowid", tuple(params))]

    def sweep_orphans(self) -> int:
        """Drop endpoints and allocations whose network is gone; how many rows went."""
        with self.db.tx() as cur:
            gone = cur.execute("DELETE FROM endpoints WHERE network_id NOT IN "
                               "(SELECT id FROM networks)").rowcount
            gone += cur.execute("DELETE FROM ip_allocations WHERE network_id NOT IN "
                                "(SELECT id FROM networks)").rowcount
        return int(gone)
