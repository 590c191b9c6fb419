"""Swarm membership operations without daemons: the cluster spec on update (defaults, token
rotation, refusals), role changes' checks in ``NodeViews`` over a MemStore, the quorum rule,
and the body checks of ``POST /swarm/update``."""
from __future__ import annotations

from typing import Any

import pytest

from dockyard import errors
from dockyard.api import swarmspecs
from dockyard.cluster import etcdmembers
from dockyard.cluster import membership as ms
from dockyard.cluster.etcdmembers import EtcdMember
from dockyard.cluster.memstore import MemStore
from dockyard.cluster.nodeviews import NodeViews, cluster_spec
from dockyard.cluster.objects import CLUSTER, CLUSTER_ID, HEARTBEATS, NODES
from dockyard.cluster.store import Object


class Views(NodeViews):
    def __init__(self, store: MemStore) -> None:
        super().__init__()
        self._store = store
        self.member = ms.Membership("a", "manager", "127.0.0.1", ["http://127.0.0.1:1"])

    def _manager_store(self) -> MemStore:  # type: ignore[override]
        assert self._store is not None
        return self._store  # type: ignore[return-value]

    def _leader(self) -> str | None:
        return "a"

    def state(self) -> str:
        return "active"


def node(store: MemStore, node_id: str, role: str, alive: bool = True) -> None:
    store.create(Object(NODES, node_id, {
        "Spec": {"Labels": {}, "Role": role, "Availability": "active"},
        "Description": {"Hostname": f"host-{node_id}"}, "Addr": "127.0.0.1",
        "ManagerAddr": "127.0.0.1:2377" if role == "manager" else ""}))
    if alive:
        store.create(Object(HEARTBEATS, node_id, {}))


@pytest.fixture
def views() -> Views:
    store = MemStore()
    store.create(Object(CLUSTER, CLUSTER_ID, {"Spec": cluster_spec({}),
                                              "JoinTokens": ms.new_tokens()}))
    return Views(store)


def cluster(views: Views) -> Object:
    assert views._store is not None
    return views._store.get(CLUSTER, CLUSTER_ID)


def test_cluster_spec_gets_swarmkits_defaults_and_keeps_what_is_given() -> None:
    spec = cluster_spec({"Orchestration": {"TaskHistoryRetentionLimit": 2}, "Raft": None,
                         "Labels": {"x": "y"}})
    assert spec["Orchestration"] == {"TaskHistoryRetentionLimit": 2}
    assert spec["Raft"]["ElectionTick"] == 10 and spec["Raft"]["SnapshotInterval"] == 10000
    assert spec["Dispatcher"] == {"HeartbeatPeriod": 5_000_000_000}
    assert spec["CAConfig"] == {"NodeCertExpiry": 2160 * 3600 * 10**9}
    assert (spec["Name"], spec["Labels"]) == ("default", {"x": "y"})


def test_rotated_token_keeps_the_swarm_and_changes_the_secret() -> None:
    tokens = ms.new_tokens()
    new = ms.rotated(tokens["Worker"])
    ms.check_token(new)
    assert new != tokens["Worker"]
    assert new.split("-")[:3] == tokens["Worker"].split("-")[:3]
    assert len(new.split("-")[3]) == 25


def test_update_swarm_stores_the_spec_and_rotates_only_what_is_asked(views: Views) -> None:
    before = cluster(views)
    views.update_swarm(before.version, {"Orchestration": {"TaskHistoryRetentionLimit": 9}},
                       rotate_worker=True)
    after = cluster(views)
    assert after.spec["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 9
    assert after.spec["Spec"]["Dispatcher"]["HeartbeatPeriod"] == 5_000_000_000
    old, new = before.spec["JoinTokens"], after.spec["JoinTokens"]
    assert new["Worker"] != old["Worker"] and new["Manager"] == old["Manager"]
    with pytest.raises(errors.InvalidArgument, match="update out of sequence"):
        views.update_swarm(before.version, {})
    with pytest.raises(errors.NotImplementedYet, match="root CA"):
        views.update_swarm(after.version, {"CAConfig": {"ForceRotate": 1}})
    views.update_swarm(after.version, {}, rotate_manager=True)
    assert cluster(views).spec["JoinTokens"]["Manager"] != old["Manager"]


def test_demoting_the_last_manager_is_refused(views: Views) -> None:
    assert views._store is not None
    node(views._store, "a", "manager")
    node(views._store, "w", "worker")
    current = views._store.get(NODES, "a")
    with pytest.raises(errors.InvalidArgument, match="rpc error: code = FailedPrecondition "
                       "desc = attempting to demote the last manager of the swarm"):
        views.update_node("a", current.version, {"Role": "worker", "Availability": "active"})
    assert views._store.get(NODES, "a").spec["Spec"]["Role"] == "manager"


def test_demotion_checks_raft_membership_and_quorum(views: Views,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert views._store is not None
    for name in ("a", "b", "c"):
        node(views._store, name, "manager")
    members = [EtcdMember(str(i), n, (), (f"http://{n}:1",)) for i, n in enumerate("abc")]
    up = {"http://a:1"}
    monkeypatch.setattr(etcdmembers, "members", lambda endpoints: members)
    monkeypatch.setattr(etcdmembers, "healthy", lambda url: url in up)
    removed: list[str] = []
    monkeypatch.setattr(etcdmembers, "remove", lambda endpoints, name: removed.append(name))
    version = views._store.get(NODES, "b").version
    with pytest.raises(errors.InvalidArgument, match="this would result in a loss of quorum"):
        views.update_node("b", version, {"Role": "worker"})
    up.add("http://c:1")
    updated = views.update_node("b", version, {"Role": "worker"})
    assert updated.spec["Spec"]["Role"] == "worker" and updated.spec["ManagerAddr"] == ""
    assert removed == []  # b is alive: it leaves the Raft group itself
    views._store.delete(HEARTBEATS, "c")
    members[:] = [m for m in members if m.name != "b"]
    up.add("http://b:1")
    views.update_node("c", views._store.get(NODES, "c").version, {"Role": "worker"})
    assert removed == ["c"]  # c is down: its member is removed for it
    node(views._store, "d", "worker")
    promoted = views.update_node("d", views._store.get(NODES, "d").version, {"Role": "manager"})
    assert promoted.spec["Spec"]["Role"] == "manager"
    with pytest.raises(errors.NotFound, match="can't find manager in raft memberlist"):
        views.update_node("d", promoted.version, {"Role": "worker"})


def test_quorum_rule_counts_the_members_left(monkeypatch: pytest.MonkeyPatch) -> None:
    members = [EtcdMember(n, n, (), (f"http://{n}:1",)) for n in "abc"]
    up = {"http://a:1", "http://b:1", "http://c:1"}
    monkeypatch.setattr(etcdmembers, "healthy", lambda url: url in up)
    assert etcdmembers.can_remove(members, "b")
    up.discard("http://c:1")
    assert not etcdmembers.can_remove(members, "b")  # a alone of a, c
    assert etcdmembers.can_remove(members, "c")  # a and b of a, b
    assert not etcdmembers.can_remove(members[:1], "a")  # the last member


def test_a_manager_cannot_be_removed_even_by_force(views: Views) -> None:
    assert views._store is not None
    node(views._store, "a", "manager")
    node(views._store, "m", "manager", alive=False)
    with pytest.raises(errors.InvalidArgument, match="node m is a cluster manager and is a "
                       "member of the raft cluster. It must be demoted to worker before "
                       "removal"):
        views.remove_node("m", force=True)


@pytest.mark.parametrize("body,error,text", [
    ({"CAConfig": {"NodeCertExpiry": 60 * 10**9}}, errors.InvalidArgument,
     "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"),
    ({"Dispatcher": {"HeartbeatPeriod": -1}}, errors.InvalidArgument,
     "heartbeat time period cannot be a negative duration"),
    ({"Orchestration": {"TaskHistoryRetentionLimit": "5"}}, errors.InvalidArgument,
     "cannot unmarshal string into Go struct field Spec.Orchestration."
     "TaskHistoryRetentionLimit of type int64"),
    ({"Raft": []}, errors.InvalidArgument, "swarm.RaftConfig"),
    ({"EncryptionConfig": {"AutoLockManagers": True}}, errors.NotImplementedYet,
     "autolock is not supported"),
    ({"CAConfig": {"ExternalCAs": [{"Protocol": "cfssl", "URL": "https://ca"}]}},
     errors.NotImplementedYet, "root CA"),
    ([], errors.InvalidArgument, "swarm.Spec"),
])
def test_bad_swarm_update_bodies(body: Any, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        swarmspecs.swarm_spec(body)


def test_good_swarm_update_body_passes() -> None:
    body = {"Name": "default", "CAConfig": {"NodeCertExpiry": 3600 * 10**9},
            "Dispatcher": {"HeartbeatPeriod": 0}, "EncryptionConfig": {"AutoLockManagers": False}}
    assert swarmspecs.swarm_spec(body) == body
