"""The swarm's objects as they live in the cluster store, and their Engine API views.

Each object is a store :class:`~dockyard.cluster.store.Object` whose ``spec`` holds the Docker
wire object minus what the store itself tracks (``ID``, ``Version``, ``CreatedAt``,
``UpdatedAt``): a service's spec is ``{"Spec": ServiceSpec, "PreviousSpec": ...}``, a task's is
``{"ServiceID", "Slot", "NodeID", "Spec", "DesiredState", "Status", ...}``, exactly the fields
``GET /tasks`` shows. So ``types.swarm.view`` is the one place that turns stored objects into API
answers, and the version the CLI sends back on ``service update?version=N`` is the store's.

Single writers (swarmkit's rule): the orchestrator writes a task's ``DesiredState`` and creates
tasks, the scheduler writes ``NodeID`` (and ``Status`` new → assigned), the agent on the task's
node writes ``Status`` from then on.
"""
from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.cluster.store import Object

from dockyard.types.swarm import CLUSTER, NETWORKS, NODES, SERVICES, TASKS  # noqa: F401

HEARTBEATS = "heartbeats"  # one key per live node, on the node's lease
CLUSTER_ID = "default"
LEADER_ELECTION = "swarm-leader"

# Task states in lifecycle order (swarmkit's TaskState): a task only moves forward.
STATES = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running",
          "complete", "shutdown", "failed", "rejected", "remove", "orphaned")
TERMINAL = frozenset({"complete", "shutdown", "failed", "rejected", "remove", "orphaned"})

_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A 25-character id like swarmkit's (lower-case letters and digits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(25))


def rank(state: str) -> int:
    return STATES.index(state) if state in STATES else -1


def terminal(state: str) -> bool:
    return state in TERMINAL


@dataclass(frozen=True)
class Task:
    """The fields of a task the manager and agents reason about."""
    id: str
    service_id: str
    slot: int
    node_id: str
    desired: str
    state: str
    spec: Mapping[str, Any]
    container_id: str
    version: int

    @classmethod
    def of(cls, obj: Object) -> Task:
        s = obj.spec
        status = s.get("Status") or {}
        return cls(obj.id, str(s.get("ServiceID", "")), int(s.get("Slot") or 0),
                   str(s.get("NodeID") or ""), str(s.get("DesiredState", "running")),
                   str(status.get("State", "new")), s.get("Spec") or {},
                   str((status.get("ContainerStatus") or {}).get("ContainerID", "")),
                   obj.version)

    @property
    def live(self) -> bool:
        """Counts as one of its slot's replicas: wanted running and not ended."""
        return self.desired == "running" and not terminal(self.state)


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    spec: Mapping[str, Any]
    version: int

    @classmethod
    def of(cls, obj: Object) -> Service:
        spec = obj.spec.get("Spec") or {}
        return cls(obj.id, str(spec.get("Name", "")), spec, obj.version)

    @property
    def template(self) -> Mapping[str, Any]:
        return self.spec.get("TaskTemplate") or {}

    @property
    def global_mode(self) -> bool:
        return "Global" in (self.spec.get("Mode") or {})

    @property
    def replicas(self) -> int:
        mode = self.spec.get("Mode") or {}
        return int((mode.get("Replicated") or {}).get("Replicas", 1))


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str
    availability: str
    labels: Mapping[str, str]
    ready: bool
    version: int

    @classmethod
    def of(cls, obj: Object, alive: bool) -> Node:
        s = obj.spec
        spec = s.get("Spec") or {}
        return cls(obj.id, str((s.get("Description") or {}).get("Hostname", "")),
                   str(spec.get("Role", "worker")), str(spec.get("Availability", "active")),
                   spec.get("Labels") or {}, alive, obj.version)


def task_status(state: str, message: str, now: str, *, container_id: str = "", pid: int = 0,
                exit_code: int | None = None, err: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"Timestamp": now, "State": state, "Message": message}
    if err:
        status["Err"] = err
    if container_id:
        cs: dict[str, Any] = {"ContainerID": container_id, "PID": pid}
        if exit_code is not None:
            cs["ExitCode"] = exit_code
        status["ContainerStatus"] = cs
    return status


def new_task(service: Service, slot: int, node_id: str, now: str) -> Object:
    """A fresh task for ``slot`` (replicated) or for ``node_id`` (global)."""
    spec = {"ServiceID": service.id, "Slot": slot, "NodeID": node_id,
            "Spec": dict(service.template), "ServiceAnnotations": {
                "Name": service.name, "Labels": service.spec.get("Labels") or {}},
            "Labels": {}, "DesiredState": "running", "SpecVersion": {"Index": service.version},
            "Endpoint": {"Spec": dict(service.spec.get("EndpointSpec") or {})},
            "Status": task_status("new", "created", now)}
    return Object(TASKS, new_id(), spec)


def task_name(service_name: str, task: Task) -> str:
    """``web.1`` for a replicated task, ``web.<node id>`` for a global one."""
    return f"{service_name}.{task.slot}" if task.slot else f"{service_name}.{task.node_id}"
