"""The routing mesh's decisions on the in-memory store: the ingress network, the service's
Endpoint (ports, VIP), task and node addresses on ingress, the mesh each node's agent hands
its executor, the refusals (port in use, removing ingress, attaching to it)."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from dockyard import errors
from dockyard.cluster import netalloc
from dockyard.cluster.agent import Run
from dockyard.cluster.agentnet import MeshPort, TaskNet
from dockyard.cluster.objects import NODES, SERVICES, TASKS, Task
from dockyard.cluster.store import Object
from dockyard.daemon.swarmexec import create_body
from tests.unit.test_swarm_control import Cluster
from tests.unit.test_swarm_networks import views

INGRESS = IPv4Network("10.0.0.0/24")


def mesh_cluster() -> Cluster:
    c = Cluster({"m": "manager", "w": "worker"})
    for node_id, port in (("m", 47001), ("w", 47002)):
        obj = c.store.get(NODES, node_id)
        c.store.update(obj.with_spec({**obj.spec, "Addr": "127.0.0.1", "DataPort": port}))
    c.store.create(views(c.store).ingress_network())
    return c


def meshed_service(c: Cluster, name: str, ports: list[dict[str, object]],
                   replicas: int = 1) -> Object:
    spec = {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "bb"}},
            "Mode": {"Replicated": {"Replicas": replicas}},
            "EndpointSpec": {"Mode": "vip", "Ports": ports}}
    views(c.store).check_ports(spec)
    return c.store.create(Object(SERVICES, f"svc-{name}", {
        "Spec": spec, "Endpoint": {"Spec": spec["EndpointSpec"]}}))


def test_ingress_network_as_docker_makes_it() -> None:
    c = mesh_cluster()
    [net] = views(c.store).networks()
    assert net.spec["Name"] == "ingress" and net.spec["Ingress"] is True
    assert net.spec["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert net.spec["Options"] == {netalloc.VNI_OPTION: "4096"}
    assert (net.spec["Scope"], net.spec["Driver"], net.spec["Internal"]) == \
        ("swarm", "overlay", False)
    c.settle(2)
    assert all(ex.nets == [] for ex in c.executors.values()), "nothing until a port is meshed"


def test_a_published_port_is_meshed_on_every_node() -> None:
    c = mesh_cluster()
    ingress = views(c.store).network("ingress")
    meshed_service(c, "web", [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                               "PublishMode": "ingress"},
                              {"Protocol": "udp", "TargetPort": 53}])
    c.settle(6)
    service = c.store.get(SERVICES, "svc-web")
    endpoint = service.spec["Endpoint"]
    assert endpoint["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 30000,
         "PublishMode": "ingress"}]
    [vip] = endpoint["VirtualIPs"]
    assert vip["NetworkID"] == ingress.id and IPv4Address(vip["Addr"].split("/")[0]) in INGRESS
    [task] = c.store.list(TASKS).objects
    [attachment] = task.spec["NetworksAttachments"]
    assert attachment["Network"]["ID"] == ingress.id
    assert attachment["Network"]["Spec"]["Ingress"] is True
    address = netalloc.task_addresses(task)[ingress.id]
    node_addresses = {n: c.store.get(NODES, n).spec[netalloc.NODE_ATTACHMENTS][ingress.id]
                      for n in "mw"}
    assert len({address, vip["Addr"].split("/")[0], *node_addresses.values()}) == 4

    # both nodes carry ingress and the mesh, the one without the task too
    for node_id, other in (("m", "w"), ("w", "m")):
        [state] = c.executors[node_id].nets
        assert state.ingress and state.id == ingress.id and state.names == ()
        assert state.address == node_addresses[node_id]
        assert [p.port for p in state.peers] == [47001 if other == "m" else 47002]
        assert state.mesh == (MeshPort("tcp", 8080, 80, (address,)),
                              MeshPort("udp", 30000, 53, (address,)))
    runner = task.spec["NodeID"]
    [run] = c.executors[runner].runs
    assert [(n.name, n.ingress) for n in run.networks] == [("ingress", True)]

    # the dynamic port stays; another service cannot take a meshed port
    c.settle(2)
    assert c.store.get(SERVICES, "svc-web").spec["Endpoint"]["Ports"][1]["PublishedPort"] \
        == 30000
    for port in (8080, 30000):
        proto = "tcp" if port == 8080 else "udp"
        with pytest.raises(errors.InvalidArgument, match=f"port '{port}' is already in use "
                           f"by service 'web' \\(svc-web\\) as an ingress port"):
            meshed_service(c, "other", [{"Protocol": proto, "TargetPort": 1,
                                         "PublishedPort": port}])
    meshed_service(c, "udp8080", [{"Protocol": "udp", "TargetPort": 1, "PublishedPort": 8080}])
    with pytest.raises(errors.InvalidArgument, match="ingress network cannot be removed "
                                                     "because service svc-"):
        views(c.store).remove_network("ingress")
    with pytest.raises(errors.InvalidArgument, match="Service cannot be explicitly attached "
                                                     'to the ingress network "ingress"'):
        views(c.store).resolve_networks({"TaskTemplate": {"Networks": [
            {"Target": "ingress"}]}})

    # scaled to zero: the listeners stay, with no backend; removed: ingress goes everywhere
    c.store.delete(SERVICES, "svc-udp8080")
    obj = c.store.get(SERVICES, "svc-web")
    spec = {**obj.spec["Spec"], "Mode": {"Replicated": {"Replicas": 0}}}
    c.store.update(obj.with_spec({**obj.spec, "Spec": spec}))
    c.settle(4)
    for ex in c.executors.values():
        [state] = ex.nets
        assert [(m.port, m.backends) for m in state.mesh] == [(8080, ()), (30000, ())]
    c.store.delete(SERVICES, "svc-web")
    c.settle(4)
    assert all(ex.nets == [] for ex in c.executors.values())
    assert all(ingress.id not in c.store.get(NODES, n).spec[netalloc.NODE_ATTACHMENTS]
               for n in "mw")
    views(c.store).remove_network("ingress")


def test_the_task_container_publishes_only_host_ports() -> None:
    c = mesh_cluster()
    c.settle(1)
    task = Task("t1", "svc-web", 1, "m", "running", "assigned", {"ContainerSpec": {
        "Image": "bb"}}, "", 1)
    run = Run(task, "web.1.t1", "web", "m", (
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 9090, "PublishMode": "host"}),
        (TaskNet("ing", "ingress", "10.0.0.3", (), True), TaskNet("app", "app", "10.0.1.3")))
    body = create_body(run)
    assert body["HostConfig"]["PortBindings"] == {"81/tcp": [{"HostIp": "",
                                                             "HostPort": "9090"}]}
    assert body["HostConfig"]["NetworkMode"] == "app"
    assert set(body["NetworkingConfig"]["EndpointsConfig"]) == {"ingress", "app"}


def test_publishing_a_port_later_replaces_the_tasks() -> None:
    """``service update --publish-add``: the tasks' endpoint changed, so they are replaced
    (as swarmkit's dirty check does) and the new ones join ingress."""
    c = mesh_cluster()
    c.service("web", replicas=1)
    c.settle(4)
    [before] = c.running("web")
    obj = c.store.get(SERVICES, "svc-web")
    ports = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]
    spec = {**obj.spec["Spec"], "EndpointSpec": {"Mode": "vip", "Ports": ports}}
    c.store.update(obj.with_spec({**obj.spec, "Spec": spec}))
    c.settle(6)
    [after] = c.running("web")
    assert after.id != before.id
    ingress = views(c.store).network("ingress")
    assert ingress.id in netalloc.task_addresses(c.store.get(TASKS, after.id))
    c.settle(2)
    assert [t.id for t in c.running("web")] == [after.id], "stable once replaced"
