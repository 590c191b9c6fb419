"""What the Engine API's swarm routes and the cluster share: the backend protocol, its requests,
the object kinds and the one function rendering a stored object as its wire form.

``dockyard.cluster.node.SwarmNode`` implements :class:`SwarmBackend`; the routes
(``api/routes/swarmroutes.py``) only see this module (``api`` and ``cluster`` are siblings and
never import each other), so they are tested against it and never reach into the store.
Every method of an inactive node raises :data:`NOT_IN_SWARM` (503) except ``state``, ``info``,
``init`` and ``join``; write methods on a worker raise :data:`NOT_A_MANAGER` (503).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

CLUSTER, NODES, SERVICES, TASKS = "cluster", "nodes", "services", "tasks"
NETWORKS = "networks"  # swarm-scoped (overlay) networks
SECRETS, CONFIGS = "secrets", "configs"


class Stored(Protocol):
    """A stored object as the store gives it (``cluster.store.Object`` is one)."""
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> str: ...
    @property
    def updated_at(self) -> str: ...
    @property
    def spec(self) -> Mapping[str, Any]: ...


def view(obj: Stored) -> dict[str, Any]:
    """The Engine API form of a stored object: the store tracks ID, version and times, the
    spec holds every other field of Docker's wire object."""
    return {"ID": obj.id, "Version": {"Index": obj.version}, "CreatedAt": obj.created_at,
            "UpdatedAt": obj.updated_at, **obj.spec}


NOT_IN_SWARM = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm "
                "join\" to connect this node to swarm and try again.")
NOT_A_MANAGER = ("This node is not a swarm manager. Worker nodes can't be used to view or "
                 "modify cluster state. Please run this command on a manager node or promote "
                 "the current node to a manager.")
ALREADY_IN_SWARM = ("This node is already part of a swarm. Use \"docker swarm leave\" to leave "
                    "this swarm and join another one.")

NO_CA = ("rotating the swarm's root CA (docker swarm ca --rotate, external CAs, a given "
         "signing certificate) is not supported: dockyard's swarm does not issue node "
         "certificates")
NO_AUTOLOCK = ("autolock is not supported: dockyard's managers keep the swarm's state in "
               "etcd without encryption, so there is no unlock key")


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


@dataclass(frozen=True)
class NetworkRequest:
    """``POST /networks/create`` for the overlay driver. ``taken``: subnets this node's
    local networks (and routes) use, which the cluster's address pool must avoid."""
    name: str
    subnet: str = ""
    gateway: str = ""
    attachable: bool = False
    internal: bool = False
    labels: Mapping[str, str] | None = None
    options: Mapping[str, str] | None = None
    taken: Sequence[str] = ()


class SwarmBackend(Protocol):
    def state(self) -> str:
        """LocalNodeState: "inactive", "pending", "active", "error" or "locked"."""

    def ping(self) -> str:
        """The ``Swarm`` header of ``/_ping``: "inactive", "active/manager" or
        "active/worker" — from local state only (every CLI command pings)."""

    def info(self) -> dict[str, Any]:
        """The ``Swarm`` section of ``GET /info``."""

    def init(self, request: InitRequest) -> str:
        """Make this node the first manager of a new swarm; the node id."""

    def join(self, request: JoinRequest) -> None: ...

    def leave(self, force: bool) -> None: ...

    def inspect(self) -> dict[str, Any]:
        """``GET /swarm``: the cluster object with its join tokens (managers only)."""

    def update_swarm(self, version: int, spec: Mapping[str, Any], rotate_worker: bool = False,
                     rotate_manager: bool = False) -> None:
        """``POST /swarm/update``: the cluster spec replaced, join tokens rotated."""

    def objects(self, kind: str) -> Sequence[Stored]:
        """Every stored object of ``kind`` ("nodes", "services", "tasks")."""

    def lookup(self, kind: str, ref: str) -> Stored:
        """By full id, then by name (services: Spec.Name; nodes: Spec.Name or hostname), then
        by unique id prefix. NotFound with Docker's text otherwise."""

    def create_service(self, spec: Mapping[str, Any]) -> Stored: ...

    def update_service(self, ref: str, version: int, spec: Mapping[str, Any],
                       rollback: bool = False) -> Stored:
        """Conflict when ``version`` is not the stored one (Docker: "update out of
        sequence")."""

    def remove_service(self, ref: str) -> None: ...

    def update_node(self, ref: str, version: int, spec: Mapping[str, Any]) -> Stored: ...

    def remove_node(self, ref: str, force: bool) -> None: ...

    def networks(self) -> Sequence[Stored]:
        """The swarm's networks, on any active node (workers too); [] when inactive."""

    def network(self, ref: str) -> Stored:
        """A swarm network by id, name, then unique id prefix; NotFound otherwise."""

    def create_network(self, request: NetworkRequest) -> Stored:
        """A swarm-scoped network (managers only: Forbidden on a worker, as Docker)."""

    def remove_network(self, ref: str) -> None:
        """Refused while a service or a live task uses it (Docker's FailedPrecondition)."""

    def resolve_networks(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The service spec with every network Target (TaskTemplate.Networks and the legacy
        Spec.Networks) replaced by the swarm network's id; NotFound for unknown ones."""

    def file_object(self, kind: str, ref: str) -> Stored:
        """A secret or config ("secrets", "configs") by full id, exact name, then unique id
        prefix; NotFound ("secret x not found") otherwise."""

    def create_file_object(self, kind: str, spec: Mapping[str, Any]) -> Stored:
        """A new secret or config (``Data`` base64, as in the API's JSON); Conflict when the
        name is taken."""

    def update_file_object(self, kind: str, ref: str, version: int,
                           spec: Mapping[str, Any]) -> Stored:
        """Only ``Labels`` may change (swarmkit's rule)."""

    def remove_file_object(self, kind: str, ref: str) -> None:
        """Refused while a service references it."""
