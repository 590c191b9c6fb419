"""What the Engine API's swarm routes need from this node's swarm membership.

``dockyard.cluster.node.SwarmNode`` implements it; the routes (``api/routes/swarm.py``) only
see this protocol, so they are tested against it and never reach into the store themselves.
Every method of an inactive node raises :data:`NOT_IN_SWARM` (503) except ``state``, ``info``,
``init`` and ``join``; write methods on a worker raise :data:`NOT_A_MANAGER` (503).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dockyard.cluster.store import Object

NOT_IN_SWARM = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm "
                "join\" to connect this node to swarm and try again.")
NOT_A_MANAGER = ("This node is not a swarm manager. Worker nodes can't be used to view or "
                 "modify cluster state. Please run this command on a manager node or promote "
                 "the current node to a manager.")
ALREADY_IN_SWARM = ("This node is already part of a swarm. Use \"docker swarm leave\" to leave "
                    "this swarm and join another one.")


@dataclass(frozen=True)
class InitRequest:
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""
    force_new_cluster: bool = False
    spec: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JoinRequest:
    remote_addrs: Sequence[str]
    join_token: str
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""


class SwarmBackend(Protocol):
    def state(self) -> str:
        """LocalNodeState: "inactive", "pending", "active", "error" or "locked"."""

    def info(self) -> dict[str, Any]:
        """The ``Swarm`` section of ``GET /info``."""

    def init(self, request: InitRequest) -> str:
        """Make this node the first manager of a new swarm; the node id."""

    def join(self, request: JoinRequest) -> None: ...

    def leave(self, force: bool) -> None: ...

    def inspect(self) -> dict[str, Any]:
        """``GET /swarm``: the cluster object with its join tokens (managers only)."""

    def objects(self, kind: str) -> list[Object]:
        """Every stored object of ``kind`` ("nodes", "services", "tasks")."""

    def lookup(self, kind: str, ref: str) -> Object:
        """By full id, then by name (services: Spec.Name; nodes: Spec.Name or hostname), then
        by unique id prefix. NotFound with Docker's text otherwise."""

    def create_service(self, spec: Mapping[str, Any]) -> Object: ...

    def update_service(self, ref: str, version: int, spec: Mapping[str, Any],
                       rollback: bool = False) -> Object:
        """Conflict when ``version`` is not the stored one (Docker: "update out of
        sequence")."""

    def remove_service(self, ref: str) -> None: ...

    def update_node(self, ref: str, version: int, spec: Mapping[str, Any]) -> Object: ...

    def remove_node(self, ref: str, force: bool) -> None: ...
