"""etcd cluster membership through the JSON gateway: list, add (before the new member starts,
as etcd requires) and remove members — how a manager joins and leaves the Raft group."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from dockyard import errors
from dockyard.cluster.etcdhttp import EtcdHTTP
from dockyard.host.etcd import healthy


@dataclass(frozen=True)
class EtcdMember:
    id: str
    name: str  # empty for a member added but not started yet
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]


def _members(answer: dict[str, object]) -> list[EtcdMember]:
    out = []
    for m in answer.get("members") or []:  # type: ignore[attr-defined]
        out.append(EtcdMember(str(m.get("ID", "")), str(m.get("name", "")),
                              tuple(m.get("peerURLs") or ()), tuple(m.get("clientURLs") or ())))
    return out


@contextmanager
def _gateway(endpoints: Sequence[str]) -> Iterator[EtcdHTTP]:
    http = EtcdHTTP(endpoints, retry_for=2.0)
    try:
        yield http
    finally:
        http.close()


def _listed(http: EtcdHTTP) -> list[EtcdMember]:
    return _members(http.call("/v3/cluster/member/list", {}))


def members(endpoints: Sequence[str]) -> list[EtcdMember]:
    with _gateway(endpoints) as http:
        return _listed(http)


def add(endpoints: Sequence[str], name: str, peer_url: str, patience: float = 20.0) -> str:
    """Announce a new member; the ``--initial-cluster`` value it must start with.

    etcd refuses the change ("unhealthy cluster") until every member has been connected for
    a few seconds — a manager that just joined, for one — so that is waited out."""
    deadline = time.monotonic() + patience
    with _gateway(endpoints) as http:
        while True:
            try:
                found = _members(http.call("/v3/cluster/member/add", {"peerURLs": [peer_url]}))
                break
            except errors.Unavailable as exc:
                if "unhealthy cluster" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    return ",".join(f"{m.name or name}={url}" for m in found for url in m.peer_urls)


def _remove_where(endpoints: Sequence[str], chosen: Callable[[EtcdMember], bool]) -> None:
    with _gateway(endpoints) as http:
        for m in _listed(http):
            if chosen(m):
                http.call("/v3/cluster/member/remove", {"ID": m.id})


def remove(endpoints: Sequence[str], name: str) -> None:
    """Remove the member called ``name`` (a no-op if it is not a member)."""
    _remove_where(endpoints, lambda m: m.name == name)


def remove_peer(endpoints: Sequence[str], peer_url: str) -> None:
    """Undo an ``add`` whose member never started (it has no name yet)."""
    _remove_where(endpoints, lambda m: peer_url in m.peer_urls)


def can_remove(found: Sequence[EtcdMember], name: str) -> bool:
    """swarmkit's quorum safeguard: after removing ``name``, a quorum of the members left
    must be reachable (answer etcd's /health)."""
    left = [m for m in found if m.name != name]
    reachable = sum(1 for m in left if any(healthy(url) for url in m.client_urls))
    return reachable >= len(left) // 2 + 1
