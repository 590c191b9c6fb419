"""The names the embedded DNS server answers: per network, name → addresses.

Each network holds records ``(name, ip)`` registered by the engine: container names, short
ids, network aliases (``--network-alias``, shared by several containers: every address is
answered, in random order) and ``--link`` aliases, which only the linking container sees
(``viewer``). A query is answered from the networks of the listener it arrived on plus, when
the source address belongs to a registered container, every network that container is on
(Docker resolves across all of a container's networks). ``name.<network name>`` resolves like
``name`` on that network.
"""
from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.network.dnscodec import name_key


@dataclass(frozen=True)
class NameRecord:
    network_id: str
    name: str  # as registered; matched case-insensitively
    ip: str
    container: str = ""  # the container owning ``ip``: widens the querier's scope
    viewer: str = ""  # a --link alias: only this container's queries see it


class DnsRegistry:
    """Thread-safe: the engine registers while the server thread looks up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[NameRecord, None] = {}  # in registration order
        self._network_names: dict[str, str] = {}

    def set_network_name(self, network_id: str, name: str) -> None:
        """Enables ``container.<name>`` lookups on that network."""
        with self._lock:
            self._network_names[network_id] = name

    def register(self, network_id: str, names: Iterable[str], ip: str, *,
                 container: str = "", viewer: str = "") -> None:
        address = str(ipaddress.ip_address(ip))
        with self._lock:
            for name in names:
                if name_key(name):
                    record = NameRecord(network_id, name.rstrip("."), address, container, viewer)
                    self._records.setdefault(record, None)

    def unregister(self, network_id: str, names: Iterable[str] | None = None,
                   ip: str | None = None, *, container: str | None = None) -> None:
        """Forget ``names`` (all when None) of ``ip`` (every address when None), only those
        registered for ``container`` when given (an address may already serve a successor)."""
        keys = None if names is None else {name_key(n) for n in names}
        address = None if ip is None else str(ipaddress.ip_address(ip))
        with self._lock:
            self._records = {r: None for r in self._records if not (
                r.network_id == network_id
                and (keys is None or name_key(r.name) in keys)
                and (address is None or r.ip == address)
                and (container is None or r.container == container))}

    def remove_network(self, network_id: str) -> None:
        with self._lock:
            self._records = {r: None for r in self._records if r.network_id != network_id}
            self._network_names.pop(network_id, None)

    def records(self, network_id: str | None = None) -> list[NameRecord]:
        with self._lock:
            return sorted((r for r in self._records
                           if network_id is None or r.network_id == network_id),
                          key=lambda r: (r.network_id, r.name, r.ip))

    def scope(self, network_id: str, source: str) -> tuple[set[str], str]:
        """The networks a query from ``source`` sees, and the querying container (or "")."""
        with self._lock:
            owners = {r.container for r in self._records if r.ip == source and r.container}
            owner = next(iter(owners)) if len(owners) == 1 else ""
            networks = {network_id}
            networks |= {r.network_id for r in self._records
                         if r.ip == source or (owner and r.container == owner)}
        return networks, owner

    def lookup(self, name: str, networks: set[str], querier: str = "") -> list[str]:
        """Addresses of ``name`` on ``networks`` (``name.<network>`` included)."""
        key = name_key(name)
        with self._lock:
            found = self._match(key, networks, querier)
            if not found and "." in key:
                head, _, tail = key.rpartition(".")
                named = {n for n in networks if name_key(self._network_names.get(n, "")) == tail}
                found = self._match(head, named, querier) if named else []
        return sorted(set(found))

    def _match(self, key: str, networks: set[str], querier: str) -> list[str]:
        return [r.ip for r in self._records
                if r.network_id in networks and name_key(r.name) == key
                and (not r.viewer or r.viewer == querier)]

    def names_of(self, ip: str, networks: set[str]) -> list[str]:
        """PTR answers: per network, the first name registered for ``ip`` (the engine
        registers the container name first), as ``name.<network name>`` like Docker."""
        first: dict[str, str] = {}
        with self._lock:
            for r in self._records:
                if r.ip == ip and r.network_id in networks and not r.viewer:
                    first.setdefault(r.network_id, r.name)
            return [f"{name}.{self._network_names[n]}" if self._network_names.get(n) else name
                    for n, name in sorted(first.items())]
