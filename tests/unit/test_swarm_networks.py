"""Swarm networks on the in-memory store: creating them (subnets, VNIs), the allocator's
addresses for services, tasks and nodes, what each agent hands its executor, removal."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from dockyard import errors
from dockyard.cluster import manager, netalloc
from dockyard.cluster.agentnet import Peer
from dockyard.cluster.membership import Membership
from dockyard.cluster.netviews import NetworkViews
from dockyard.cluster.objects import NODES, SERVICES, TASKS
from dockyard.cluster.store import Object, Store
from dockyard.types.swarm import NetworkRequest
from tests.unit.test_swarm_control import Cluster


def views(store: Store, role: str = "manager") -> NetworkViews:
    v = NetworkViews()
    v.member = Membership("m", role, "127.0.0.1", [])
    v._store = store
    v._manager_store = lambda: store  # type: ignore[method-assign]
    return v


def two_nodes() -> Cluster:
    c = Cluster({"m": "manager", "w": "worker"})
    for node_id, port in (("m", 47001), ("w", 47002)):
        obj = c.store.get(NODES, node_id)
        c.store.update(obj.with_spec({**obj.spec, "Addr": "127.0.0.1", "DataPort": port}))
    return c


def test_subnets_skip_ingress_other_networks_and_local_ones() -> None:
    assert netalloc.choose_subnet([], []) == IPv4Network("10.0.1.0/24")
    assert netalloc.choose_subnet([IPv4Network("10.0.1.0/24")],
                                  [IPv4Network("10.0.0.0/23"), IPv4Network("10.0.2.0/25")]) \
        == IPv4Network("10.0.3.0/24")
    with pytest.raises(errors.Forbidden):
        netalloc.check_subnet("10.0.3.0/24", "", [IPv4Network("10.0.3.128/25")])
    with pytest.raises(errors.InvalidArgument):
        netalloc.check_subnet("10.9.0.0/24", "10.8.0.1", [])
    with pytest.raises(errors.InvalidArgument):
        netalloc.check_subnet("nonsense", "", [])


def test_create_list_and_refusals() -> None:
    c = two_nodes()
    v = views(c.store)
    a = v.create_network(NetworkRequest("front", taken=["10.0.1.0/24"], labels={"k": "v"}))
    b = v.create_network(NetworkRequest("back", subnet="192.168.77.0/24", attachable=True))
    assert a.spec["IPAM"]["Config"] == [{"Subnet": "10.0.2.0/24", "Gateway": "10.0.2.1"}]
    assert b.spec["IPAM"]["Config"] == [{"Subnet": "192.168.77.0/24",
                                         "Gateway": "192.168.77.1"}]
    assert (a.spec["Scope"], a.spec["Driver"], a.spec["Labels"]) == ("swarm", "overlay",
                                                                     {"k": "v"})
    vnis = [o.spec["Options"][netalloc.VNI_OPTION] for o in (a, b)]
    assert vnis == ["4097", "4098"]
    assert {o.id for o in v.networks()} == {a.id, b.id}
    assert v.network("front").id == a.id and v.network(b.id[:6]).id == b.id
    with pytest.raises(errors.Conflict, match="network with name front already exists"):
        v.create_network(NetworkRequest("front"))
    with pytest.raises(errors.Forbidden, match="Pool overlaps"):
        v.create_network(NetworkRequest("again", subnet="10.0.2.128/25"))
    with pytest.raises(errors.Forbidden, match="Cannot create a multi-host network from a "
                                               "worker node"):
        views(c.store, "worker").create_network(NetworkRequest("w"))
    with pytest.raises(errors.NotFound, match="network nope not found"):
        v.network("nope")
    inactive = views(c.store)
    inactive.member = None
    with pytest.raises(errors.Unavailable, match="not a swarm manager"):
        inactive.create_network(NetworkRequest("x"))
    assert inactive.networks() == []


def test_addresses_peers_and_names_for_a_service_on_two_nodes() -> None:
    c = two_nodes()
    v = views(c.store)
    net = v.create_network(NetworkRequest("app"))
    spec = v.resolve_networks({"Name": "web", "TaskTemplate": {
        "ContainerSpec": {"Image": "bb"}, "Networks": [{"Target": "app", "Aliases": ["www"]}]},
        "Mode": {"Replicated": {"Replicas": 2}}})
    assert spec["TaskTemplate"]["Networks"] == [{"Target": net.id, "Aliases": ["www"]}]
    legacy = v.resolve_networks({"TaskTemplate": {}, "Networks": [{"Target": net.id[:5]}]})
    assert legacy == {"TaskTemplate": {"Networks": [{"Target": net.id}]}}
    c.store.create(Object(SERVICES, "svc-web", {"Spec": spec, "Endpoint": {"Spec": {}}}))
    c.settle(6)

    service = c.store.get(SERVICES, "svc-web")
    [vip] = service.spec["Endpoint"]["VirtualIPs"]
    assert vip == {"NetworkID": net.id, "Addr": "10.0.1.2/24"}
    tasks = c.store.list(TASKS).objects
    assert {t.spec["NodeID"] for t in tasks} == {"m", "w"}, "spread over both nodes"
    addresses = {t.spec["NodeID"]: netalloc.task_addresses(t)[net.id] for t in tasks}
    nodes = {n: c.store.get(NODES, n).spec[netalloc.NODE_ATTACHMENTS][net.id] for n in "mw"}
    every = [vip["Addr"].split("/")[0], *addresses.values(), *nodes.values()]
    assert len(set(every)) == 5 and all(IPv4Address(a) in IPv4Network("10.0.1.0/24")
                                        for a in every)
    attachment = tasks[0].spec["NetworksAttachments"][0]
    assert attachment["Network"]["ID"] == net.id and attachment["Aliases"] == ["www"]
    assert attachment["Network"]["Spec"]["Name"] == "app"

    for node_id, other, port in (("m", "w", 47002), ("w", "m", 47001)):
        ex = c.executors[node_id]
        [state] = ex.nets
        assert (state.id, state.vni, state.address) == (net.id, 4097, nodes[node_id])
        assert state.peers == (Peer("127.0.0.1", port),)
        assert state.remote == ((addresses[other], Peer("127.0.0.1", port)),)
        names = dict((n, ip) for n, ip in state.names if not n.startswith("web."))
        assert {n for n, _ in state.names} >= {"web", "tasks.web", "www"}
        assert sorted(ip for n, ip in state.names if n == "tasks.web") == \
            sorted(addresses.values())
        assert names["www"] in addresses.values()
        [run] = ex.runs
        assert [(n.name, n.address) for n in run.networks] == [("app", addresses[node_id])]

    with pytest.raises(errors.InvalidArgument, match=f"network {net.id} is in use by service "
                                                     "svc-web"):
        v.remove_network("app")
    c.store.delete(SERVICES, "svc-web")
    c.settle(4)
    assert not c.store.list(TASKS).objects
    assert all(ex.nets == [] for ex in c.executors.values()), "torn down once unused"
    v.remove_network(net.id)
    assert v.networks() == []
    c.settle(2)
    assert netalloc.NODE_ATTACHMENTS not in c.store.get(NODES, "m").spec or \
        c.store.get(NODES, "m").spec[netalloc.NODE_ATTACHMENTS] == {}


def test_a_task_waits_for_a_missing_network_and_dnsrr_gets_no_vip() -> None:
    c = two_nodes()
    c.store.create(Object(SERVICES, "svc-x", {"Spec": {
        "Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "bb"},
                                      "Networks": [{"Target": "gone"}]},
        "EndpointSpec": {"Mode": "dnsrr"}, "Mode": {"Replicated": {"Replicas": 1}}}}))
    c.settle(3)
    [task] = c.store.list(TASKS).objects
    assert not task.spec["NodeID"] and "NetworksAttachments" not in task.spec
    assert "VirtualIPs" not in (c.store.get(SERVICES, "svc-x").spec.get("Endpoint") or {})
    with pytest.raises(errors.NotFound):
        views(c.store).resolve_networks({"Networks": [{"Target": "gone"}]})
    assert manager.tick(c.store) == 0, "nothing to do: stable"
