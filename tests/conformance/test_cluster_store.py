"""One suite for the cluster store, run against the in-memory twin and a real etcd.

The etcd cases use one etcd per module (each test under its own key root); lease cases use a
fake clock in memory and a 1 s ttl on etcd. The three-member case checks Raft for real:
killing a member loses neither writes nor watch events.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from dockyard import errors
from dockyard.cluster.etcdstore import EtcdStore, EtcdTLS
from dockyard.cluster.kvstore import KVStore
from dockyard.cluster.memstore import MemStore
from dockyard.cluster.store import (Check, Compacted, Delete, Event, Held, Leadership, Object,
                                    Put, Store)
from dockyard.testing import etcd

NEEDS_ETCD = pytest.mark.skipif(not etcd.available(),
                                reason=f"etcd is not installed ({etcd.ETCD} missing; "
                                       "apt-get install etcd-server)")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    store: KVStore
    short_ttl: int
    pass_time: Callable[[float], None]


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[etcd.EtcdProcess]:
    if not etcd.available():
        pytest.skip(f"etcd is not installed ({etcd.ETCD} missing)")
    server = etcd.single()
    yield server
    etcd.stop_single(server)


@pytest.fixture(params=["memory", pytest.param("etcd", marks=NEEDS_ETCD)])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds
        yield Harness(MemStore(clock=clock), 1, advance)
        return
    server = request.getfixturevalue("etcd_server")
    store = EtcdStore([server.endpoint], root=f"/t{uuid.uuid4().hex[:8]}")
    yield Harness(store, 1, time.sleep)
    store.close()


def eventually(check: Callable[[], bool], timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def events(watch: object, count: int) -> list[Event]:
    found = []
    for _ in range(count):
        event = watch.next(5)  # type: ignore[attr-defined]
        assert event is not None, f"only {len(found)} of {count} events arrived: {found}"
        found.append(event)
    return found


def test_both_implement_the_protocol(h: Harness) -> None:
    store: Store = h.store
    assert store.revision() >= 1


def test_create_get_list(h: Harness) -> None:
    s = h.store
    n1 = s.create(Object("nodes", "n1", {"state": "ready"}))
    assert n1.version > 0 and n1.created_at and n1.created_at == n1.updated_at
    s.create(Object("nodes", "n2", {"state": "down"}))
    s.create(Object("services", "web", {"replicas": 2}))
    assert s.get("nodes", "n1") == n1
    listing = s.list("nodes")
    assert [o.id for o in listing.objects] == ["n1", "n2"]
    assert listing.revision == s.revision()
    assert [o.id for o in s.list("nodes", prefix="n2").objects] == ["n2"]
    with pytest.raises(errors.NotFound, match="no such node: n3"):
        s.get("nodes", "n3")
    with pytest.raises(errors.Conflict, match="node n1 already exists"):
        s.create(Object("nodes", "n1", {}))
    with pytest.raises(errors.InvalidArgument):
        s.create(Object("Nodes/x", "n1", {}))


def test_update_checks_the_version(h: Harness) -> None:
    s = h.store
    first = s.create(Object("services", "web", {"replicas": 1}))
    second = s.update(first.with_spec({"replicas": 3}))
    assert second.version > first.version and second.created_at == first.created_at
    assert s.get("services", "web").spec == {"replicas": 3}
    with pytest.raises(errors.Conflict, match="expected version"):
        s.update(first.with_spec({"replicas": 5}))
    assert s.get("services", "web").spec == {"replicas": 3}
    s.delete("services", "web", version=second.version)
    with pytest.raises(errors.NotFound):
        s.update(second)
    with pytest.raises(errors.InvalidArgument):
        s.update(Object("services", "new", {}))


def test_delete(h: Harness) -> None:
    s = h.store
    obj = s.create(Object("tasks", "t1", {}))
    s.update(obj.with_spec({"state": "running"}))
    with pytest.raises(errors.Conflict):
        s.delete("tasks", "t1", version=obj.version)
    s.delete("tasks", "t1")
    with pytest.raises(errors.NotFound, match="no such task: t1"):
        s.delete("tasks", "t1")


def test_transaction_is_all_or_nothing(h: Harness) -> None:
    s = h.store
    node = s.create(Object("nodes", "n1", {"state": "ready"}))
    task = s.create(Object("tasks", "t1", {"node": ""}))
    commit = s.transaction([Check("nodes", "n1", node.version)],
                           [Put(task.with_spec({"node": "n1"})),
                            Put(Object("tasks", "t2", {"node": "n1"}))])
    assert [o.version for o in commit.objects] == [commit.revision] * 2
    assert s.get("tasks", "t1").spec == {"node": "n1"}
    s.update(node.with_spec({"state": "down"}))
    with pytest.raises(errors.Conflict, match="node n1 was modified"):
        s.transaction([Check("nodes", "n1", node.version)],
                      [Put(commit.objects[0].with_spec({"node": "n9"})),
                       Put(Object("tasks", "t3", {}))])
    before = s.revision()
    with pytest.raises(errors.Conflict, match="task t2 already exists"):
        s.transaction([], [Delete("tasks", "t1"), Put(Object("tasks", "t2", {}))])
    assert s.revision() == before
    assert s.get("tasks", "t1").spec == {"node": "n1"}
    assert [o.id for o in s.list("tasks").objects] == ["t1", "t2"]


def test_watch_order_and_resume(h: Harness) -> None:
    s = h.store
    s.create(Object("services", "old", {}))
    listing = s.list("services")
    watch = s.watch("services", since=listing.revision)
    a = s.create(Object("services", "a", {"n": 1}))
    s.create(Object("networks", "ignored", {}))
    s.update(a.with_spec({"n": 2}))
    s.create(Object("services", "b", {}))
    seen = events(watch, 3)
    assert [(e.type, e.object.id, e.object.spec) for e in seen] == [
        ("put", "a", {"n": 1}), ("put", "a", {"n": 2}), ("put", "b", {})]
    assert [e.revision for e in seen] == sorted(e.revision for e in seen)
    assert watch.next(0.2) is None
    watch.close()
    s.delete("services", "b")
    s.create(Object("services", "c", {}))
    resumed = s.watch("services", since=seen[-1].revision)
    assert [(e.type, e.object.id) for e in events(resumed, 2)] == [("delete", "b"), ("put", "c")]
    resumed.close()
    everything = s.watch(None, since=listing.revision)
    assert [e.object.id for e in events(everything, 6)] == ["a", "ignored", "a", "b", "b", "c"]
    everything.close()


def test_watch_across_a_delete(h: Harness) -> None:
    s = h.store
    watch = s.watch("nodes")
    first = s.create(Object("nodes", "n1", {"v": 1}))
    s.delete("nodes", "n1")
    again = s.create(Object("nodes", "n1", {"v": 2}))
    put, gone, back = events(watch, 3)
    watch.close()
    assert (put.type, gone.type, back.type) == ("put", "delete", "put")
    assert gone.object.spec == {"v": 1} and gone.object.version == first.version
    assert back.object.version == again.version > gone.revision > first.version


def test_watch_from_a_compacted_revision_asks_for_a_relist(h: Harness) -> None:
    s = h.store
    obj = s.create(Object("nodes", "n1", {"v": 0}))
    for i in range(1, 4):
        obj = s.update(obj.with_spec({"v": i}))
    s.compact(obj.version)
    watch = s.watch("nodes", since=obj.version - 3)
    with pytest.raises(Compacted) as caught:
        watch.next(5)
    watch.close()
    assert caught.value.compact_revision == obj.version
    listing = s.list("nodes")
    relisted = s.watch("nodes", since=listing.revision)
    s.update(listing.objects[0].with_spec({"v": 9}))
    assert events(relisted, 1)[0].object.spec == {"v": 9}
    relisted.close()


def test_lease_expiry_deletes_attached_objects(h: Harness) -> None:
    s = h.store
    lease = s.grant(h.short_ttl)
    s.create(Object("nodes", "n1", {}), lease=lease.id)
    kept = s.create(Object("nodes", "n2", {}))
    assert s.get("nodes", "n1").lease == lease.id
    assert s.keepalive(lease.id) >= 1
    watch = s.watch("nodes")
    h.pass_time(h.short_ttl + 0.5)
    eventually(lambda: [o.id for o in s.list("nodes").objects] == ["n2"])
    event = events(watch, 1)[0]
    watch.close()
    assert (event.type, event.object.id) == ("delete", "n1")
    with pytest.raises(errors.NotFound):
        s.keepalive(lease.id)
    other = s.grant(30)
    s.update(kept, lease=other.id)
    s.revoke(other.id)
    assert s.list("nodes").objects == []


def test_leader_election_hands_over_when_the_lease_expires(h: Harness) -> None:
    s = h.store
    short, long = s.grant(h.short_ttl), s.grant(60)
    first = s.campaign("orchestrator", "manager-a", short.id, timeout=5)
    assert s.leader("orchestrator") == "manager-a"
    won: list[Leadership] = []
    waiter = threading.Thread(target=lambda: won.append(
        s.campaign("orchestrator", "manager-b", long.id, timeout=15)))
    waiter.start()
    time.sleep(0.3)
    assert not won and s.leader("orchestrator") == "manager-a"
    s.transaction([Held(first)], [Put(Object("services", "by-a", {}))])
    h.pass_time(h.short_ttl + 0.5)
    waiter.join(15)
    assert won and s.leader("orchestrator") == "manager-b"
    with pytest.raises(errors.Conflict, match="no longer the leader"):
        s.transaction([Held(first)], [Put(Object("services", "late", {}))])
    s.transaction([Held(won[0])], [Put(Object("services", "by-b", {}))])
    s.resign(won[0])
    assert s.leader("orchestrator") is None
    blocker = s.campaign("scheduler", "x", long.id, timeout=5)
    with pytest.raises(errors.Unavailable, match="timed out"):
        s.campaign("scheduler", "y", s.grant(60).id, timeout=0.3)
    assert s.leader("scheduler") == "x"  # the timed-out candidate withdrew
    s.resign(blocker)


@pytest.mark.parametrize("racers", [8])
def test_racing_compare_and_swap_has_exactly_one_winner(h: Harness, racers: int) -> None:
    s = h.store
    seen = s.create(Object("services", "web", {"replicas": 1}))
    barrier = threading.Barrier(racers)
    results: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        for attempt in (lambda: s.update(seen.with_spec({"replicas": i})),
                        lambda: s.create(Object("tasks", "slot-1", {"by": i}))):
            try:
                attempt()
                results.append("won")
            except errors.Conflict:
                results.append("lost")
    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["lost"] * (2 * racers - 2) + ["won"] * 2
    assert s.get("services", "web").version > seen.version


@NEEDS_ETCD
def test_three_member_cluster_survives_losing_a_member() -> None:
    cluster = etcd.EtcdCluster().start()
    try:
        leader = cluster.leader()  # the client talks to the leader first: kill it
        others = [m.endpoint for m in cluster.members if m is not leader]
        s = EtcdStore([leader.endpoint, *others], timeout=2, retry_for=10)
        obj = s.create(Object("nodes", "n1", {"v": 0}))
        watch = s.watch("nodes", since=obj.version)
        obj = s.update(obj.with_spec({"v": 1}))
        assert events(watch, 1)[0].object.spec == {"v": 1}
        leader.kill()
        for i in range(2, 6):
            obj = s.update(obj.with_spec({"v": i}))
        assert s.get("nodes", "n1").spec == {"v": 5}
        assert [e.object.spec["v"] for e in events(watch, 4)] == [2, 3, 4, 5]
        assert watch.next(0.3) is None
        watch.close()
        s.close()
    finally:
        cluster.stop()


@NEEDS_ETCD
def test_mutual_tls() -> None:
    server = etcd.single(tls=True)
    try:
        certs = server.tls
        assert certs is not None and server.endpoint.startswith("https://")
        s = EtcdStore([server.endpoint], tls=EtcdTLS(str(certs / "ca.crt"),
                                                     str(certs / "client.crt"),
                                                     str(certs / "client.key")))
        created = s.create(Object("nodes", "n1", {}))
        watch = s.watch("nodes", since=created.version - 1)
        assert events(watch, 1)[0].object.id == "n1"
        watch.close()
        s.close()
        anonymous = EtcdStore([server.endpoint], tls=EtcdTLS(str(certs / "ca.crt")),
                              retry_for=0.5)
        with pytest.raises(errors.Unavailable):
            anonymous.get("nodes", "n1")
        anonymous.close()
    finally:
        etcd.stop_single(server)
