"""The scheduler: assigns new tasks to nodes (pure decisions).

A task that wants to run and has no node goes to a ready, ``active`` node that satisfies its
placement constraints and has room for its reservations, preferring the node with the fewest
live tasks of the same service, then the fewest live tasks overall (swarmkit's spread), then
the node id. A task with no such node stays ``pending`` with the reason in its message. Global
tasks come with their node already chosen and are only moved to ``assigned``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.cluster import placement
from dockyard.cluster.objects import Node, Task, task_status
from dockyard.cluster.store import Object, Put
from dockyard.errors import InvalidArgument


def _reservations(spec: Mapping[str, Any]) -> tuple[int, int]:
    res = ((spec.get("Resources") or {}).get("Reservations") or {})
    return int(res.get("NanoCPUs") or 0), int(res.get("MemoryBytes") or 0)


def _assigned(obj: Object, node_id: str, stamp: str) -> Put:
    spec = {**obj.spec, "NodeID": node_id,
            "Status": task_status("assigned", "scheduler assigned task to node", stamp)}
    return Put(obj.with_spec(spec))


def _pending(obj: Object, message: str, stamp: str) -> Put | None:
    status = obj.spec.get("Status") or {}
    if status.get("State") == "pending" and status.get("Err") == message:
        return None
    return Put(obj.with_spec({**obj.spec, "Status": task_status(
        "pending", "pending task scheduling", stamp, err=message)}))


def schedule(tasks: Sequence[tuple[Object, Task]], nodes: Mapping[str, Node],
             capacity: Mapping[str, tuple[int, int]], stamp: str) -> list[Put]:
    """Writes assigning every schedulable task; ``capacity`` is each node's (NanoCPUs,
    MemoryBytes), 0 meaning unknown/unlimited."""
    per_service: Counter[tuple[str, str]] = Counter()
    per_node: Counter[str] = Counter()
    reserved: dict[str, list[int]] = {n: [0, 0] for n in nodes}
    for _, t in tasks:
        if t.node_id and t.live:
            per_service[(t.node_id, t.service_id)] += 1
            per_node[t.node_id] += 1
            cpu, mem = _reservations(t.spec)
            if t.node_id in reserved:
                reserved[t.node_id][0] += cpu
                reserved[t.node_id][1] += mem
    writes: list[Put] = []
    for obj, t in tasks:
        if t.desired != "running" or t.state not in ("new", "pending"):
            continue
        if t.node_id:  # global: the orchestrator chose the node
            writes.append(_assigned(obj, t.node_id, stamp))
            continue
        node_id, reason = _choose(t, nodes, capacity, reserved, per_service, per_node)
        if node_id is None:
            write = _pending(obj, reason, stamp)
            if write is not None:
                writes.append(write)
            continue
        per_service[(node_id, t.service_id)] += 1
        per_node[node_id] += 1
        cpu, mem = _reservations(t.spec)
        reserved[node_id][0] += cpu
        reserved[node_id][1] += mem
        writes.append(_assigned(obj, node_id, stamp))
    return writes


def _choose(t: Task, nodes: Mapping[str, Node], capacity: Mapping[str, tuple[int, int]],
            reserved: Mapping[str, list[int]], per_service: Counter[tuple[str, str]],
            per_node: Counter[str]) -> tuple[str | None, str]:
    try:
        constraints = placement.constraints_of(t.spec)
    except InvalidArgument as exc:
        return None, str(exc)
    ready = [n for n in nodes.values() if n.ready and n.availability == "active"]
    if not ready:
        return None, "no suitable node (no ready, active node)"
    fitting = [n for n in ready if placement.matches(constraints, n)]
    if not fitting:
        return None, (f"no suitable node (scheduling constraints not satisfied on "
                      f"{len(ready)} node{'s' if len(ready) != 1 else ''})")
    cpu, mem = _reservations(t.spec)
    roomy = [n for n in fitting if _fits(capacity.get(n.id, (0, 0)), reserved[n.id], cpu, mem)]
    if not roomy:
        return None, (f"no suitable node (insufficient resources on {len(fitting)} "
                      f"node{'s' if len(fitting) != 1 else ''})")
    best = min(roomy, key=lambda n: (per_service[(n.id, t.service_id)], per_node[n.id], n.id))
    return best.id, ""


def _fits(capacity: tuple[int, int], reserved: Sequence[int], cpu: int, mem: int) -> bool:
    total_cpu, total_mem = capacity
    return ((not cpu or not total_cpu or reserved[0] + cpu <= total_cpu)
            and (not mem or not total_mem or reserved[1] + mem <= total_mem))
