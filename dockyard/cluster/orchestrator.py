"""The orchestrator: from services to the tasks that should exist (pure decisions).

``reconcile`` looks at one service (or its absence), its tasks and the nodes, and answers the
writes that move the store towards the service's spec — never touching a task's ``Status``
(the agent's) or ``NodeID`` (the scheduler's):

* replicated: one live task per slot 1..Replicas; a slot whose task ended is refilled after the
  restart policy's delay, unless the policy says not to (``none``; ``on-failure`` and a clean
  exit; ``MaxAttempts`` used up); slots above Replicas are shut down;
* global: one live task per ready, active node that satisfies the placement constraints;
* a task on a node that went down or is drained is replaced (its own desired state becomes
  ``shutdown``); a paused node keeps its tasks but gets no new ones (the scheduler's rule);
* rolling update: tasks made from an older spec are replaced ``UpdateConfig.Parallelism`` at a
  time (default 1), stop-first, waiting until the replacements run;
* a removed service: its tasks are marked ``remove`` (the agent removes the containers and
  then the task objects); unassigned ones are deleted at once;
* history: at most ``HISTORY`` ended tasks are kept per slot.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dockyard.cluster import placement
from dockyard.cluster.objects import TASKS, Node, Service, Task, new_task, terminal
from dockyard.cluster.store import Delete, Object, Put

HISTORY = 5
DEFAULT_RESTART_DELAY = 5.0  # seconds, swarmkit's default


@dataclass(frozen=True)
class Observed:
    """A task as stored, with the time (epoch seconds) its status last changed."""
    obj: Object
    task: Task
    changed_at: float


Writes = list["Put | Delete"]


def _desire(o: Observed, state: str) -> Put:
    return Put(o.obj.with_spec({**o.obj.spec, "DesiredState": state}))


def _restart_policy(template: Mapping[str, Any]) -> tuple[str, float, int]:
    policy = template.get("RestartPolicy") or {}
    delay = policy.get("Delay")
    return (str(policy.get("Condition") or "any"),
            DEFAULT_RESTART_DELAY if delay is None else int(delay) / 1e9,
            int(policy.get("MaxAttempts") or 0))


def _should_refill(service: Service, history: Sequence[Observed], now: float) -> bool:
    """A slot without a live task: refill it now? ``history`` is the slot's tasks, newest last."""
    if not history:
        return True
    last = history[-1]
    if last.task.desired != "running":  # shut down on purpose (update, scale, node down)
        return True
    condition, delay, attempts = _restart_policy(service.template)
    if condition == "none" or (condition == "on-failure" and last.task.state == "complete"):
        return False
    if attempts and sum(1 for h in history if terminal(h.task.state)) >= attempts:
        return False
    return now >= last.changed_at + delay


def _outdated(service: Service, o: Observed) -> bool:
    """Its template or its endpoint (published ports) is not the service's: replaced, as
    swarmkit's dirty check does."""
    endpoint = (o.obj.spec.get("Endpoint") or {}).get("Spec")
    return dict(o.task.spec) != dict(service.template) or \
        _endpoint(endpoint) != _endpoint(service.spec.get("EndpointSpec"))


def _endpoint(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """An EndpointSpec without its empty fields, the default mode filled in."""
    out = {k: v for k, v in (spec or {}).items() if v not in (None, [], {}, "")}
    return {"Mode": "vip", **out}


def _trim(history: Sequence[Observed]) -> Writes:
    ended = [h for h in history if terminal(h.task.state) and h.task.desired != "running"]
    return [Delete(TASKS, h.obj.id, h.obj.version) for h in ended[:-HISTORY] if HISTORY]


def _slots(tasks: Sequence[Observed]) -> dict[int, list[Observed]]:
    by_slot: dict[int, list[Observed]] = defaultdict(list)
    for o in sorted(tasks, key=lambda o: (o.obj.created_at, o.obj.id)):
        by_slot[o.task.slot].append(o)
    return by_slot


def _remove_service(tasks: Sequence[Observed]) -> Writes:
    writes: Writes = []
    for o in tasks:
        if not o.task.node_id or (terminal(o.task.state) and not o.task.container_id):
            writes.append(Delete(TASKS, o.obj.id, o.obj.version))
        elif o.task.desired != "remove":
            writes.append(_desire(o, "remove"))
    return writes


def reconcile(service: Service | None, tasks: Sequence[Observed], nodes: Mapping[str, Node],
              now: float, stamp: str) -> Writes:
    """The writes for one service id; ``service`` None means it was removed."""
    if service is None:
        return _remove_service(tasks)
    writes: Writes = []
    # Tasks on nodes that are gone, down or drained: replace them (the slot refills below).
    usable: list[Observed] = []
    for o in tasks:
        node = nodes.get(o.task.node_id) if o.task.node_id else None
        if o.task.live and o.task.node_id and (node is None or not node.ready
                                               or node.availability == "drain"):
            writes.append(_desire(o, "shutdown"))
            usable.append(Observed(o.obj, replace(o.task, desired="shutdown"), now))
        else:
            usable.append(o)
    if service.global_mode:
        return writes + _reconcile_global(service, usable, nodes, now, stamp)
    return writes + _reconcile_replicated(service, usable, now, stamp)


def _reconcile_replicated(service: Service, tasks: Sequence[Observed], now: float,
                          stamp: str) -> Writes:
    writes: Writes = []
    by_slot = _slots(tasks)
    parallelism = int((service.spec.get("UpdateConfig") or {}).get("Parallelism", 1) or 0)
    updating = sum(1 for slot, history in by_slot.items() if slot <= service.replicas
                   and any(h.task.live and not _outdated(service, h)
                           and h.task.state != "running" for h in history))
    for slot in range(1, service.replicas + 1):
        history = by_slot.get(slot, [])
        live = [h for h in history if h.task.live]
        for extra in live[:-1]:  # never two live tasks in one slot: keep the newest
            writes.append(_desire(extra, "shutdown"))
        if live:
            current = live[-1]
            if _outdated(service, current) and (parallelism == 0 or updating < parallelism):
                updating += 1
                writes.append(_desire(current, "shutdown"))
                writes.append(Put(new_task(service, slot, "", stamp)))
        elif _should_refill(service, history, now):
            for ended in history:
                if ended.task.desired == "running":
                    writes.append(_desire(ended, "shutdown"))
            writes.append(Put(new_task(service, slot, "", stamp)))
        writes += _trim(history)
    for slot, history in by_slot.items():
        if slot > service.replicas:
            writes += [_desire(h, "shutdown") for h in history if h.task.live]
            writes += _trim(history)
    return writes


def _reconcile_global(service: Service, tasks: Sequence[Observed], nodes: Mapping[str, Node],
                      now: float, stamp: str) -> Writes:
    writes: Writes = []
    constraints = placement.constraints_of(service.template)
    wanted = {n.id for n in nodes.values()
              if n.ready and n.availability == "active" and placement.matches(constraints, n)}
    by_node: dict[str, list[Observed]] = defaultdict(list)
    for o in sorted(tasks, key=lambda o: (o.obj.created_at, o.obj.id)):
        by_node[o.task.node_id].append(o)
    for node_id in sorted(wanted):
        history = by_node.get(node_id, [])
        live = [h for h in history if h.task.live]
        if live and _outdated(service, live[-1]):
            writes.append(_desire(live[-1], "shutdown"))
            writes.append(Put(new_task(service, 0, node_id, stamp)))
        elif not live and _should_refill(service, history, now):
            writes += [_desire(h, "shutdown") for h in history if h.task.desired == "running"]
            writes.append(Put(new_task(service, 0, node_id, stamp)))
        writes += _trim(history)
    for node_id, history in by_node.items():
        if node_id not in wanted:
            writes += [_desire(h, "shutdown") for h in history if h.task.live]
    return writes
