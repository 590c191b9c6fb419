"""The routing mesh on one node: a listener per port a swarm service publishes in ``ingress``
mode, balancing connections round-robin over the service's running tasks.

Every node listens (on ``--swarm-publish-addr``, every address by default, as Docker) whether
or not it runs a task of the service. Each accepted connection (or UDP flow) goes to the next
task's address on the ``ingress`` network, from this node's own address there: the upstream
socket is made inside the node's ingress namespace (``network.overlay``), where ``br0``
carries that address, so nothing is routed through the host's namespace and two nodes can
share one host. Bytes move through the userland proxy (``proxy.PortForwarder``, one selector
thread); with no running task a connection is accepted and closed at once.

``Mesh.sync`` makes the listeners exactly what the swarm agent wants (``agentnet.MeshPort``,
twice a second): new ports bind (a port busy on this host is logged and tried again), gone
ones close with their connections, and the backends of the others are swapped in place.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.host import netns
from dockyard.network.ports import PortBinding
from dockyard.network.proxy import PortForwarder
from dockyard.network.relay import Target

log = logging.getLogger("dockyard.network")
DEFAULT_PUBLISH_ADDR = "0.0.0.0"


@dataclass(frozen=True)
class MeshListener:
    protocol: str
    port: int  # published on this node
    target: int  # the tasks' port
    backends: tuple[str, ...] = ()  # the tasks' ingress addresses


@dataclass(frozen=True)
class NsTarget(Target):
    """A task behind the mesh: reached from inside the node's ingress namespace."""
    netns: str = ""

    def open(self, kind: int) -> socket.socket:
        def make() -> socket.socket:
            return socket.socket(socket.AF_INET, kind)
        try:
            return netns.run_in(Path(self.netns), make)
        except DockyardError as exc:  # the namespace went meanwhile
            raise OSError(str(exc)) from None


class _Pool:
    """The chooser handed to the forwarder: the next backend at each call."""

    def __init__(self, path: Path, target: int) -> None:
        self.path, self.target = path, target
        self.backends: tuple[str, ...] = ()
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> Target | None:
        with self._lock:
            backends = self.backends
            if not backends:
                return None
            ip = backends[self._next % len(backends)]
            self._next += 1
        return NsTarget(ip, self.target, str(self.path))


class Mesh:
    def __init__(self, address: str = DEFAULT_PUBLISH_ADDR) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._forwarder = PortForwarder()
        self._pools: dict[tuple[str, int], tuple[_Pool, PortBinding]] = {}
        self._failed: set[tuple[str, int]] = set()

    def ports(self) -> list[tuple[str, int]]:
        with self._lock:
            return sorted(self._pools)

    def sync(self, path: Path | None, wanted: Sequence[MeshListener]) -> None:
        """Listeners for exactly ``wanted``, their upstreams made in the namespace at
        ``path`` (None: no ingress here, no listener)."""
        want = {(w.protocol, w.port): w for w in wanted} if path is not None else {}
        with self._lock:
            for key, (pool, binding) in list(self._pools.items()):
                w = want.get(key)
                if w is None or w.target != pool.target or pool.path != path:
                    self._forwarder.remove(binding)
                    del self._pools[key]
            for key, w in want.items():
                assert path is not None
                if key not in self._pools:
                    pool = _Pool(path, w.target)
                    try:
                        bound = self._forwarder.add(
                            PortBinding(w.target, w.protocol, self.address, w.port), pool)
                    except DockyardError as exc:
                        if key not in self._failed:
                            log.warning("routing mesh: port %s/%s: %s", w.port, w.protocol,
                                        exc)
                            self._failed.add(key)
                        continue
                    self._failed.discard(key)
                    self._pools[key] = (pool, bound)
                self._pools[key][0].backends = w.backends
            self._failed &= set(want)

    def close(self) -> None:
        """Every listener and connection closed (the mesh may be used again)."""
        with self._lock:
            self._pools.clear()
            self._failed.clear()
            forwarder, self._forwarder = self._forwarder, PortForwarder()
        forwarder.close()
