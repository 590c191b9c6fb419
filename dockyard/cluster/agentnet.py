"""What a node's overlay data plane should look like, read from the store (pure).

For every swarm network one of this node's tasks is attached to (a task that has not ended),
the agent hands its executor a :class:`NetState`: the network's subnet and VNI, this node's
own address on it (``netalloc.NODE_ATTACHMENTS``; until the allocator gave one the network is
not ready and its tasks wait), the other nodes that have tasks on it (their advertised address
and data port: the VXLAN flood list), the remote tasks' addresses (static forwarding entries)
and the names the embedded DNS answers on it: per running task its service name,
``tasks.<service>``, its aliases and its container name.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.cluster import netalloc
from dockyard.cluster.objects import Task, task_name, terminal
from dockyard.cluster.store import Object

DEFAULT_DATA_PORT = 4789


@dataclass(frozen=True)
class Peer:
    addr: str
    port: int


@dataclass(frozen=True)
class MeshPort:
    """A port published through the routing mesh and where it leads."""
    protocol: str  # tcp | udp
    port: int  # published
    target: int  # the tasks' port
    backends: tuple[str, ...] = ()  # ingress addresses of the running tasks


@dataclass(frozen=True)
class NetState:
    id: str
    name: str
    subnet: str  # "10.0.1.0/24"
    gateway: str
    vni: int
    address: str  # this node's address on the network (its bridge, its DNS listener)
    peers: tuple[Peer, ...] = ()
    remote: tuple[tuple[str, Peer], ...] = ()  # (task address, its node)
    names: tuple[tuple[str, str], ...] = ()  # (DNS name, address)
    attachable: bool = False
    ingress: bool = False
    mesh: tuple[MeshPort, ...] = ()  # ingress only


@dataclass(frozen=True)
class TaskNet:
    """One network of a task's container."""
    network_id: str
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    ingress: bool = False


def task_networks(task: Object, nets: dict[str, str], ingress: str = ""
                  ) -> tuple[TaskNet, ...]:
    """The task's attachments, with network names from ``nets`` (id -> name); ``ingress``
    is the ingress network's id."""
    out = []
    for att in task.spec.get("NetworksAttachments") or ():
        net_id = str((att.get("Network") or {}).get("ID", ""))
        addrs = att.get("Addresses") or []
        if net_id and addrs:
            out.append(TaskNet(net_id, nets.get(net_id, net_id), str(addrs[0]).split("/")[0],
                               tuple(att.get("Aliases") or ()), bool(ingress)
                               and net_id == ingress))
    return tuple(out)


def _peer(node: Object) -> Peer | None:
    addr = str(node.spec.get("Addr") or "")
    if not addr:
        return None
    return Peer(addr, int(node.spec.get("DataPort") or DEFAULT_DATA_PORT))


def wanted(node_id: str, networks: Sequence[Object], nodes: Sequence[Object],
           tasks: Sequence[Object], services: Sequence[Object] = ()) -> list[NetState]:
    me = next((n for n in nodes if n.id == node_id), None)
    if me is None:
        return []
    mine = (me.spec.get(netalloc.NODE_ATTACHMENTS) or {})
    peers = {n.id: _peer(n) for n in nodes}
    by_net: dict[str, list[tuple[Object, Task, str]]] = defaultdict(list)
    for obj in tasks:
        task = Task.of(obj)
        if terminal(task.state) or not task.node_id:
            continue
        for net_id, address in netalloc.task_addresses(obj).items():
            by_net[net_id].append((obj, task, address))
    out = []
    for net_obj in networks:
        net = netalloc.Net.of(net_obj)
        users = by_net.get(net.id, [])
        if net.id not in mine or not (net.ingress or any(t.node_id == node_id
                                                         for _, t, _ in users)):
            continue
        if net.ingress:  # every node that carries it
            remote_nodes = sorted(n.id for n in nodes if n.id != node_id
                                  and net.id in (n.spec.get(netalloc.NODE_ATTACHMENTS) or {}))
        else:
            remote_nodes = sorted({t.node_id for _, t, _ in users if t.node_id != node_id})
        flood = tuple(p for p in (peers.get(n) for n in remote_nodes) if p is not None)
        remote = tuple(sorted((address, p) for _, t, address in users
                              if t.node_id != node_id
                              for p in [peers.get(t.node_id)] if p is not None))
        names = () if net.ingress else tuple(sorted(set(_names(users, net.id))))
        mesh = _mesh(services, users) if net.ingress else ()
        out.append(NetState(net.id, net.name, str(net.subnet), str(net.gateway), net.vni,
                            str(mine[net.id]), flood, remote, names,
                            bool(net_obj.spec.get("Attachable")), net.ingress, mesh))
    return out


def _mesh(services: Sequence[Object], users: Sequence[tuple[Object, Task, str]]
          ) -> tuple[MeshPort, ...]:
    """The routing mesh's ports: per service publishing through it, its running tasks."""
    out = []
    for service in services:
        backends = tuple(sorted(address for _, t, address in users
                                if t.service_id == service.id and t.state == "running"
                                and t.desired == "running"))
        for port in netalloc.ingress_ports(service.spec.get("Endpoint")):
            published = int(port.get("PublishedPort") or 0)
            if published:
                out.append(MeshPort(str(port.get("Protocol") or "tcp"), published,
                                    int(port.get("TargetPort") or 0), backends))
    return tuple(sorted(out, key=lambda m: (m.protocol, m.port)))


def _names(users: Sequence[tuple[Object, Task, str]], net_id: str) -> list[tuple[str, str]]:
    found = []
    for obj, task, address in users:
        if task.state != "running" or task.desired != "running":
            continue
        service = str((obj.spec.get("ServiceAnnotations") or {}).get("Name", ""))
        found += [(service, address), (f"tasks.{service}", address),
                  (f"{task_name(service, task)}.{task.id}", address)]
        for att in obj.spec.get("NetworksAttachments") or ():
            if (att.get("Network") or {}).get("ID") == net_id:
                found += [(alias, address) for alias in att.get("Aliases") or ()]
    return [(name, ip) for name, ip in found if name]
