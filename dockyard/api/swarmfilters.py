"""The ``filters`` of ``GET /nodes``, ``/services`` and ``/tasks``, applied as moby and
swarmkit apply them, and the ``ServiceStatus`` of ``GET /services?status=true``.

``id`` and ``name`` match prefixes, ``label`` a ``key`` or ``key=value`` (an empty value
matches any), enum filters compare case-insensitively and refuse unknown values. A task's
``label`` is its service's label and its name is ``<service>.<slot or node id>.<task id>``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dockyard.api.filters import Filters, label_match
from dockyard.errors import InvalidArgument
from dockyard.types.swarm import Stored

NODE_FILTERS = frozenset({"id", "name", "role", "membership", "label", "node.label"})
SERVICE_FILTERS = frozenset({"id", "name", "label", "mode", "runtime"})
TASK_FILTERS = frozenset({"id", "name", "label", "service", "node", "desired-state",
                          "_up-to-date", "runtime"})
TASK_STATES = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting",
               "running", "complete", "shutdown", "failed", "rejected", "remove", "orphaned")

Match = Callable[[Stored], bool]


def check_keys(filters: Filters, allowed: frozenset[str]) -> Filters:
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
    return filters


def mode_of(spec: Mapping[str, Any]) -> str:
    """The kind of a ServiceSpec's Mode (replicated when none is given)."""
    mode = spec.get("Mode") or {}
    for key, name in (("Global", "global"), ("ReplicatedJob", "replicated-job"),
                      ("GlobalJob", "global-job")):
        if mode.get(key) is not None:
            return name
    return "replicated"


def runtime_of(task_spec: Any) -> str:
    return str((task_spec or {}).get("Runtime") or "container")


def _spec(obj: Stored) -> Mapping[str, Any]:
    return obj.spec.get("Spec") or {}


def _prefixed(value: str, wanted: Sequence[str]) -> bool:
    return not wanted or any(value.startswith(w) for w in wanted)


def _labelled(labels: Any, wanted: Sequence[str]) -> bool:
    return label_match(labels, wanted, empty_means_any=True)


def _enum(values: Sequence[str], allowed: Sequence[str], what: str) -> set[str]:
    chosen = set()
    for value in values:
        if value.lower() in allowed:
            chosen.add(value.lower())
        elif value:
            raise InvalidArgument(f"Invalid {what} filter: '{value}'")
    return chosen


def node_matcher(f: Filters) -> Match:
    roles = _enum(f.get("role", []), ("worker", "manager"), "role")
    memberships = _enum(f.get("membership", []), ("pending", "accepted"), "membership")

    def match(node: Stored) -> bool:
        spec, desc = _spec(node), node.spec.get("Description") or {}
        return (_prefixed(node.id, f.get("id", []))
                and _prefixed(str(desc.get("Hostname") or ""), f.get("name", []))
                and (not roles or spec.get("Role") in roles)
                and (not memberships or (spec.get("Membership") or "accepted") in memberships)
                and _labelled((desc.get("Engine") or {}).get("Labels"), f.get("label", []))
                and _labelled(spec.get("Labels"), f.get("node.label", [])))
    return match


def service_matcher(f: Filters) -> Match:
    runtimes = f.get("runtime") or ["container"]

    def match(service: Stored) -> bool:
        spec = _spec(service)
        return (_prefixed(service.id, f.get("id", []))
                and _prefixed(str(spec.get("Name") or ""), f.get("name", []))
                and _labelled(spec.get("Labels"), f.get("label", []))
                and (not f.get("mode") or mode_of(spec) in f["mode"])
                and runtime_of(spec.get("TaskTemplate")) in runtimes)
    return match


def task_name(task: Stored, service: Stored | None) -> str:
    """swarmkit's ``naming.Task``: the task's own Name, else service.slot.id (a global
    task's slot is its node id)."""
    if task.spec.get("Name"):
        return str(task.spec["Name"])
    service_name = _spec(service).get("Name") if service is not None else \
        (task.spec.get("ServiceAnnotations") or {}).get("Name")
    slot = task.spec.get("Slot") or task.spec.get("NodeID") or ""
    return f"{service_name or ''}.{slot}.{task.id}"


def up_to_date(task: Stored, service: Stored) -> bool:
    """The task runs the service's current template (the orchestrator's test too)."""
    return dict(task.spec.get("Spec") or {}) == dict(_spec(service).get("TaskTemplate") or {})


def task_matcher(f: Filters, services: Mapping[str, Stored]) -> Match:
    """``f["service"]`` and ``f["node"]`` must already hold ids (the routes resolve them)."""
    states = _enum(f.get("desired-state", []), TASK_STATES, "desired-state")
    runtimes = f.get("runtime") or ["container", ""]

    def match(task: Stored) -> bool:
        s = task.spec
        service = services.get(str(s.get("ServiceID") or ""))
        labels = _spec(service).get("Labels") if service is not None else \
            (s.get("ServiceAnnotations") or {}).get("Labels")
        return (_prefixed(task.id, f.get("id", []))
                and _prefixed(task_name(task, service), f.get("name", []))
                and _labelled(labels, f.get("label", []))
                and (not f.get("service") or s.get("ServiceID") in f["service"])
                and (not f.get("node") or s.get("NodeID") in f["node"])
                and (not states or s.get("DesiredState") in states)
                and (not f.get("_up-to-date") or (service is not None
                                                  and up_to_date(task, service)))
                and runtime_of(s.get("Spec")) in runtimes)
    return match


def service_status(service: Stored, tasks: Sequence[Stored]) -> dict[str, int]:
    """swarmkit's ListServiceStatuses: running = tasks whose state is running; desired =
    the replicas, or for a global service the tasks desired running. CompletedTasks counts
    only for jobs, which dockyard does not run."""
    mine = [t.spec for t in tasks if t.spec.get("ServiceID") == service.id]
    running = sum(1 for t in mine if (t.get("Status") or {}).get("State") == "running")
    spec = _spec(service)
    if mode_of(spec) == "replicated":
        replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        desired = 1 if replicas is None else int(replicas)
    else:
        desired = sum(1 for t in mine if t.get("DesiredState") == "running")
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": 0}
