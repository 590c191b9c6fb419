"""Overlay networks end to end: two daemons on this host (a manager and a worker, each with
its own VXLAN data port) share a swarm network; a task on one node reaches the task on the
other by overlay address and by name. Driven by the real docker CLI and docker-py."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.swarmfixtures import manager_and_workers
from tests.e2e.test_swarm import eventually, ok

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crun") or not shutil.which("etcd"),
    reason="needs root, crun and etcd")


@pytest.fixture(scope="module")
def swarm() -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    """A manager and a worker in one swarm, each with its own data port."""
    with manager_and_workers("dytest-ovl-", [None, None]) as (manager, worker):
        yield manager, worker


def overlay_namespaces(d: DaemonProcess) -> list[str]:
    root = d.base / "run" / "overlay"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_overlay_network_spans_both_nodes(swarm: tuple[DaemonProcess, DaemonProcess]) -> None:
    manager, worker = swarm
    refused = worker.docker("network", "create", "-d", "overlay", "nope")
    assert refused.returncode != 0
    assert "Cannot create a multi-host network from a worker node" in refused.stderr.decode()
    net_id = ok(manager, "network", "create", "-d", "overlay", "--label", "team=a",
                "ovnet").strip()
    listed = ok(manager, "network", "ls", "--filter", "driver=overlay", "--format",
                "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}")
    ingress_id = ok(manager, "network", "inspect", "--format", "{{.Id}}", "ingress").strip()
    assert listed == f"{ingress_id[:12]} ingress overlay swarm\n" \
        f"{net_id[:12]} ovnet overlay swarm\n"
    info = json.loads(ok(manager, "network", "inspect", "ovnet"))[0]
    subnet = info["IPAM"]["Config"][0]["Subnet"]
    assert subnet.startswith("10.0.") and subnet.endswith(".0/24") and subnet != "10.0.0.0/24"
    assert (info["Scope"], info["Labels"], info["Options"]) == (
        "swarm", {"team": "a"}, {"com.docker.network.driver.overlay.vxlanid_list": "4097"})
    again = manager.docker("network", "create", "-d", "overlay", "ovnet")
    assert again.returncode != 0 and "already exists" in again.stderr.decode()
    bridge = ok(manager, "network", "create", "localnet").strip()
    bad = manager.docker("service", "create", "-d", "--network", "localnet", "bb:latest",
                         "sleep", "1d")
    assert bad.returncode != 0 and "not found" in bad.stderr.decode()
    ok(manager, "network", "rm", bridge)

    # one task per node, each serving its own hostname
    ok(manager, "service", "create", "-d", "--name", "web", "--mode", "global",
       "--network", "name=ovnet,alias=www", "--stop-grace-period", "1s", "bb:latest", "sh",
       "-c", "mkdir -p /w && hostname > /w/index.html && httpd -f -p 80 -h /w")
    eventually(lambda: ok(manager, "service", "ls", "--format", "{{.Replicas}}")
               .strip() == "2/2", timeout=60)
    service = json.loads(ok(manager, "service", "inspect", "web"))[0]
    [vip] = service["Endpoint"]["VirtualIPs"]
    assert vip["NetworkID"] == net_id and vip["Addr"].endswith("/24")
    assert service["Spec"]["TaskTemplate"]["Networks"][0]["Target"] == net_id
    task_ids = ok(manager, "service", "ps", "-q", "web").split()
    ips = {}
    for task in json.loads(ok(manager, "inspect", "--type", "task", *task_ids)):
        [attachment] = task["NetworksAttachments"]
        assert attachment["Network"]["ID"] == net_id
        ips[task["NodeID"]] = attachment["Addresses"][0].split("/")[0]
    assert len(set(ips.values())) == 2

    here = ok(manager, "ps", "-q").split()
    there = ok(worker, "ps", "-q").split()
    assert len(here) == len(there) == 1
    worker_host = ok(worker, "exec", there[0], "hostname").strip()
    worker_ip = ok(worker, "inspect", "--format",
                   "{{(index .NetworkSettings.Networks \"ovnet\").IPAddress}}", there[0]).strip()
    assert worker_ip in ips.values()
    # by overlay address, then by name (the embedded DNS knows the worker's task too)
    ok(manager, "exec", here[0], "ping", "-c1", "-W5", worker_ip)
    got = ok(manager, "exec", here[0], "wget", "-qO-", f"http://{worker_ip}/")
    assert got.strip() == worker_host

    def both_known() -> bool:
        """the manager's DNS names both tasks (the agent syncs names twice a second)"""
        looked = manager.docker("exec", here[0], "nslookup", "tasks.web").stdout.decode()
        return all(ip in looked for ip in ips.values())
    eventually(both_known, timeout=10)
    for name in ("web", "www"):
        assert worker_ip in ok(manager, "exec", here[0], "nslookup", name)
    task_name = ok(worker, "inspect", "--format", "{{.Name}}", there[0]).strip("/\n")
    got = ok(manager, "exec", here[0], "wget", "-qO-", f"http://{task_name}/")
    assert got.strip() == worker_host
    assert overlay_namespaces(manager) == [net_id] == overlay_namespaces(worker)
    # the worker shows the swarm network, with its own task container on it
    assert ok(worker, "network", "ls", "--filter", "scope=swarm", "--format",
              "{{.Name}} {{.Driver}}") == "ingress overlay\novnet overlay\n"
    seen = json.loads(ok(worker, "network", "inspect", "ovnet"))[0]
    assert seen["Id"] == net_id and list(seen["Containers"]) == [
        ok(worker, "inspect", "--format", "{{.Id}}", there[0]).strip()]

    busy = manager.docker("network", "rm", "ovnet")
    assert busy.returncode != 0
    assert f"network {net_id} is in use by service {service['ID']}" in busy.stderr.decode()
    ok(manager, "service", "rm", "web")
    eventually(lambda: not overlay_namespaces(manager) and not overlay_namespaces(worker))
    assert not ok(worker, "ps", "-aq").split()
    assert ok(manager, "network", "rm", "ovnet").strip() == "ovnet"
    assert "ovnet" not in ok(worker, "network", "ls", "--format", "{{.Name}}").split()


def test_overlay_networks_through_docker_py(swarm: tuple[DaemonProcess, DaemonProcess]
                                            ) -> None:
    import docker
    manager, _ = swarm
    client = docker.DockerClient(base_url=manager.host, timeout=60)
    try:
        net = client.networks.create("pynet", driver="overlay", attachable=True,
                                     ipam=docker.types.IPAMConfig(pool_configs=[
                                         docker.types.IPAMPool(subnet="10.77.5.0/24")]))
        assert net.attrs["Scope"] == "swarm" and net.attrs["Attachable"] is True
        assert sorted(n.name for n in client.networks.list(filters={"scope": "swarm"})) == \
            ["ingress", "pynet"]
        service = client.services.create("bb:latest", ["sleep", "1d"], name="py",
                                          networks=["pynet"])

        def addressed() -> bool:
            return any(t.get("NetworksAttachments") for t in service.tasks())
        eventually(addressed)
        [task] = service.tasks()
        address = task["NetworksAttachments"][0]["Addresses"][0]
        assert address.startswith("10.77.5.") and address.endswith("/24")
        service.remove()
        eventually(lambda: not client.api.tasks())  # the agents removed the containers
        net.remove()
        assert [n.name for n in client.networks.list(filters={"driver": "overlay"})] == \
            ["ingress"]
    finally:
        client.close()


STACK = """
services:
  web:
    image: bb:latest
    command: ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && httpd -f -p 80 -h /w"]
    stop_grace_period: 1s
    deploy:
      mode: global
  client:
    image: bb:latest
    command: ["sleep", "1d"]
    stop_grace_period: 1s
    deploy:
      placement:
        constraints: ["node.role == worker"]
"""


def test_a_stack_talks_across_nodes(swarm: tuple[DaemonProcess, DaemonProcess]) -> None:
    """``docker stack deploy`` makes ``st_default`` (overlay) and the services on it; the
    client on the worker reaches the manager's web task by the compose service name."""
    manager, worker = swarm
    path = manager.base / "overlay-stack.yml"
    path.write_text(STACK)
    ok(manager, "stack", "deploy", "-c", str(path), "st")
    assert ok(manager, "network", "ls", "--filter", "label=com.docker.stack.namespace=st",
              "--format", "{{.Name}} {{.Driver}} {{.Scope}}") == "st_default overlay swarm\n"

    def converged() -> bool:
        """both services run their tasks"""
        print(manager.docker("stack", "ps", "st", "--no-trunc").stdout.decode())
        return sorted(ok(manager, "stack", "services", "st", "--format",
                         "{{.Name}} {{.Replicas}}").splitlines()) == \
            ["st_client 1/1", "st_web 2/2"]
    eventually(converged, timeout=60)
    client = ok(worker, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=st_client"
                ).split()
    assert len(client) == 1
    mine = ok(manager, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=st_web"
              ).split()
    web_host = ok(manager, "exec", mine[0], "hostname").strip()
    web_ip = ok(manager, "inspect", "--format",
                "{{(index .NetworkSettings.Networks \"st_default\").IPAddress}}", mine[0]).strip()

    def manager_task_answers() -> bool:
        """the client resolves "web" to both tasks and reaches the one on the manager"""
        looked = worker.docker("exec", client[0], "nslookup", "web").stdout.decode()
        return web_ip in looked and looked.count("Address:") >= 3
    eventually(manager_task_answers, timeout=10)
    got = ok(worker, "exec", client[0], "wget", "-qO-", f"http://{web_ip}/")
    assert got.strip() == web_host
    rm = ok(manager, "stack", "rm", "st")
    assert "Removing network st_default" in rm
    eventually(lambda: not ok(manager, "stack", "ls", "--format", "{{.Name}}").split()
               and not overlay_namespaces(manager) and not overlay_namespaces(worker)
               and not ok(worker, "ps", "-aq").split() and not ok(manager, "ps", "-aq").split())
    assert "st_default" not in ok(manager, "network", "ls", "--format", "{{.Name}}").split()
