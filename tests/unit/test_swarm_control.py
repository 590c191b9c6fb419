"""The swarm's control loop on the in-memory store: orchestrator + scheduler (manager.tick)
and agents with a recording executor, node by node."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from dockyard import errors
from dockyard.cluster import manager, placement
from dockyard.cluster.agent import Agent, ContainerState, Run
from dockyard.cluster.memstore import MemStore
from dockyard.cluster.objects import HEARTBEATS, NODES, SERVICES, TASKS, Node, Task
from dockyard.cluster.store import Object
from dockyard.util.timefmt import now_rfc3339


@dataclass
class FakeExecutor:
    """Containers as a dict; ``exit(cid, code)`` ends one as a real one would end."""
    node: str
    running: dict[str, ContainerState] = field(default_factory=dict)
    by_task: dict[str, str] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    stopped: list[str] = field(default_factory=list)
    fail_image: str = ""

    def start(self, run: Run) -> tuple[str, int]:
        image = (run.task.spec.get("ContainerSpec") or {}).get("Image")
        if image == self.fail_image:
            raise errors.NotFound(f"No such image: {image}")
        cid = f"{self.node}-c{next(self.ids)}"
        self.runs.append(run)
        self.running[cid] = ContainerState(True, 0)
        self.by_task[run.task.id] = cid
        return cid, 100

    def state(self, container_id: str) -> ContainerState | None:
        return self.running.get(container_id)

    def stop(self, container_id: str, timeout: float) -> None:
        self.stopped.append(container_id)
        if container_id in self.running:
            self.running[container_id] = ContainerState(False, 143)

    def remove(self, container_id: str) -> None:
        self.running.pop(container_id, None)
        self.by_task = {t: c for t, c in self.by_task.items() if c != container_id}

    def containers(self) -> dict[str, str]:
        return dict(self.by_task)

    def exit(self, container_id: str, code: int) -> None:
        self.running[container_id] = ContainerState(False, code)

    nets: list = field(default_factory=list)  # the overlay networks last asked for
    runs: list = field(default_factory=list)

    def networks(self, wanted) -> set[str]:  # type: ignore[no-untyped-def]
        self.nets = list(wanted)
        return {n.id for n in wanted}

    def release_networks(self, force: bool) -> None:
        self.nets = []


class Cluster:
    def __init__(self, nodes: dict[str, str]) -> None:
        self.store = MemStore()
        self.executors = {}
        self.agents = {}
        for node_id, role in nodes.items():
            self.store.create(Object(NODES, node_id, {
                "Spec": {"Role": role, "Availability": "active", "Labels": {}},
                "Description": {"Hostname": f"host-{node_id}"}}))
            self.store.create(Object(HEARTBEATS, node_id, {}))
            ex = FakeExecutor(node_id)
            self.executors[node_id] = ex
            self.agents[node_id] = Agent(self.store, node_id, ex, now_rfc3339)

    def service(self, name: str, replicas: int = 1, **template: object) -> Object:
        tmpl = {"ContainerSpec": {"Image": "bb"}, "RestartPolicy": {"Delay": 0}, **template}
        return self.store.create(Object(SERVICES, f"svc-{name}", {"Spec": {
            "Name": name, "TaskTemplate": tmpl, "Mode": {"Replicated": {"Replicas": replicas}}}}))

    def settle(self, rounds: int = 4) -> None:
        for _ in range(rounds):
            manager.tick(self.store)
            for agent in self.agents.values():
                agent.tick()
            for agent in self.agents.values():  # background shutdowns
                for thread in list(__import__("threading").enumerate()):
                    if thread.name.startswith("task-"):
                        thread.join(2)

    def tasks(self, service: str = "") -> list[Task]:
        return [Task.of(o) for o in self.store.list(TASKS).objects
                if not service or o.spec["ServiceID"] == f"svc-{service}"]

    def running(self, service: str) -> list[Task]:
        return [t for t in self.tasks(service) if t.state == "running" and t.desired == "running"]


def test_replicas_spread_over_nodes_and_run() -> None:
    c = Cluster({"n1": "manager", "n2": "worker"})
    c.service("web", replicas=3)
    c.settle()
    running = c.running("web")
    assert sorted(t.slot for t in running) == [1, 2, 3]
    assert sorted(sum(1 for t in running if t.node_id == n) for n in ("n1", "n2")) == [1, 2]
    assert all(t.container_id for t in running)


def test_scale_down_shuts_down_the_highest_slots() -> None:
    c = Cluster({"n1": "manager"})
    svc = c.service("web", replicas=3)
    c.settle()
    spec = dict(svc.spec["Spec"])
    spec["Mode"] = {"Replicated": {"Replicas": 1}}
    c.store.update(svc.with_spec({"Spec": spec}))
    c.settle()
    assert [t.slot for t in c.running("web")] == [1]
    assert {t.state for t in c.tasks("web") if t.slot > 1} == {"shutdown"}
    assert len(c.executors["n1"].stopped) == 2


def test_failed_task_is_replaced_per_restart_policy() -> None:
    c = Cluster({"n1": "manager"})
    c.service("web")
    c.settle()
    first = c.running("web")[0]
    c.executors["n1"].exit(first.container_id, 3)
    c.settle()
    tasks = c.tasks("web")
    assert [t.state for t in tasks if t.id == first.id] == ["failed"]
    assert len(c.running("web")) == 1 and c.running("web")[0].id != first.id


def test_restart_condition_none_leaves_the_slot_empty() -> None:
    c = Cluster({"n1": "manager"})
    c.service("job", RestartPolicy={"Condition": "none"})
    c.settle()
    c.executors["n1"].exit(c.running("job")[0].container_id, 0)
    c.settle()
    assert [t.state for t in c.tasks("job")] == ["complete"]


def test_node_down_moves_its_tasks() -> None:
    c = Cluster({"n1": "manager", "n2": "worker"})
    c.service("web", replicas=2)
    c.settle()
    c.store.delete(HEARTBEATS, "n2")
    del c.agents["n2"]
    c.settle()
    assert [t.node_id for t in c.running("web")] == ["n1", "n1"]


def test_constraints_and_pending_reason() -> None:
    c = Cluster({"n1": "manager", "n2": "worker"})
    c.service("db", replicas=2, Placement={"Constraints": ["node.role==worker"]})
    c.service("nowhere", Placement={"Constraints": ["node.labels.zone==mars"]})
    c.settle()
    assert {t.node_id for t in c.running("db")} == {"n2"}
    (pending,) = c.tasks("nowhere")
    assert pending.state == "pending"
    status = c.store.get(TASKS, pending.id).spec["Status"]
    assert "constraints not satisfied on 2 nodes" in status["Err"]


def test_rolling_update_replaces_every_task() -> None:
    c = Cluster({"n1": "manager"})
    svc = c.service("web", replicas=2)
    c.settle()
    old = {t.id for t in c.running("web")}
    spec = dict(svc.spec["Spec"])
    spec["TaskTemplate"] = {**spec["TaskTemplate"], "ContainerSpec": {"Image": "bb:2"}}
    c.store.update(svc.with_spec({"Spec": spec}))
    c.settle(rounds=8)
    now = c.running("web")
    assert len(now) == 2 and not old & {t.id for t in now}
    assert {t.spec["ContainerSpec"]["Image"] for t in now} == {"bb:2"}


def test_removed_service_removes_tasks_and_containers() -> None:
    c = Cluster({"n1": "manager"})
    c.service("web", replicas=2)
    c.settle()
    c.store.delete(SERVICES, "svc-web")
    c.settle()
    assert c.tasks("web") == [] and c.executors["n1"].running == {}


def test_missing_image_rejects_the_task() -> None:
    c = Cluster({"n1": "manager"})
    c.executors["n1"].fail_image = "nope"
    c.service("web", ContainerSpec={"Image": "nope"}, RestartPolicy={"Condition": "none"})
    c.settle()
    assert [t.state for t in c.tasks("web")] == ["rejected"]


def test_placement_parsing() -> None:
    node = Node("n1", "h1", "manager", "active", {"zone": "a"}, True, 1)
    assert placement.matches([placement.parse("node.role == manager")], node)
    assert not placement.matches([placement.parse("node.labels.zone!=a")], node)
    assert placement.matches([placement.parse("node.hostname==H1")], node)
    with pytest.raises(errors.InvalidArgument):
        placement.parse("node.color==red")


def test_drained_node_hands_its_tasks_over() -> None:
    c = Cluster({"n1": "manager", "n2": "worker"})
    c.service("web", replicas=2)
    c.settle()
    node = c.store.get(NODES, "n2")
    c.store.update(node.with_spec({**node.spec, "Spec": {**node.spec["Spec"],
                                                         "Availability": "drain"}}))
    c.settle()
    assert [t.node_id for t in c.running("web")] == ["n1", "n1"]
    assert c.executors["n2"].stopped
