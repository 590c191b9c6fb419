"""The network allocator (pure decisions): subnets and VNIs of swarm networks, and the
addresses of services (virtual IPs), tasks and nodes on them.

Like Docker's default address pool (``10.0.0.0/8``, ``/24`` per network) a new overlay
network gets the first free ``/24``, skipping ``10.0.0.0/24`` (Docker's ``ingress``) and
every subnet the creating manager's local networks or routes use; VNIs count up from 4097
(4096 is ingress's). Within a network the gateway is ``.1`` and addresses are handed out
lowest first:

* a service in ``vip`` endpoint mode gets one virtual IP per network it is on
  (``Endpoint.VirtualIPs``);
* a task that wants to run gets ``NetworksAttachments`` (the network as Docker shows it, its
  ``Addresses`` and the aliases of its spec) before the scheduler may assign it;
* a node running tasks of a network gets an address of its own on it (``NetworkAttachments``
  in the stored node, never shown): the node's overlay bridge carries it and the embedded DNS
  answers the node's containers there, as Docker's per-node load-balancer endpoint does.

The ``ingress`` network (made at ``swarm init``: ``10.0.0.0/24``, VNI 4096, ``Ingress: true``)
is the routing mesh's: a service publishing a port in ``ingress`` mode gets a virtual IP on it
and its ``Endpoint.Ports`` (a port left 0 gets one from 30000-32767, as Docker), each of its
tasks an address on it (its first attachment, as Docker lists it), and while any service
publishes such a port *every* node gets an address on it: every node listens on the port and
forwards from there to the tasks (``agentnet``, ``network.mesh``).

An address is free again once its task ended, its service left the network, or the network
is gone. The allocator is the only writer of those fields; each write carries the version it
was decided on (a lost race is decided again on the next tick).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from dockyard import errors
from dockyard.cluster.objects import rank, terminal
from dockyard.cluster.store import Object, Put

POOL = IPv4Network("10.0.0.0/8")
PREFIX = 24
INGRESS_SUBNET = IPv4Network("10.0.0.0/24")
INGRESS_NAME = "ingress"
INGRESS_VNI = 4096
FIRST_VNI = 4097
DYNAMIC_PORTS = range(30000, 32768)
VNI_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
NODE_ATTACHMENTS = "NetworkAttachments"  # in a stored node: network id -> address


@dataclass(frozen=True)
class Net:
    """A stored swarm network, read."""
    id: str
    name: str
    subnet: IPv4Network
    gateway: IPv4Address
    vni: int
    obj: Object
    ingress: bool = False

    @classmethod
    def of(cls, obj: Object) -> Net:
        config = ((obj.spec.get("IPAM") or {}).get("Config") or [{}])[0]
        subnet = IPv4Network(str(config.get("Subnet") or "0.0.0.0/32"), strict=False)
        gateway = IPv4Address(str(config.get("Gateway") or subnet.network_address + 1))
        vni = int(str((obj.spec.get("Options") or {}).get(VNI_OPTION) or "0").split(",")[0])
        return cls(obj.id, str(obj.spec.get("Name", "")), subnet, gateway, vni, obj,
                   bool(obj.spec.get("Ingress")))


def choose_subnet(used: Iterable[IPv4Network], taken: Iterable[IPv4Network]) -> IPv4Network:
    busy = [INGRESS_SUBNET, *used, *taken]
    for candidate in POOL.subnets(new_prefix=PREFIX):
        if not any(candidate.overlaps(b) for b in busy):
            return candidate
    raise errors.Unavailable("could not find an available, non-overlapping IPv4 address pool "
                             "among the defaults to assign to the network")


def next_vni(networks: Iterable[Net]) -> int:
    used = {n.vni for n in networks}
    return next(v for v in range(FIRST_VNI, 1 << 24) if v not in used)


def check_subnet(text: str, gateway: str, used: Iterable[IPv4Network]
                 ) -> tuple[IPv4Network, IPv4Address]:
    """A ``--subnet``/``--gateway`` given by the user: valid, not overlapping another swarm
    network."""
    try:
        subnet = IPv4Network(text, strict=False)
    except ValueError:
        raise errors.InvalidArgument(f"invalid CIDR address: {text}") from None
    if subnet.prefixlen > 29:
        raise errors.InvalidArgument(f"invalid subnet {text}: at most a /29")
    if any(subnet.overlaps(u) for u in used):
        raise errors.Forbidden("Pool overlaps with other one on this address space")
    try:
        gw = IPv4Address(gateway) if gateway else subnet.network_address + 1
    except ValueError:
        raise errors.InvalidArgument(f"invalid gateway address {gateway}") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise errors.InvalidArgument(f"gateway {gw} is not in subnet {subnet}")
    return subnet, gw


def network_spec(name: str, subnet: IPv4Network, gateway: IPv4Address, vni: int, *,
                 attachable: bool = False, internal: bool = False,
                 labels: Mapping[str, str] | None = None,
                 options: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A network's stored spec: the fields of Docker's ``GET /networks`` object."""
    return {"Name": name, "Scope": "swarm", "Driver": "overlay", "EnableIPv4": True,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": str(subnet), "Gateway": str(gateway)}]},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Options": {**(options or {}), VNI_OPTION: str(vni)},
            "Labels": dict(labels or {})}


def ingress_spec() -> dict[str, Any]:
    """The ``ingress`` network's stored spec, as Docker's ``swarm init`` makes it."""
    spec = network_spec(INGRESS_NAME, INGRESS_SUBNET, INGRESS_SUBNET.network_address + 1,
                        INGRESS_VNI)
    return {**spec, "Ingress": True}


def ingress_ports(endpoint_spec: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The ports of an ``EndpointSpec`` published through the routing mesh."""
    return [p for p in (endpoint_spec or {}).get("Ports") or ()
            if isinstance(p, Mapping) and (p.get("PublishMode") or "ingress") == "ingress"]


def meshed(service: Object) -> bool:
    """Does the stored service publish a port in ingress mode."""
    return bool(ingress_ports((service.spec.get("Spec") or {}).get("EndpointSpec")))


def ingress_of(networks: Iterable[Object]) -> Object | None:
    return next((o for o in networks if o.spec.get("Ingress")), None)


def targets(spec: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(network id, aliases) of a task spec's ``Networks``."""
    return [(str(n.get("Target") or ""), tuple(n.get("Aliases") or ()))
            for n in spec.get("Networks") or () if isinstance(n, Mapping)]


def service_networks(spec: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    template = spec.get("TaskTemplate") or {}
    return targets(template) or targets({"Networks": spec.get("Networks")})


def _task_meshed(task: Object) -> bool:
    return bool(ingress_ports((task.spec.get("Endpoint") or {}).get("Spec")))


def allocated(task: Object) -> bool:
    """May the scheduler assign it: no networks, or its addresses are there."""
    return not (targets(task.spec.get("Spec") or {}) or _task_meshed(task)) \
        or "NetworksAttachments" in task.spec


def attachment(net: Net, address: IPv4Address, aliases: Sequence[str]) -> dict[str, Any]:
    """A task's ``NetworksAttachments`` entry, as Docker shows it."""
    o = net.obj
    ipam = {"Driver": {"Name": "default"},
            "Configs": [{"Subnet": str(net.subnet), "Gateway": str(net.gateway)}]}
    return {"Network": {
        "ID": o.id, "Version": {"Index": o.version}, "CreatedAt": o.created_at,
        "UpdatedAt": o.updated_at,
        "Spec": {"Name": net.name, "Labels": dict(o.spec.get("Labels") or {}),
                 "DriverConfiguration": {"Name": "overlay"},
                 **({"Ingress": True} if net.ingress else {}),
                 "Attachable": bool(o.spec.get("Attachable")), "IPAMOptions": ipam,
                 "Scope": "swarm"},
        "DriverState": {"Name": "overlay", "Options": dict(o.spec.get("Options") or {})},
        "IPAMOptions": ipam},
        "Addresses": [f"{address}/{net.subnet.prefixlen}"], "Aliases": list(aliases)}


def task_addresses(task: Object) -> dict[str, str]:
    """network id -> address (without prefix) of a task's attachments."""
    out = {}
    for att in task.spec.get("NetworksAttachments") or ():
        addrs = att.get("Addresses") or []
        if addrs:
            out[str((att.get("Network") or {}).get("ID", ""))] = str(addrs[0]).split("/")[0]
    return out


class _Pools:
    def __init__(self, nets: Mapping[str, Net]) -> None:
        self.nets = nets
        self.used: dict[str, set[IPv4Address]] = {i: {n.gateway} for i, n in nets.items()}

    def mark(self, net_id: str, address: str) -> None:
        if net_id in self.used:
            self.used[net_id].add(IPv4Address(address.split("/")[0]))

    def take(self, net_id: str) -> IPv4Address | None:
        net, used = self.nets[net_id], self.used[net_id]
        for address in net.subnet.hosts():
            if address not in used:
                used.add(address)
                return address
        return None


def _live(task: Object) -> bool:
    status = task.spec.get("Status") or {}
    return not terminal(str(status.get("State", "new")))


def allocate(networks: Sequence[Object], services: Sequence[Object], tasks: Sequence[Object],
             nodes: Sequence[Object]) -> list[Put]:
    nets = {o.id: Net.of(o) for o in networks}
    ingress = next((n.id for n in nets.values() if n.ingress), "")
    pools = _Pools(nets)
    ports: set[tuple[str, int]] = set()  # (protocol, published port) of the mesh
    for s in services:
        for vip in (s.spec.get("Endpoint") or {}).get("VirtualIPs") or ():
            pools.mark(str(vip.get("NetworkID")), str(vip.get("Addr", "")))
        ports |= {(str(p.get("Protocol") or "tcp"), int(p.get("PublishedPort") or 0))
                  for p in ingress_ports(s.spec.get("Endpoint"))}
    for t in tasks:
        if _live(t):
            for net_id, address in task_addresses(t).items():
                pools.mark(net_id, address)
    for n in nodes:
        for net_id, address in (n.spec.get(NODE_ATTACHMENTS) or {}).items():
            pools.mark(net_id, str(address))
    everywhere = {ingress} if ingress and any(meshed(s) for s in services) else set()
    writes: list[Put] = []
    writes += filter(None, (_service_vips(s, nets, pools, ingress, ports) for s in services))
    writes += filter(None, (_task_attachments(t, nets, pools, ingress) for t in tasks))
    writes += filter(None, (_node_addresses(n, nets, pools, tasks, everywhere) for n in nodes))
    return writes


def _endpoint_ports(spec: Mapping[str, Any], current: Sequence[Mapping[str, Any]],
                    used: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """``Endpoint.Ports``: the spec's ports with defaults, a dynamic port for PublishedPort 0
    in ingress mode (the one given before, if any)."""
    out: list[dict[str, Any]] = []
    for given in (spec.get("EndpointSpec") or {}).get("Ports") or ():
        port: dict[str, Any] = {"Protocol": given.get("Protocol") or "tcp",
                                "TargetPort": int(given.get("TargetPort") or 0),
                                "PublishedPort": int(given.get("PublishedPort") or 0),
                                "PublishMode": given.get("PublishMode") or "ingress"}
        if given.get("Name"):
            port = {"Name": given["Name"], **port}
        if not port["PublishedPort"] and port["PublishMode"] == "ingress":
            proto = port["Protocol"]
            prior = [int(c.get("PublishedPort") or 0) for c in current
                     if c.get("Protocol") == proto and c.get("TargetPort") == port["TargetPort"]
                     and c.get("PublishMode") == "ingress"]
            taken = {p["PublishedPort"] for p in out if p["Protocol"] == proto}
            chosen = next((p for p in prior if p and p not in taken), 0) or \
                next((p for p in DYNAMIC_PORTS if (proto, p) not in used), 0)
            used.add((proto, chosen))
            port["PublishedPort"] = chosen
        out.append(port)
    return out


def _service_vips(service: Object, nets: Mapping[str, Net], pools: _Pools, ingress: str,
                  ports: set[tuple[str, int]]) -> Put | None:
    spec = service.spec.get("Spec") or {}
    endpoint = dict(service.spec.get("Endpoint") or {})
    mode = (spec.get("EndpointSpec") or {}).get("Mode") or "vip"
    mesh = [ingress] if ingress and meshed(service) else []
    wanted = [net_id for net_id, _ in service_networks(spec) if net_id in nets] \
        if mode == "vip" else []
    wanted = mesh + [n for n in wanted if n != ingress]
    current = [dict(v) for v in endpoint.get("VirtualIPs") or ()]
    keep = [v for v in current if v.get("NetworkID") in wanted]
    have = {v.get("NetworkID") for v in keep}
    for net_id in dict.fromkeys(wanted):
        if net_id not in have:
            address = pools.take(net_id)
            if address is not None:
                keep.append({"NetworkID": net_id,
                             "Addr": f"{address}/{nets[net_id].subnet.prefixlen}"})
    published = _endpoint_ports(spec, endpoint.get("Ports") or (), ports)
    if keep == current and published == (endpoint.get("Ports") or []):
        return None
    for key, value in (("Ports", published), ("VirtualIPs", keep)):
        if value:
            endpoint[key] = value
        else:
            endpoint.pop(key, None)
    return Put(service.with_spec({**service.spec, "Endpoint": endpoint}))


def _task_attachments(task: Object, nets: Mapping[str, Net], pools: _Pools,
                      ingress: str) -> Put | None:
    wanted = targets(task.spec.get("Spec") or {})
    if _task_meshed(task):  # no ingress network (removed): never scheduled, as in Docker
        wanted = [(ingress or "-", ())] + [(n, a) for n, a in wanted if n != ingress]
    status = task.spec.get("Status") or {}
    if not wanted or "NetworksAttachments" in task.spec \
            or rank(str(status.get("State", "new"))) > rank("pending") \
            or task.spec.get("DesiredState", "running") != "running":
        return None
    if any(net_id not in nets for net_id, _ in wanted):
        return None  # a network is missing: the task is never scheduled
    attachments = []
    for net_id, aliases in wanted:
        address = pools.take(net_id)
        if address is None:
            return None
        attachments.append(attachment(nets[net_id], address, aliases))
    return Put(task.with_spec({**task.spec, "NetworksAttachments": attachments}))


def _node_addresses(node: Object, nets: Mapping[str, Net], pools: _Pools,
                    tasks: Sequence[Object], everywhere: set[str]) -> Put | None:
    """Its address on the networks its tasks use, and on ``everywhere`` (ingress, while a
    service publishes through it); released once unused."""
    current = {str(k): str(v) for k, v in (node.spec.get(NODE_ATTACHMENTS) or {}).items()}
    wanted = {net_id for t in tasks if t.spec.get("NodeID") == node.id and _live(t)
              for net_id in task_addresses(t)} | everywhere
    addresses = {k: v for k, v in current.items()
                 if k in nets and (k in wanted or not nets[k].ingress)}
    for net_id in sorted(wanted & set(nets)):
        if net_id not in addresses:
            address = pools.take(net_id)
            if address is not None:
                addresses[net_id] = str(address)
    if addresses == current:
        return None
    return Put(node.with_spec({**node.spec, NODE_ATTACHMENTS: addresses}))
