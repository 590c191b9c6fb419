"""The manager: the leader's control loop over the store (orchestrator, then scheduler).

Every manager campaigns in one election; the leader runs ``tick`` a few times a second and
after every change it is told of. A tick reads nodes, heartbeats, services and tasks once,
asks the orchestrator for each service's writes, the network allocator (``netalloc``) for
addresses and the scheduler for assignments of the tasks that have them, and
applies each write on its own with its version check: a write that lost a race (Conflict)
is simply decided again on the next tick from fresh state.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from dockyard import errors
from dockyard.cluster import netalloc, orchestrator, scheduler
from dockyard.cluster.objects import (HEARTBEATS, LEADER_ELECTION, NETWORKS, NODES, SERVICES,
                                      TASKS, Node, Service, Task)
from dockyard.cluster.store import Delete, Object, Put, Store
from dockyard.util.timefmt import now_rfc3339, parse_rfc3339

log = logging.getLogger("dockyard.cluster")

TICK = 0.25  # seconds between ticks while leading


def live_nodes(store: Store) -> dict[str, Node]:
    """Every node, ready when its heartbeat (a key on its lease) exists."""
    alive = {obj.id for obj in store.list(HEARTBEATS).objects}
    return {obj.id: Node.of(obj, obj.id in alive) for obj in store.list(NODES).objects}


def _changed_at(obj: Object) -> float:
    stamp = str((obj.spec.get("Status") or {}).get("Timestamp") or obj.updated_at)
    try:
        return parse_rfc3339(stamp)
    except ValueError:
        return 0.0


def apply(store: Store, writes: Sequence[Put | Delete]) -> int:
    """Apply each write on its own; how many went through."""
    done = 0
    for write in writes:
        try:
            if isinstance(write, Delete):
                store.delete(write.kind, write.id, write.version)
            elif write.object.version == 0:
                store.create(write.object)
            else:
                store.update(write.object)
            done += 1
        except (errors.Conflict, errors.NotFound):
            pass
    return done


def tick(store: Store, now: float | None = None) -> int:
    """One round of orchestration and scheduling; how many writes went through."""
    now = time.time() if now is None else now
    stamp = now_rfc3339()
    nodes = live_nodes(store)
    services = {obj.id: Service.of(obj) for obj in store.list(SERVICES).objects}
    by_service: dict[str, list[orchestrator.Observed]] = defaultdict(list)
    for obj in store.list(TASKS).objects:
        task = Task.of(obj)
        by_service[task.service_id].append(orchestrator.Observed(obj, task, _changed_at(obj)))
    done = 0
    for sid in sorted(set(services) | set(by_service)):
        done += apply(store, orchestrator.reconcile(services.get(sid), by_service.get(sid, []),
                                                    nodes, now, stamp))
    done += allocate(store)
    tasks = [(obj, Task.of(obj)) for obj in store.list(TASKS).objects if netalloc.allocated(obj)]
    capacity = {n: _capacity(obj) for n, obj in
                ((obj.id, obj) for obj in store.list(NODES).objects)}
    scheduled = apply(store, scheduler.schedule(tasks, nodes, capacity, stamp))
    if scheduled:  # the nodes of newly assigned tasks get their addresses at once
        done += scheduled + allocate(store)
    return done


def allocate(store: Store) -> int:
    """The network allocator's round (``netalloc``)."""
    return apply(store, netalloc.allocate(store.list(NETWORKS).objects,
                                          store.list(SERVICES).objects,
                                          store.list(TASKS).objects, store.list(NODES).objects))


def _capacity(obj: Object) -> tuple[int, int]:
    res = (obj.spec.get("Description") or {}).get("Resources") or {}
    return int(res.get("NanoCPUs") or 0), int(res.get("MemoryBytes") or 0)


class Manager:
    """Campaigns for leadership on ``lease`` and runs ticks while leading, in one thread."""

    def __init__(self, store: Store, node_id: str, lease: Callable[[], int]) -> None:
        self.store, self.node_id, self.lease = store, node_id, lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leading = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="swarm-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                leadership = self.store.campaign(LEADER_ELECTION, self.node_id, self.lease(),
                                                 timeout=1.0)
            except errors.DockyardError:
                self._stop.wait(0.5)
                continue
            self.leading = True
            try:
                while not self._stop.is_set() and self.store.leader(LEADER_ELECTION) == \
                        self.node_id:
                    tick(self.store)
                    self._stop.wait(TICK)
            except errors.DockyardError as exc:
                log.warning("swarm manager: %s", exc)
            finally:
                self.leading = False
                try:
                    self.store.resign(leadership)
                except errors.DockyardError:
                    pass
