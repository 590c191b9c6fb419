"""An overlay network's namespace on one node: a bridge ``br0`` and a VXLAN device in a
network namespace of its own, and the veths that plug containers into that bridge.

The VXLAN device is created in the daemon's own namespace (so its UDP socket, on the node's
data port, lives there and reaches the other nodes) under a name unique to this daemon and
network, then moved into the overlay namespace and renamed ``vxlan0``. Learning is off: the
kernel would record a learned peer with *this* node's port, which is wrong when nodes use
different data ports (two daemons on one host); instead the forwarding database holds an
all-zeros entry per peer node (broadcast, ARP and unknown unicast are sent to every peer)
and a static entry per remote container MAC. All netlink requests run on throw-away threads
inside the right namespace (``netns.run_in``), each with its own pyroute2 socket.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dockyard.errors import Conflict, Internal
from dockyard.host import netns
from dockyard.host.links import VethSpec, check_ifname
from dockyard.host.rtnl import configure_peer

BRIDGE, VXLAN = "br0", "vxlan0"
ZERO_MAC = "00:00:00:00:00:00"
NTF_SELF = 0x02
_EEXIST = 17
_HOST_NS = Path("/proc/self/ns/net")
T = TypeVar("T")


@dataclass(frozen=True)
class OverlaySpec:
    path: Path  # the namespace file
    device: str  # the VXLAN device's name while in the daemon's namespace (unique)
    vni: int
    port: int  # this node's data port (UDP)
    address: str  # the bridge's address (this node's on the network)
    prefixlen: int
    mac: str
    mtu: int = 1450


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: str
    port: int


def _ipr(fn: Callable[[Any], T]) -> Callable[[], T]:
    def run() -> T:
        import pyroute2  # type: ignore[import-untyped,import-not-found,unused-ignore]
        with pyroute2.IPRoute() as ipr:
            return fn(ipr)
    return run


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def ensure(spec: OverlaySpec) -> None:
    """The namespace with ``br0`` (address, MTU) and ``vxlan0`` on it, up (idempotent)."""
    check_ifname(spec.device)
    if not netns.is_netns(spec.path):
        netns.create(spec.path)
    if netns.run_in(spec.path, _ipr(lambda ipr: _index(ipr, VXLAN))) is None:
        _make_vxlan(spec)
    try:
        netns.run_in(spec.path, _ipr(lambda ipr: _configure(ipr, spec)))
    except Exception as exc:
        if isinstance(exc, (Internal, Conflict)):
            raise
        raise Internal(f"overlay namespace {spec.path}: {exc}") from exc


def _make_vxlan(spec: OverlaySpec) -> None:
    fd = netns.open_fd(spec.path)

    def host(ipr: Any) -> None:
        stale = _index(ipr, spec.device)
        if stale is not None:
            ipr.link("del", index=stale)
        try:
            ipr.link("add", ifname=spec.device, kind="vxlan", vxlan_id=spec.vni,
                     vxlan_port=spec.port, vxlan_learning=0, mtu=spec.mtu)
        except Exception as exc:
            if _code(exc) == _EEXIST:
                raise Conflict(f"vxlan: a device for VNI {spec.vni} on port {spec.port} "
                               "already exists") from None
            raise Internal(f"create vxlan device {spec.device}: {exc}") from exc
        index = _index(ipr, spec.device)
        try:
            ipr.link("set", index=index, net_ns_fd=fd)
        except Exception as exc:
            ipr.link("del", index=index)
            raise Internal(f"move {spec.device} into {spec.path}: {exc}") from exc
    try:
        netns.run_in(_HOST_NS, _ipr(host))
    finally:
        os.close(fd)


def _configure(ipr: Any, spec: OverlaySpec) -> None:
    vx = _index(ipr, VXLAN)
    if vx is None:
        vx = _index(ipr, spec.device)
        if vx is None:
            raise Internal(f"vxlan device missing in {spec.path}")
        ipr.link("set", index=vx, ifname=VXLAN)
    br = _index(ipr, BRIDGE)
    if br is None:
        ipr.link("add", ifname=BRIDGE, kind="bridge", mtu=spec.mtu, address=spec.mac)
        br = _index(ipr, BRIDGE)
    have = {(str(m.get_attr("IFA_ADDRESS")), int(m["prefixlen"]))
            for m in ipr.addr("dump", index=br) if m["family"] == 2}
    for address, prefixlen in have - {(spec.address, spec.prefixlen)}:
        ipr.addr("del", index=br, address=address, prefixlen=prefixlen)
    if (spec.address, spec.prefixlen) not in have:
        ipr.addr("add", index=br, address=spec.address, prefixlen=spec.prefixlen)
    ipr.link("set", index=vx, master=br, mtu=spec.mtu, state="up")
    ipr.link("set", index=br, state="up")


def fdb(path: Path) -> set[FdbEntry]:
    """The VXLAN device's static entries that point at a remote node."""
    def dump(ipr: Any) -> set[FdbEntry]:
        vx = _index(ipr, VXLAN)
        found = set()
        for m in ipr.fdb("dump") if vx is not None else ():
            dst = m.get_attr("NDA_DST")
            if m["ifindex"] == vx and dst:
                found.add(FdbEntry(str(m.get_attr("NDA_LLADDR")), str(dst),
                                   int(m.get_attr("NDA_PORT") or 0)))
        return found
    return netns.run_in(path, _ipr(dump))


def set_fdb(path: Path, add: set[FdbEntry], remove: set[FdbEntry]) -> None:
    def change(ipr: Any) -> None:
        vx = _index(ipr, VXLAN)
        if vx is None:
            raise Internal(f"vxlan device missing in {path}")
        for e in remove:
            try:
                ipr.fdb("del", ifindex=vx, lladdr=e.mac, dst=e.dst, port=e.port,
                        flags=NTF_SELF)
            except Exception:  # noqa: BLE001 - already gone
                pass
        for e in sorted(add, key=lambda e: (e.mac != ZERO_MAC, e.mac, e.dst)):
            command = "append" if e.mac == ZERO_MAC else "replace"
            try:
                ipr.fdb(command, ifindex=vx, lladdr=e.mac, dst=e.dst, port=e.port,
                        flags=NTF_SELF)
            except Exception as exc:
                if _code(exc) != _EEXIST:
                    raise Internal(f"vxlan forwarding entry {e}: {exc}") from exc
    netns.run_in(path, _ipr(change))


def attach(path: Path, spec: VethSpec) -> str:
    """A veth from the overlay's bridge into ``spec.netns_path``, configured there (address,
    up; a default route only with ``spec.gateway``). Returns the peer's name."""
    check_ifname(spec.host_name)
    check_ifname(spec.ifname)
    fd = netns.open_fd(spec.netns_path)

    def pair(ipr: Any) -> None:
        br = _index(ipr, BRIDGE)
        if br is None:
            raise Internal(f"bridge {BRIDGE} missing in {path}")
        stale = _index(ipr, spec.host_name)
        if stale is not None:
            ipr.link("del", index=stale)
        ipr.link("add", ifname=spec.host_name, kind="veth", mtu=spec.mtu, master=br,
                 state="up", peer={"ifname": spec.ifname, "net_ns_fd": fd,
                                   "address": spec.mac, "mtu": spec.mtu})
    try:
        netns.run_in(path, _ipr(pair))
    except Exception as exc:
        if isinstance(exc, Internal):
            raise
        raise Internal(f"create veth {spec.host_name} in {path}: {exc}") from exc
    finally:
        os.close(fd)
    netns.run_in(spec.netns_path, lambda: configure_peer(
        spec.ifname, spec.address, spec.prefixlen, spec.gateway, str(spec.netns_path)))
    return spec.ifname


def destroy(path: Path) -> None:
    """Delete the VXLAN device first (its UDP socket goes at once, not when the kernel gets
    round to the namespace), then the namespace with its bridge and veths."""
    if netns.is_netns(path):
        def drop(ipr: Any) -> None:
            vx = _index(ipr, VXLAN)
            if vx is not None:
                ipr.link("del", index=vx)
        try:
            netns.run_in(path, _ipr(drop))
        except Exception:  # noqa: BLE001 - the namespace goes anyway
            pass
    netns.delete(path)
