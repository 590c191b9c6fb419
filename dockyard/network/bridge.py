"""The bridge driver: networks as Linux bridges, endpoints as veth pairs, NAT via iptables.

``NetworkManager`` keeps desired state in SQLite (``store``, ``ipam``) and makes the kernel
match it through two narrow collaborators: ``LinkOps`` (``host.links.Links``) and
``host.firewall.Firewall``. A network's record is written before its bridge and rules
(and removed after them), so a crash never leaves kernel objects nobody knows; ``restore()``
at boot (re-)creates the bridges and rules of every record (e.g. after a reboot or a crash). The predefined networks are ``bridge`` (device ``BridgeConfig.default_bridge``),
``host`` and ``none``.

Boot: ``ensure_defaults()`` then ``restore()``; then disconnect (``delete_link=False``) the
endpoints of containers that did not survive. ``docker run``: ``host.netns.create(path)``,
``connect(net, cid, path)`` (~2.5 ms), hand ``path`` to the runtime; on exit
``disconnect(net, cid, delete_link=False)`` and ``host.netns.delete(path)`` (~0.3 ms: the
kernel drops the veth pair with the namespace, where deleting it would cost ~20 ms).
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import itertools
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from dockyard.errors import Conflict, Forbidden, InvalidArgument, NotFound
from dockyard.host import links as hostlinks
from dockyard.host.firewall import BridgeRules, Firewall, PortRule
from dockyard.host.links import BridgeSpec, Route, VethSpec
from dockyard.metadata.db import Database
from dockyard.network import ipam
from dockyard.network.store import Endpoint, Network, NetworkStore, PortMapping
from dockyard.util.ids import new_id
from dockyard.util.timefmt import now_rfc3339

OPT_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"
DRIVERS = ("bridge", "host", "null")


class LinkOps(Protocol):
    """What the driver needs from ``host.links.Links`` (a fake implements it in tests)."""

    def ensure_bridge(self, spec: BridgeSpec) -> None: ...
    def delete_link(self, name: str) -> bool: ...
    def attach_veth(self, spec: VethSpec) -> str: ...
    def ipv4_routes(self) -> list[Route]: ...
    def close(self) -> None: ...


class OverlayPort(Protocol):
    """Plugs an endpoint of an overlay network in (``network.overlay.Overlays``)."""

    def attach_veth(self, net_id: str, spec: VethSpec) -> str: ...


@dataclass(frozen=True)
class BridgeConfig:
    default_bridge: str = "dockyard0"  # device of the predefined ``bridge`` network
    link_prefix: str = "dy"  # user bridges "<prefix>-<id>", veths "<prefix><hash>"
    chain_prefix: str = "DOCKYARD"
    ipam: ipam.IpamConfig = field(default_factory=ipam.IpamConfig)
    mtu: int = 1500
    icc: bool = True
    ip_masq: bool = True
    ip_forward: bool = True  # like dockerd: enable net.ipv4.ip_forward at boot


class NetworkManager:
    def __init__(self, db: Database, config: BridgeConfig, links: LinkOps,
                 firewall: Firewall) -> None:
        self.config = config
        self.store = NetworkStore(db)
        self.ipam = ipam.Ipam(db)
        self.links = links
        self.firewall = firewall
        self._lock = threading.RLock()  # create/remove/restore: subnet choice and devices
        self.overlay: OverlayPort | None = None  # swarm nodes: endpoints on overlay networks

    @classmethod
    def system(cls, db: Database, config: BridgeConfig) -> NetworkManager:
        """The real thing: netlink through ``host.links``, iptables through ``host.firewall``."""
        return cls(db, config, hostlinks.Links(), Firewall(config.chain_prefix))

    def close(self) -> None:
        """Release the netlink socket and its thread (networks stay as they are)."""
        self.links.close()

    # -- networks --------------------------------------------------------------------------

    def list(self) -> builtins.list[Network]:
        return self.store.all()

    def get(self, ref: str) -> Network:
        return self.store.find(ref)

    def create(self, name: str, driver: str = "bridge", subnet: str | None = None,
               gateway: str | None = None, internal: bool = False,
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
               attachable: bool = False) -> Network:
        if not name:
            raise InvalidArgument("network name must not be empty")
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver not in DRIVERS:
            raise NotFound(f'plugin "{driver}" not found')
        if gateway and not subnet:
            raise InvalidArgument("a gateway needs a subnet (--subnet)")
        with self._lock:
            self._check_name_free(name)
            net_id = self._fresh_id()
            opts = dict(options or {})
            bridge = hostlinks.check_ifname(opts.get(OPT_NAME) or self._bridge_name(net_id))
            net = self._plan(net_id, name, bridge, subnet, gateway)
            net = replace(net, internal=internal, attachable=attachable,
                          labels=dict(labels or {}), options=opts)
            self._install(net)
            return net

    def remove(self, ref: str) -> None:
        with self._lock:
            net = self.get(ref)
            if net.predefined:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            if self.store.endpoints(network_id=net.id):
                raise Forbidden(f"error while removing network: network {net.name} id "
                                f"{net.id} has active endpoints")
            self._uninstall(net)
            self.store.delete(net.id)

    def taken_subnets(self) -> builtins.list[str]:
        """Subnets of this host's networks and routes (a swarm network must avoid them)."""
        with self._lock:
            return [str(n) for n in self._taken()]

    def ensure_defaults(self) -> None:
        """Create the predefined ``bridge``, ``host`` and ``none`` networks if missing."""
        with self._lock:
            names = {n.name for n in self.store.all()}
            if "bridge" not in names:
                net = self._plan(self._fresh_id(), "bridge", self.config.default_bridge,
                                 None, None, preferred=self.config.ipam.default_bridge)
                net = replace(net, options=self._default_options())
                self._install(net)
            for name, driver in (("host", "host"), ("none", "null")):
                if name not in names:
                    self.store.insert(Network(self._fresh_id(), name, driver, now_rfc3339()))

    def restore(self) -> None:
        """At boot: re-create bridges, chains and port rules the kernel lost (idempotent)."""
        with self._lock:
            self.store.sweep_orphans()
            if self.config.ip_forward:
                hostlinks.set_ip_forward(True)
            self.firewall.setup()
            for net in self._bridges():
                self.links.ensure_bridge(self._bridge_spec(net))
                self.firewall.add_bridge(self._rules(net))
            for ep in self.store.endpoints():
                net = self.get(ep.network_id)
                for port in ep.ports:
                    self.firewall.add_port(_port_rule(net, ep, port))

    def teardown_all(self) -> None:
        """Remove every link and rule this manager made (tests); records are kept."""
        with self._lock:
            for ep in self.store.endpoints():
                self.links.delete_link(ep.veth_host)
            for net in self._bridges():
                self.links.delete_link(net.bridge)
            self.firewall.teardown()

    # -- endpoints -------------------------------------------------------------------------

    def connect(self, network: str, container_id: str, netns_path: Path | str,
                aliases: tuple[str, ...] | builtins.list[str] = (), ip: str | None = None) -> Endpoint:
        """Attach the container's namespace to ``network``; returns its endpoint."""
        net = self.get(network)
        if net.driver == "host":
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        if net.driver != "bridge" and (net.driver != "overlay" or self.overlay is None):
            raise Forbidden(f"container cannot be connected to network {net.name} "
                            f"(driver {net.driver}): it has no endpoints")
        if ip and net.predefined:
            raise InvalidArgument("user specified IP address is supported on user defined "
                                  "networks only")
        old = self.store.endpoint(net.id, container_id)
        if old is not None and old.netns_path == str(netns_path):
            raise Forbidden(f"endpoint with name {container_id[:12]} already exists in "
                            f"network {net.name}")
        address = self._address_for(net, container_id, old, ip)
        try:
            ep = self._attach(net, container_id, Path(netns_path), address, tuple(aliases))
        except BaseException:
            if old is None or old.ip != str(address):
                self.ipam.release(net.id, address)
            raise
        self.store.put_endpoint(ep)
        return ep

    def disconnect(self, network: str, container_id: str, *, delete_link: bool = True) -> None:
        """Detach and release the address. ``delete_link=False`` when the namespace is being
        destroyed anyway (the kernel removes both veth ends with it; saves ~10 ms)."""
        net = self.get(network)
        ep = self.store.endpoint(net.id, container_id)
        if ep is None:
            raise NotFound(f"container {container_id} is not connected to network {net.name}")
        for port in ep.ports:
            self.firewall.remove_port(_port_rule(net, ep, port))
        if delete_link:
            self.links.delete_link(ep.veth_host)
        self.ipam.release(net.id, ep.ip)
        self.store.delete_endpoint(net.id, container_id)

    def endpoints(self, container_id: str | None = None) -> builtins.list[Endpoint]:
        return self.store.endpoints(container_id=container_id)

    def publish(self, network: str, container_id: str,
                ports: builtins.list[PortMapping]) -> Endpoint:
        """DNAT host ports to the container (concrete host ports, e.g. from
        ``ports.PortAllocator``); recorded on the endpoint, removed by ``disconnect``."""
        net = self.get(network)
        ep = self.store.endpoint(net.id, container_id)
        if ep is None:
            raise NotFound(f"container {container_id} is not connected to network {net.name}")
        for port in ports:
            if not 0 < port.host_port < 65536 or not 0 < port.container_port < 65536:
                raise InvalidArgument(f"invalid port mapping {port.host_port}:"
                                      f"{port.container_port}/{port.proto}")
        fresh = [p for p in ports if p not in ep.ports]
        try:
            for port in fresh:
                self.firewall.add_port(_port_rule(net, ep, port))
        except BaseException:
            for port in fresh:  # nothing half-published: the endpoint would not record them
                self.firewall.remove_port(_port_rule(net, ep, port))
            raise
        ep = replace(ep, ports=ep.ports + tuple(fresh))
        self.store.put_endpoint(ep)
        return ep

    def unpublish(self, network: str, container_id: str) -> Endpoint:
        """Remove every published port of the endpoint."""
        net = self.get(network)
        ep = self.store.endpoint(net.id, container_id)
        if ep is None:
            raise NotFound(f"container {container_id} is not connected to network {net.name}")
        for port in ep.ports:
            self.firewall.remove_port(_port_rule(net, ep, port))
        ep = replace(ep, ports=())
        self.store.put_endpoint(ep)
        return ep

    # -- internals -------------------------------------------------------------------------

    def _check_name_free(self, name: str) -> None:
        if any(n.name == name for n in self.store.all()):
            raise Conflict(f"network with name {name} already exists")

    def _fresh_id(self) -> str:
        taken = {n.bridge for n in self.store.all()}
        while True:
            net_id = new_id()
            if self._bridge_name(net_id) not in taken:
                return net_id

    def _bridge_name(self, net_id: str) -> str:
        return f"{self.config.link_prefix}-{net_id}"[:15]

    def _veth_name(self, net_id: str, container_id: str) -> str:
        digest = hashlib.sha256(f"{net_id}/{container_id}".encode()).hexdigest()
        return (self.config.link_prefix + digest)[:15]

    def _taken(self) -> builtins.list[ipam.IPv4Network]:
        """Subnets of our networks, plus what the host routes elsewhere (not our bridges)."""
        nets = self.store.all()
        ours = {n.bridge for n in nets if n.bridge}
        taken = [ipam.IPv4Network(n.subnet) for n in nets if n.subnet]
        return taken + [r.network for r in self.links.ipv4_routes() if r.device not in ours]

    def _plan(self, net_id: str, name: str, bridge: str, subnet: str | None,
              gateway: str | None, preferred: str | None = None) -> Network:
        taken = self._taken()
        if subnet:
            chosen = ipam.parse_subnet(subnet)
            ipam.check_subnet(chosen, taken)
        else:
            chosen = ipam.choose_subnet(taken, self.config.ipam.pools, preferred)
        gw = ipam.parse_address(gateway) if gateway else ipam.default_gateway(chosen)
        ipam.check_gateway(chosen, gw)
        return Network(net_id, name, "bridge", now_rfc3339(), subnet=str(chosen),
                       gateway=str(gw), bridge=bridge)

    def _install(self, net: Network) -> None:
        """Gateway reservation, the record, then bridge and rules; undone on failure. The
        record comes first so a kill -9 never leaves a bridge nobody knows: ``restore()``
        makes the bridge of a record at boot, and the user can remove the network."""
        self.ipam.reserve(net.id, ipam.IPv4Network(net.subnet), ipam.GATEWAY,
                          ipam.IPv4Address(net.gateway))
        inserted = False
        try:
            self.store.insert(net)
            inserted = True
            self.firewall.setup()
            self.links.ensure_bridge(self._bridge_spec(net))
            self.firewall.add_bridge(self._rules(net))
        except BaseException:
            if inserted:
                with contextlib.suppress(Exception):  # keep the original error
                    self._uninstall(net)
                self.store.delete(net.id)
            self.ipam.release_network(net.id)
            raise

    def _uninstall(self, net: Network) -> None:
        if net.driver != "bridge":  # an overlay's devices are the overlay driver's
            return
        self.firewall.remove_bridge(self._rules(net))
        self.links.delete_link(net.bridge)

    def _bridges(self) -> builtins.list[Network]:
        return [n for n in self.store.all() if n.driver == "bridge"]

    def _bridge_spec(self, net: Network) -> BridgeSpec:
        return BridgeSpec(net.bridge, net.gateway, net.prefixlen, self._mtu(net))

    def _mtu(self, net: Network) -> int:
        return int(net.options.get(OPT_MTU) or self.config.mtu)

    def _rules(self, net: Network) -> BridgeRules:
        icc = _flag(net.options.get(OPT_ICC), self.config.icc)
        masq = _flag(net.options.get(OPT_MASQ), self.config.ip_masq)
        return BridgeRules(net.bridge, net.subnet, net.internal, icc, masq)

    def _default_options(self) -> dict[str, str]:
        return {OPT_DEFAULT: "true", OPT_ICC: str(self.config.icc).lower(),
                OPT_MASQ: str(self.config.ip_masq).lower(),
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                OPT_NAME: self.config.default_bridge, OPT_MTU: str(self.config.mtu)}

    def _address_for(self, net: Network, container_id: str, old: Endpoint | None,
                     ip: str | None) -> ipam.IPv4Address:
        if old is not None and (ip is None or ip == old.ip):
            return ipam.IPv4Address(old.ip)  # reconnect of a restarted container: same address
        if old is not None:
            self.ipam.release(net.id, old.ip)
        requested = ipam.parse_address(ip) if ip else None
        return self.ipam.reserve(net.id, ipam.IPv4Network(net.subnet), container_id, requested)

    def _attach(self, net: Network, container_id: str, netns_path: Path,
                address: ipam.IPv4Address, aliases: tuple[str, ...]) -> Endpoint:
        veth = self._veth_name(net.id, container_id)
        mac = ipam.mac_for(address)
        gateway = None if net.internal else net.gateway
        used = {e.ifname for e in self.store.endpoints(container_id=container_id)
                if e.netns_path == str(netns_path) and e.network_id != net.id}
        ifname = next(f"eth{n}" for n in itertools.count() if f"eth{n}" not in used)
        spec = VethSpec(veth, net.bridge, netns_path, mac, str(address), net.prefixlen, gateway,
                        self._mtu(net), ifname=ifname)
        if net.driver == "overlay" and self.overlay is not None:
            ifname = self.overlay.attach_veth(net.id, spec)
        else:
            ifname = self.links.attach_veth(spec)
        return Endpoint(net.id, container_id, new_id(), str(address), net.prefixlen,
                        net.gateway, mac, veth, ifname, str(netns_path), aliases)



def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() in ("1", "true", "yes")


def _port_rule(net: Network, ep: Endpoint, port: PortMapping) -> PortRule:
    return PortRule(net.bridge, ep.ip, port.container_port, port.host_port, port.proto,
                    port.host_ip)

