"""The overlay driver on one node: swarm networks made real where this node's tasks need them.

``Overlays.sync(wanted)`` makes the node's overlay networks exactly ``wanted`` (the swarm
agent computes it from the cluster store, twice a second):

* per network a namespace ``<exec-root>/overlay/<network id>`` with ``br0`` carrying this
  node's own address on the network and ``vxlan0`` on this node's data port
  (``host.vxlan``), its forwarding entries kept equal to the peers the store names;
* a local record of the network (driver ``overlay``, in the networks table) whose gateway is
  that address, so a task container joins it through the usual ``docker run`` path
  (``NetworkManager.connect`` hands overlay endpoints to :meth:`Overlays.attach_veth`: the
  veth's far end is on ``br0`` in the overlay namespace) and gets ``nameserver <address>``;
* the embedded DNS listening on that address inside the overlay namespace, answering the
  names of every running task of the network, on any node (service name, ``tasks.<service>``,
  aliases, task names) with the tasks' own addresses.

Containers get no default route through an overlay (Docker gives them ``docker_gwbridge``
for that, which we do not have). Networks no longer wanted are torn down: DNS listener,
record (once no endpoint is left), VXLAN device, namespace.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from dockyard.errors import DockyardError, NotFound
from dockyard.host import netns, vxlan
from dockyard.host.links import VethSpec
from dockyard.network import ipam
from dockyard.network.bridge import OPT_MTU, NetworkManager
from dockyard.network.dns import DnsServer
from dockyard.network.store import Network
from dockyard.util.timefmt import now_rfc3339

log = logging.getLogger("dockyard.network")
MTU = 1450  # VXLAN's 50 bytes of headers inside a 1500-byte path
VNI_OPTION = "com.docker.network.driver.overlay.vxlanid_list"


@dataclass(frozen=True)
class OverlayNet:
    id: str
    name: str
    subnet: str
    vni: int
    address: str  # this node's
    peers: tuple[tuple[str, int], ...] = ()  # (node address, data port)
    remote: tuple[tuple[str, str, int], ...] = ()  # (task address, node address, data port)
    names: tuple[tuple[str, str], ...] = ()  # (DNS name, address)
    attachable: bool = False


class Overlays:
    def __init__(self, manager: NetworkManager, dns: Callable[[], DnsServer], root: Path,
                 tag: str, data_port: int) -> None:
        self.manager, self.dns, self.root, self.tag = manager, dns, root, tag
        self.data_port = data_port
        self._lock = threading.RLock()
        self._applied: dict[str, OverlayNet] = {}
        self._fdb: dict[str, set[vxlan.FdbEntry]] = {}
        self._names: dict[str, set[tuple[str, str]]] = {}

    def path(self, net_id: str) -> Path:
        return self.root / net_id

    def device(self, net_id: str) -> str:
        digest = hashlib.sha256(f"{self.tag}/{net_id}".encode()).hexdigest()
        return f"vx{digest[:12]}"

    # -- the agent's view ------------------------------------------------------------------
    def sync(self, wanted: Sequence[OverlayNet]) -> set[str]:
        """The ids of the networks now in place (one failing does not hold up the others;
        it is tried again on the next call)."""
        with self._lock:
            keep = {n.id for n in wanted}
            on_disk = {e.name for e in self.root.iterdir()} if self.root.is_dir() else set()
            # first what goes (also what an earlier run or a failed _apply left behind): a
            # new network may reuse a VNI whose old device must be gone first
            for net_id in sorted((set(self._applied) | on_disk) - keep):
                self._remove(net_id)
            self._forget_records(keep)
            ready = set()
            for net in wanted:
                try:
                    if self._applied.get(net.id) != net or \
                            not netns.is_netns(self.path(net.id)):
                        self._apply(net)
                    ready.add(net.id)
                except DockyardError as exc:
                    self._applied.pop(net.id, None)
                    log.warning("overlay %s (%s): %s", net.name, net.id[:12], exc)
            return ready

    def close(self, force: bool = False) -> None:
        """Daemon shutdown (networks still in use by running containers stay, unless
        ``force``), or leaving the swarm (``force``)."""
        with self._lock:
            ids = set(self._applied) | ({e.name for e in self.root.iterdir()}
                                        if self.root.is_dir() else set())
            for net_id in sorted(ids):
                if force or not self._in_use(net_id):
                    self._remove(net_id)

    def attach_veth(self, net_id: str, spec: VethSpec) -> str:
        """``NetworkManager``'s hook for an endpoint on an overlay network."""
        return vxlan.attach(self.path(net_id), spec)

    # -- internals ---------------------------------------------------------------------------
    def _apply(self, net: OverlayNet) -> None:
        subnet = IPv4Network(net.subnet)
        address = IPv4Address(net.address)
        path = self.path(net.id)
        fresh = not netns.is_netns(path)
        vxlan.ensure(vxlan.OverlaySpec(path, self.device(net.id), net.vni, self.data_port,
                                       net.address, subnet.prefixlen, ipam.mac_for(address),
                                       MTU))
        if fresh:
            self._fdb.pop(net.id, None)
        self._record(net)
        server = self.dns()
        if net.id not in server.addresses():
            server.registry.set_network_name(net.id, net.name)
            netns.run_in(path, lambda: server.listen(net.id, net.address, 53,
                                                     subnet=net.subnet))
        self._sync_fdb(net)
        self._sync_names(net, server)
        self._applied[net.id] = net

    def _record(self, net: OverlayNet) -> None:
        try:
            have = self.manager.get(net.id)
        except NotFound:
            have = None
        if have is not None and have.gateway == net.address:
            return
        if have is not None:
            if self._in_use(net.id):
                return
            self.manager.store.delete(net.id)
        self.manager.store.insert(Network(
            net.id, net.name, "overlay", now_rfc3339(), subnet=net.subnet, gateway=net.address,
            internal=True, attachable=net.attachable,
            options={OPT_MTU: str(MTU), VNI_OPTION: str(net.vni)}))

    def _sync_fdb(self, net: OverlayNet) -> None:
        path = self.path(net.id)
        want = {vxlan.FdbEntry(vxlan.ZERO_MAC, addr, port) for addr, port in net.peers}
        want |= {vxlan.FdbEntry(ipam.mac_for(IPv4Address(ip)), addr, port)
                 for ip, addr, port in net.remote}
        have = self._fdb.get(net.id)
        if have is None:
            have = vxlan.fdb(path)
        vxlan.set_fdb(path, want - have, have - want)
        self._fdb[net.id] = want

    def _sync_names(self, net: OverlayNet, server: DnsServer) -> None:
        want = set(net.names)
        have = self._names.get(net.id, set())
        for name, ip in have - want:
            server.registry.unregister(net.id, [name], ip=ip, container="")
        for name, ip in sorted(want - have):
            server.registry.register(net.id, [name], ip)
        self._names[net.id] = want

    def _forget_records(self, keep: set[str]) -> None:
        """Local records of networks no longer wanted, once their last endpoint is gone
        (a container that was still stopping when its network went)."""
        used = {ep.network_id for ep in self.manager.endpoints()}
        for net in self.manager.list():
            if net.driver == "overlay" and net.id not in keep and net.id not in used:
                self.manager.store.delete(net.id)

    def _in_use(self, net_id: str) -> bool:
        return any(ep.network_id == net_id for ep in self.manager.endpoints())

    def _remove(self, net_id: str) -> None:
        try:
            server = self.dns()
            server.unlisten(net_id)
            for name, ip in self._names.pop(net_id, set()):
                server.registry.unregister(net_id, [name], ip=ip, container="")
            if not self._in_use(net_id):
                try:
                    if self.manager.get(net_id).driver == "overlay":
                        self.manager.store.delete(net_id)
                except NotFound:
                    pass
            vxlan.destroy(self.path(net_id))
        except DockyardError as exc:
            log.warning("overlay %s: teardown: %s", net_id[:12], exc)
        self._applied.pop(net_id, None)
        self._fdb.pop(net_id, None)
