"""Container networking: a network namespace per container, endpoints on bridge networks,
published ports (kernel DNAT in our own chains), /etc/hosts entries for names and links;
and the ``/networks`` use-cases.

Modes: ``bridge``/``default`` (the predefined bridge), a user network name or id, ``host``,
``none`` (loopback only) and ``container:<ref>`` (handled by the spec builder).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine import createconfig
from dockyard.engine.containers import Containers
from dockyard.engine.paths import Paths
from dockyard.errors import Conflict, DockyardError, Forbidden, Internal, NotFound
from dockyard.host import netns
from dockyard.metadata.containers import ContainerRecord
from dockyard.network import ports as portspecs
from dockyard.network.bridge import NetworkManager
from dockyard.network.dns import DnsServer
from dockyard.network.portalloc import PortAllocator, bind_port
from dockyard.network.store import Endpoint, Network, PortMapping

log = logging.getLogger("dockyard.engine")
SPECIAL = ("host", "none")


@dataclass(frozen=True)
class Sandbox:
    """What a started container got: its netns file and endpoints (first = primary)."""

    path: str
    endpoints: list[Endpoint] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # "ip\tname alias" lines for /etc/hosts
    nameservers: list[str] = field(default_factory=list)  # the embedded DNS, user networks


class Networks:
    def __init__(self, manager: NetworkManager, containers: Containers, paths: Paths,
                 offline: bool = False) -> None:
        self.manager = manager
        self.offline = offline  # no DNS forwarding off the machine
        self.containers = containers
        self.paths = paths
        # explicit and dynamic host ports are bind-tested, and held by a bound socket while
        # published: with DNAT nothing else would stop another process binding them
        self.allocator = PortAllocator(reserve=bind_port)
        self._dns: DnsServer | None = None
        # parallel starts (compose) on one new network: one server, one listener per network
        self._dns_lock = threading.RLock()

    # -- the embedded DNS (user-defined networks) ------------------------------------------
    @property
    def dns(self) -> DnsServer:
        with self._dns_lock:
            if self._dns is None:
                self._dns = DnsServer(upstreams=[] if self.offline else None)
            return self._dns

    def _serve_dns(self, net: Network) -> str:
        """Listen on the network's gateway (once); returns the nameserver address."""
        with self._dns_lock:
            if net.id not in self.dns.addresses():
                self.dns.registry.set_network_name(net.id, net.name)
                self.dns.listen(net.id, net.gateway, 53, subnet=net.subnet)
        return net.gateway

    def _register(self, net: Network, rec: ContainerRecord, ep: Endpoint) -> None:
        names = [rec.name, rec.id[:12], *ep.aliases]
        self.dns.registry.register(net.id, dict.fromkeys(names), ep.ip, container=rec.id)

    def boot(self) -> None:
        """Predefined networks, bridges and rules back in place; ports of live containers
        claimed again (the allocator lives in memory)."""
        self.manager.ensure_defaults()
        self.manager.restore()
        for ep in self.manager.endpoints():
            for port in ep.ports:
                self.allocator.restore(portspecs.PortBinding(
                    port.container_port, port.proto, port.host_ip, port.host_port))
            rec = self.containers.get(ep.container_id)
            if rec is None or rec.state.status not in ("running", "paused"):
                continue
            try:
                net = self.manager.get(ep.network_id)
            except NotFound:
                continue
            if not net.predefined and net.driver == "bridge":  # the DNS registry lives in
                self._serve_dns(net)  # memory: fill it again (overlays: the swarm agent)
                self._register(net, rec, ep)

    def release_stale(self) -> None:
        """Boot, after live containers were re-adopted: release what a crash left connected
        (a kill -9 between connect and the record's update, or during a removal) — the
        endpoints, addresses, ports and namespace files of containers that are not running
        or no longer exist."""
        live = {rec.id[:16] for rec in self.containers.all() if rec.state.running}
        for ep in self.manager.endpoints():
            if ep.container_id[:16] in live:
                continue
            for port in ep.ports:
                self.allocator.release(portspecs.PortBinding(
                    port.container_port, port.proto, port.host_ip, port.host_port))
            try:
                net = self.manager.get(ep.network_id)
                self.manager.disconnect(net.name, ep.container_id, delete_link=False)
            except NotFound:
                pass
        directory = self.paths.exec_root / "netns"
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            if path.name not in live:
                netns.delete(path)

    # -- which networks a container is on ------------------------------------------------
    @staticmethod
    def mode(rec: ContainerRecord) -> str:
        mode = rec.host_config.get("NetworkMode") or "default"
        return "bridge" if mode == "default" else mode

    def wanted(self, rec: ContainerRecord) -> list[tuple[str, dict[str, Any]]]:
        """(network, endpoint config) pairs: the mode's network, then EndpointsConfig."""
        mode = self.mode(rec)
        if mode in SPECIAL or mode.startswith("container:"):
            return []
        configs = {("bridge" if name == "default" else name): cfg or {} for name, cfg in
                   ((rec.extra.get("networking") or {}).get("EndpointsConfig") or {}).items()}
        out = [(mode, configs.pop(mode, None) or {})]
        if mode in ((rec.extra.get("networking") or {}).get("Detached") or ()):
            out = []  # disconnected from its NetworkMode network (HostConfig keeps the mode)
        out += [(name, cfg) for name, cfg in configs.items()]
        return out

    def validate(self, rec: ContainerRecord) -> None:
        for name, _ in self.wanted(rec):
            self.manager.get(name)

    # -- start / exit ----------------------------------------------------------------------
    def netns_path(self, rec: ContainerRecord) -> Path:
        return self.paths.exec_root / "netns" / rec.id[:16]

    def setup(self, rec: ContainerRecord) -> Sandbox | None:
        """Before the runtime creates the container: namespace, endpoints, ports, hosts."""
        wanted = self.wanted(rec)
        if not wanted:
            return None
        if any(name == "bridge" for name, _ in wanted):
            self.check_links(rec)  # before anything is made: nothing to undo
        path = self.netns_path(rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self.teardown(rec)
        netns.create(path)
        endpoints: list[Endpoint] = []
        nameservers: list[str] = []
        try:
            for name, cfg in wanted:
                aliases = [*(cfg.get("Aliases") or [])]
                ip = ((cfg.get("IPAMConfig") or {}).get("IPv4Address")) or None
                ep = self.manager.connect(name, rec.id, path, aliases, ip)
                endpoints.append(ep)
                net = self.manager.get(name)
                if not net.predefined:
                    nameservers.append(self._serve_dns(net))
                    self._register(net, rec, ep)
            endpoints[0] = self._publish(rec, wanted[0][0], endpoints[0])
        except BaseException:
            # a failed start leaves no veth behind, not even until the kernel's deferred
            # cleanup of the namespace runs
            self._release(rec, endpoints, path, delete_links=True)
            raise
        return Sandbox(str(path), endpoints, self._hosts(rec, endpoints),
                       list(dict.fromkeys(nameservers)))

    def _publish(self, rec: ContainerRecord, network: str, ep: Endpoint) -> Endpoint:
        bindings = portspecs.bindings_from_api(rec.host_config.get("PortBindings"))
        if rec.host_config.get("PublishAllPorts"):
            bindings = portspecs.publish_all(list(rec.config.get("ExposedPorts") or {}),
                                             bindings)
        if not bindings:
            return ep
        taken: list[portspecs.PortBinding] = []
        try:
            for binding in bindings:
                taken.append(self.allocator.allocate(binding))
            return self.manager.publish(network, rec.id, [
                PortMapping(b.container_port, b.host_port, b.proto, b.host_ip) for b in taken])
        except DockyardError as exc:
            self._release_ports(taken)
            raise Internal(f"driver failed programming external connectivity on endpoint "
                           f"{rec.name} ({ep.endpoint_id}): {exc}") from None
        except BaseException:
            self._release_ports(taken)
            raise

    def _release_ports(self, bindings: list[portspecs.PortBinding]) -> None:
        for binding in bindings:
            self.allocator.release(binding)

    def check_links(self, rec: ContainerRecord) -> None:
        """Start, on the default bridge: every linked container must be running (Docker's
        ``Cannot link to a non running container: /db AS /web/db``). A link whose container
        was removed since is dropped, as Docker drops it with the container."""
        for link in rec.host_config.get("Links") or []:
            target, alias = createconfig.parse_link(link)
            other = self.containers.find(target)
            if other is None or other.id == rec.id:
                continue
            if other.state.status not in ("running", "paused"):
                raise Internal(f"Cannot link to a non running container: /{other.name} AS "
                               f"/{rec.name}/{alias}")

    def _hosts(self, rec: ContainerRecord, endpoints: list[Endpoint]) -> list[str]:
        lines = []
        for link in rec.host_config.get("Links") or []:
            target, alias_name = createconfig.parse_link(link)
            other = self.containers.find(target)
            if other is None:  # removed since: the link went with it
                continue
            for ep in self.manager.endpoints(other.id):
                if any(ep.network_id == mine.network_id for mine in endpoints):
                    lines.append(f"{ep.ip}\t{alias_name} {other.id[:12]} {other.name}")
                    break
        return lines + self._host_gateway_lines(rec)

    def _host_gateway_lines(self, rec: ContainerRecord) -> list[str]:
        """``--add-host NAME:host-gateway``: the default bridge's gateway, as Docker does."""
        names = [e.partition(":")[0] for e in rec.host_config.get("ExtraHosts") or []
                 if e.partition(":")[2] == "host-gateway"]
        try:
            gateway = self.manager.get("bridge").gateway if names else ""
        except NotFound:
            gateway = ""
        return [f"{gateway}\t{name}" for name in names if gateway]

    def teardown(self, rec: ContainerRecord) -> None:
        """After the container's task is gone: ports, endpoints, namespace."""
        self._release(rec, self.manager.endpoints(rec.id), self.netns_path(rec))

    def _release(self, rec: ContainerRecord, endpoints: list[Endpoint], path: Path,
                 delete_links: bool = False) -> None:
        for ep in endpoints:
            for port in ep.ports:
                self.allocator.release(portspecs.PortBinding(
                    port.container_port, port.proto, port.host_ip, port.host_port))
            if self._dns is not None:
                self._dns.registry.unregister(ep.network_id, None, ip=ep.ip,
                                              container=rec.id)
            try:
                net = self.manager.get(ep.network_id)
                self.manager.disconnect(net.name, rec.id, delete_link=delete_links)
            except NotFound:
                pass
        netns.delete(path)

    # -- views -----------------------------------------------------------------------------
    def endpoints_of(self, rec: ContainerRecord) -> list[tuple[Network, Endpoint | None]]:
        """Live endpoints, then ``(network, None)`` for each configured network the container
        is not attached to now: Docker lists those too for created and stopped containers
        (docker-compose 1.29 reads them before it reconnects a new container)."""
        out: list[tuple[Network, Endpoint | None]] = []
        for ep in self.manager.endpoints(rec.id):
            try:
                out.append((self.manager.get(ep.network_id), ep))
            except NotFound:
                continue
        seen = {net.id for net, _ in out}
        for name, _ in self.wanted(rec):
            try:
                net = self.manager.get(name)
            except NotFound:
                continue
            if net.id not in seen:
                seen.add(net.id)
                out.append((net, None))
        return out

    def names(self) -> dict[str, str]:
        return {rec.id: rec.name for rec in self.containers.all()}

    # -- /networks -------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> Network:
        ipam = (body.get("IPAM") or {}).get("Config") or [{}]
        first = ipam[0] if ipam else {}
        return self.manager.create(body.get("Name") or "", body.get("Driver") or "bridge",
                                   first.get("Subnet") or None, first.get("Gateway") or None,
                                   bool(body.get("Internal")), body.get("Labels") or {},
                                   body.get("Options") or {},
                                   attachable=bool(body.get("Attachable")))

    def remove(self, ref: str) -> None:
        net = self.manager.get(ref)
        users = [ep for ep in self.manager.endpoints() if ep.network_id == net.id]
        if users:
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} "
                            "has active endpoints")
        if self._dns is not None:
            self._dns.unlisten(net.id)
            self._dns.registry.remove_network(net.id)
        self.manager.remove(ref)

    def connect(self, ref: str, container: str, config: dict[str, Any]) -> None:
        rec = self.containers.lookup(container)
        net = self.manager.get(ref)
        networking = rec.extra.setdefault("networking", {})
        configs = dict(networking.get("EndpointsConfig") or {})
        if any(name == net.name for name, _ in self.wanted(rec)):
            raise Forbidden(f"endpoint with name {rec.name} already exists in network "
                            f"{net.name}")
        configs[net.name] = config or {}
        networking["EndpointsConfig"] = configs
        networking["Detached"] = [n for n in networking.get("Detached") or () if n != net.name]
        self.containers.table.save(rec)
        if rec.state.status in ("running", "paused"):
            aliases = [*((config or {}).get("Aliases") or [])]
            ep = self.manager.connect(net.name, rec.id, self.netns_path(rec), aliases)
            if not net.predefined:
                self._serve_dns(net)
                self._register(net, rec, ep)

    def disconnect(self, ref: str, container: str) -> None:
        rec = self.containers.lookup(container)
        net = self.manager.get(ref)
        if not any(name == net.name for name, _ in self.wanted(rec)):
            raise Forbidden(f"container {rec.id} is not connected to network {net.name}")
        networking = rec.extra.setdefault("networking", {})
        configs = dict(networking.get("EndpointsConfig") or {})
        configs.pop(net.name, None)
        networking["EndpointsConfig"] = configs
        if self.mode(rec) == net.name:  # Docker keeps HostConfig.NetworkMode as it was
            networking["Detached"] = [*(networking.get("Detached") or ()), net.name]
        self.containers.table.save(rec)
        if rec.state.status in ("running", "paused"):
            ep = next((e for e in self.manager.endpoints(rec.id) if e.network_id == net.id),
                      None)
            if ep is not None and self._dns is not None:
                self._dns.registry.unregister(net.id, None, ip=ep.ip, container=rec.id)
            self.manager.disconnect(net.name, rec.id)

    def prune(self, selected: Callable[[Network], bool] | None = None) -> list[str]:
        """Remove unused custom networks (those ``selected`` accepts, if given)."""
        used = {ep.network_id for ep in self.manager.endpoints()}
        wanted = {name for rec in self.containers.all() for name, _ in self.wanted(rec)}
        removed = []
        for net in self.manager.list():
            if net.predefined or net.id in used or net.name in wanted or \
                    net.driver == "overlay":  # the swarm's, recorded where tasks use it
                continue
            if selected is not None and not selected(net):
                continue
            try:
                self.manager.remove(net.id)
                removed.append(net.name)
            except Conflict:
                continue
        return removed
