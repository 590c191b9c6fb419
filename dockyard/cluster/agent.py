"""The agent: runs the tasks the scheduler gave this node and reports what they do.

It is the only writer of a task's ``Status`` once the task is assigned. Each ``tick`` reads
the node's tasks and, per task: starts a container for an assigned task that should run,
reports ``complete``/``failed`` when its container ended, stops the container of a task that
should shut down (in a worker thread: a stop may wait out the grace period) and, for
``remove``, removes the container and deletes the task. Containers whose task no longer
exists (trimmed history, a removed service) are removed too. The containers themselves are
behind :class:`Executor`, which the daemon implements with its engine. Before the tasks,
each tick hands the executor the overlay networks this node needs (``agentnet``, with the
routing mesh's ports on the ``ingress`` one): a task on a network waits until its network is
in place on this node.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dockyard import errors
from dockyard.cluster import agentnet
from dockyard.cluster.agentnet import NetState, TaskNet
from dockyard.cluster.secrets import TaskFile, task_files
from dockyard.cluster.objects import (NETWORKS, NODES, SERVICES, TASKS, Task, task_name,
                                      task_status, terminal)
from dockyard.cluster.store import Object, Store

log = logging.getLogger("dockyard.cluster")

STARTABLE = ("assigned", "accepted", "preparing", "ready", "starting")


@dataclass(frozen=True)
class Run:
    """What the executor needs to start one task's container."""
    task: Task
    name: str  # web.1.<task id>, as Docker names a task's container
    service_name: str
    node_id: str
    ports: tuple[Mapping[str, Any], ...] = ()  # the service's EndpointSpec.Ports
    networks: tuple[TaskNet, ...] = ()  # overlay networks, first = primary
    files: tuple[TaskFile, ...] = ()  # its secrets and configs, read at start


@dataclass(frozen=True)
class ContainerState:
    running: bool
    exit_code: int
    error: str = ""


class Executor(Protocol):
    def start(self, run: Run) -> tuple[str, int]:
        """Create and start the container; (container id, pid). DockyardError on failure."""

    def state(self, container_id: str) -> ContainerState | None:
        """None when the container is gone."""

    def stop(self, container_id: str, timeout: float) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def containers(self) -> dict[str, str]:
        """Task id → container id of every task container on this node."""

    def networks(self, wanted: Sequence[NetState]) -> set[str]:
        """Make this node's overlay networks exactly ``wanted`` (idempotent); the ids of
        those now in place."""

    def release_networks(self, force: bool) -> None:
        """Tear this node's overlay networks down: all of them (``force``: leaving the
        swarm), else those no running container uses (daemon shutdown)."""


def _grace(spec: Mapping[str, Any]) -> float:
    grace = (spec.get("ContainerSpec") or {}).get("StopGracePeriod")
    return 10.0 if grace is None else int(grace) / 1e9


class Agent:
    def __init__(self, store: Store, node_id: str, executor: Executor,
                 clock: Callable[[], str]) -> None:
        self.store, self.node_id, self.executor, self.clock = store, node_id, executor, clock
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._net_names: dict[str, str] = {}
        self._ingress = ""  # the ingress network's id
        self._nets_ready: set[str] = set()
        self._nets_synced = False  # the first tick always syncs (leftovers of an earlier run)

    def tick(self) -> None:
        listing = self.store.list(TASKS)
        known = {obj.id for obj in listing.objects}
        self._sync_networks(listing.objects)
        for obj in listing.objects:
            task = Task.of(obj)
            if task.node_id == self.node_id:
                try:
                    self._step(obj, task)
                except errors.Conflict:
                    pass  # written meanwhile: the next tick sees the new version
        self._collect(known)

    def _step(self, obj: Object, task: Task) -> None:
        with self._lock:
            if task.id in self._busy:
                return
        if task.desired == "running" and task.state in STARTABLE:
            self._start(obj, task)
        elif task.state == "running" and task.desired == "running":
            self._observe(obj, task)
        elif task.desired != "running" and (not terminal(task.state)
                                            or task.desired == "remove"):
            self._background(task.id, lambda: self._shutdown(obj, task))

    def _sync_networks(self, tasks: list[Object]) -> None:
        networks = self.store.list(NETWORKS).objects
        if not networks and not self._nets_ready and self._nets_synced:
            return
        self._nets_synced = True
        self._net_names = {o.id: str(o.spec.get("Name", "")) for o in networks}
        self._ingress = next((o.id for o in networks if o.spec.get("Ingress")), "")
        wanted = agentnet.wanted(self.node_id, networks, self.store.list(NODES).objects, tasks,
                                 self.store.list(SERVICES).objects)
        try:
            self._nets_ready = set(self.executor.networks(wanted))
        except errors.DockyardError as exc:  # tasks without networks carry on meanwhile
            log.warning("swarm networks: %s", exc)
            self._nets_ready = set()

    def _write_status(self, obj: Object, status: dict[str, object]) -> None:
        self.store.update(obj.with_spec({**obj.spec, "Status": status}))

    def _start(self, obj: Object, task: Task) -> None:
        service_name = str((obj.spec.get("ServiceAnnotations") or {}).get("Name", ""))
        endpoint = (obj.spec.get("Endpoint") or {}).get("Spec") or {}
        nets = agentnet.task_networks(obj, self._net_names, self._ingress)
        if any(n.network_id not in self._nets_ready for n in nets):
            return  # its networks are not in place on this node yet
        run = Run(task, f"{task_name(service_name, task)}.{task.id}", service_name,
                  self.node_id, tuple(endpoint.get("Ports") or ()), nets)
        try:
            run = replace(run, files=task_files(self.store, task.spec))
            cid, pid = self.executor.start(run)
        except errors.DockyardError as exc:
            self._write_status(obj, task_status("rejected" if isinstance(exc, errors.NotFound)
                                                else "failed", "starting", self.clock(),
                                                err=str(exc)))
            return
        self._write_status(obj, task_status("running", "started", self.clock(),
                                            container_id=cid, pid=pid))

    def _observe(self, obj: Object, task: Task) -> None:
        state = self.executor.state(task.container_id) if task.container_id else None
        if state is not None and state.running:
            return
        if state is None:
            status = task_status("failed", "started", self.clock(),
                                 err="task: the container was removed")
        elif state.exit_code == 0:
            status = task_status("complete", "finished", self.clock(),
                                 container_id=task.container_id, exit_code=0)
        else:
            status = task_status("failed", "started", self.clock(),
                                 container_id=task.container_id, exit_code=state.exit_code,
                                 err=state.error or f"task: non-zero exit ({state.exit_code})")
        self._write_status(obj, status)

    def _shutdown(self, obj: Object, task: Task) -> None:
        cid = task.container_id
        if cid and not terminal(task.state):
            try:
                self.executor.stop(cid, _grace(task.spec))
            except errors.NotFound:
                pass
        if task.desired == "remove":
            if cid:
                try:
                    self.executor.remove(cid)
                except errors.NotFound:
                    pass
            self.store.delete(TASKS, task.id)
            return
        fresh = self.store.get(TASKS, task.id)
        state = self.executor.state(cid) if cid else None
        code = state.exit_code if state is not None else None
        self._write_status(fresh, task_status("shutdown", "shutdown", self.clock(),
                                              container_id=cid, exit_code=code))

    def _background(self, task_id: str, work: Callable[[], None]) -> None:
        with self._lock:
            self._busy.add(task_id)

        def run() -> None:
            try:
                work()
            except errors.NotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - retried on the next tick
                log.warning("task %s: %s", task_id, exc)
            finally:
                with self._lock:
                    self._busy.discard(task_id)

        threading.Thread(target=run, name=f"task-{task_id[:8]}", daemon=True).start()

    def _collect(self, known: set[str]) -> None:
        """Remove containers of tasks that no longer exist."""
        for task_id, cid in self.executor.containers().items():
            if task_id not in known:
                self._background(task_id, functools.partial(self._remove_quietly, cid))

    def _remove_quietly(self, cid: str) -> None:
        try:
            self.executor.stop(cid, 10.0)
            self.executor.remove(cid)
        except errors.NotFound:
            pass
