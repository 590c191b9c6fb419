"""Bridges and veth pairs through netlink (pyroute2), and the few sysctls networking needs.

One ``Links`` object owns one rtnetlink socket in the host namespace, driven by a single
worker thread: pyroute2's sync ``IPRoute`` keeps per-thread sockets and event loops, so every
host-side request goes through that thread (thread-safe, one socket reused). Requests inside a
container's namespace run on a throw-away thread made by ``netns.run_in``.

``attach_veth`` is on the ``docker run`` path, so it keeps round trips few: one host request
creates the pair with the host end up on the bridge and the peer (its final name and MAC)
directly inside the namespace (IFLA_NET_NS_FD); inside the namespace a raw rtnetlink socket
looks the peer up and sends one batch (up, address, default route; :mod:`dockyard.host.rtnl`).
Interface names are at most 15 characters (IFNAMSIZ - 1).
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dockyard.errors import Conflict, Internal, InvalidArgument
from dockyard.host import netns
from dockyard.host.rtnl import configure_peer

IPRoute = Any  # pyroute2.IPRoute (untyped; imported lazily: ~150 ms)
IFNAMSIZ = 16
_ENODEV = 19
_EEXIST = 17
_EINVAL = 22
T = TypeVar("T")


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    address: str  # gateway, e.g. "172.30.0.1"
    prefixlen: int
    mtu: int = 1500
    route_localnet: bool = True  # published ports reachable on 127.0.0.1 (DNAT from OUTPUT)


@dataclass(frozen=True)
class VethSpec:
    host_name: str  # the bridge port, e.g. "dy3fa9c0b1d4e2"
    bridge: str
    netns_path: Path
    mac: str
    address: str
    prefixlen: int
    gateway: str | None  # None: no default route (e.g. internal networks)
    mtu: int = 1500
    hairpin: bool = True
    ifname: str = "eth0"  # the peer's name inside the namespace


@dataclass(frozen=True)
class Route:
    network: ipaddress.IPv4Network
    device: str


def check_ifname(name: str) -> str:
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise InvalidArgument(f"invalid interface name {name!r} (at most 15 characters)")
    return name


def _netlink_error(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _fail(what: str, exc: BaseException) -> Internal:
    return Internal(f"{what}: {exc}")


class Links:
    """Host-side link operations; ``close()`` releases the socket and the worker thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dy-netlink")
        self._nl: _Worker | None = None

    def close(self) -> None:
        def shut() -> None:
            if self._nl is not None:
                self._nl.close()
                self._nl = None
        self._pool.submit(shut).result()
        self._pool.shutdown(wait=True)

    def _call(self, fn: Callable[[_Worker], T]) -> T:
        def run() -> T:
            if self._nl is None:
                self._nl = _Worker()
            return fn(self._nl)
        return self._pool.submit(run).result()

    # -- queries ---------------------------------------------------------------------------

    def index_of(self, name: str) -> int | None:
        return self._call(lambda nl: _lookup(nl.ipr, name))

    def exists(self, name: str) -> bool:
        return self.index_of(name) is not None

    def ipv4_routes(self) -> list[Route]:
        """Directly connected networks and main-table routes (default route excluded)."""
        return self._call(lambda nl: _ipv4_routes(nl.ipr))

    # -- bridges ---------------------------------------------------------------------------

    def ensure_bridge(self, spec: BridgeSpec) -> None:
        """Create the bridge if missing, give it its address, bring it up (idempotent)."""
        check_ifname(spec.name)
        self._call(lambda nl: nl.ensure_bridge(spec))
        if spec.route_localnet:
            write_sysctl(f"net/ipv4/conf/{spec.name}/route_localnet", "1")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False if it did not exist. Deleting a veth end removes both.

        The kernel needs ~15-25 ms to unregister a veth; deleting the namespace instead is
        asynchronous (see ``NetworkManager.disconnect(delete_link=False)``).
        """
        return self._call(lambda nl: nl.delete(name))

    # -- veth pairs ------------------------------------------------------------------------

    def attach_veth(self, spec: VethSpec) -> str:
        """Create a veth pair: host end up on the bridge, peer ``spec.ifname`` configured
        inside the namespace (address, up, default route). Returns the peer's name.

        A stale pair with the same host name is replaced. Round trips: one request on the
        host socket; inside the namespace one lookup and one batch of three requests.
        """
        check_ifname(spec.host_name)
        check_ifname(spec.ifname)
        fd = netns.open_fd(spec.netns_path)
        try:
            self._call(lambda nl: nl.create_pair(spec, fd))
        finally:
            os.close(fd)
        if spec.hairpin:
            _try_write(f"/sys/class/net/{spec.host_name}/brport/hairpin_mode", "1")
        try:
            netns.run_in(spec.netns_path, lambda: configure_peer(
                spec.ifname, spec.address, spec.prefixlen, spec.gateway, str(spec.netns_path)))
        except BaseException:
            self.delete_link(spec.host_name)
            raise
        return spec.ifname


class _Worker:
    """Lives on the worker thread: the host IPRoute and the bridges' interface indexes."""

    def __init__(self) -> None:
        import pyroute2  # type: ignore[import-untyped,import-not-found,unused-ignore]
        self.ipr: IPRoute = pyroute2.IPRoute()
        self.bridges: dict[str, int] = {}

    def close(self) -> None:
        self.ipr.close()

    def ensure_bridge(self, spec: BridgeSpec) -> None:
        self.bridges[spec.name] = _ensure_bridge(self.ipr, spec)

    def delete(self, name: str) -> bool:
        self.bridges.pop(name, None)
        index = _lookup(self.ipr, name)
        if index is None:
            return False
        try:
            self.ipr.link("del", index=index)
        except Exception as exc:
            if _netlink_error(exc) == _ENODEV:
                return False
            raise _fail(f"delete link {name}", exc) from exc
        return True

    def create_pair(self, spec: VethSpec, fd: int) -> None:
        bridge = self.bridges.get(spec.bridge) or _lookup(self.ipr, spec.bridge)
        if bridge is None:
            raise Internal(f"bridge {spec.bridge} does not exist")
        self.bridges[spec.bridge] = bridge
        for attempt in range(3):
            try:
                self.ipr.link("add", ifname=spec.host_name, kind="veth", mtu=spec.mtu,
                              master=bridge, state="up",
                              peer={"ifname": spec.ifname, "net_ns_fd": fd,
                                    "address": spec.mac, "mtu": spec.mtu})
                break
            except Exception as exc:
                if not self._recover(spec, exc, attempt):
                    raise _fail(f"create veth {spec.host_name}", exc) from exc

    def _recover(self, spec: VethSpec, exc: BaseException, attempt: int) -> bool:
        """After a failed add: drop a stale host end or refresh the bridge index; retry?"""
        code = _netlink_error(exc)
        if attempt == 2 or code not in (_EEXIST, _ENODEV, _EINVAL):
            return False
        if code == _EEXIST:
            if _lookup(self.ipr, spec.host_name) is None:
                raise Conflict(f"interface {spec.ifname} already exists in {spec.netns_path}")
            self.ipr.link("del", ifname=spec.host_name)
            return True
        fresh = _lookup(self.ipr, spec.bridge)
        if fresh is None or fresh == self.bridges.get(spec.bridge):
            return False
        self.bridges[spec.bridge] = fresh
        return True


def _lookup(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _ipv4_routes(ipr: IPRoute) -> list[Route]:
    names = {int(m["index"]): str(m.get("IFLA_IFNAME")) for m in ipr.link("dump")}
    found: list[Route] = []
    for msg in ipr.addr("dump", family=2):
        net = ipaddress.IPv4Network(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}", strict=False)
        found.append(Route(net, names.get(int(msg["index"]), "")))
    for msg in ipr.route("dump", family=2, table=254):
        if msg["dst_len"] == 0:
            continue
        net = ipaddress.IPv4Network(f"{msg.get('RTA_DST')}/{msg['dst_len']}", strict=False)
        found.append(Route(net, names.get(int(msg.get("RTA_OIF") or 0), "")))
    return found


def _ensure_bridge(ipr: IPRoute, spec: BridgeSpec) -> int:
    index = _lookup(ipr, spec.name)
    if index is None:
        try:
            ipr.link("add", ifname=spec.name, kind="bridge", mtu=spec.mtu)
        except Exception as exc:
            if _netlink_error(exc) != _EEXIST:
                raise _fail(f"create bridge {spec.name}", exc) from exc
        index = _lookup(ipr, spec.name)
        if index is None:
            raise Internal(f"bridge {spec.name} vanished while being created")
    else:
        kind = _kind(ipr, index)
        if kind != "bridge":
            raise Conflict(f"{spec.name} exists and is not a bridge ({kind or 'unknown'})")
    _pin_mac(ipr, index, spec.name)
    have = {(str(m.get("IFA_ADDRESS")), int(m["prefixlen"])) for m in ipr.addr("dump", index=index)
            if m["family"] == 2}
    for address, prefixlen in have - {(spec.address, spec.prefixlen)}:
        # A bridge carries exactly its network's gateway: stale addresses (an earlier
        # subnet of this network) would make routes to other networks ambiguous.
        try:
            ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        except Exception as exc:
            raise _fail(f"remove stale address {address} from {spec.name}", exc) from exc
    if (spec.address, spec.prefixlen) not in have:
        try:
            ipr.addr("add", index=index, address=spec.address, prefixlen=spec.prefixlen)
        except Exception as exc:
            if _netlink_error(exc) != _EEXIST:
                raise _fail(f"address {spec.address} on {spec.name}", exc) from exc
    ipr.link("set", index=index, state="up")
    return index


def _pin_mac(ipr: IPRoute, index: int, name: str) -> None:
    """Make the bridge's MAC its own (NET_ADDR_SET), as Docker does. Otherwise the kernel
    moves it to the lowest MAC among the ports whenever a veth joins or leaves, and the
    containers' ARP entries for the gateway (the embedded DNS, the default route) point at a
    MAC nobody answers for until they expire: seconds of timeouts after a container is
    replaced."""
    try:
        if Path(f"/sys/class/net/{name}/addr_assign_type").read_text().strip() == "3":
            return
    except OSError:
        pass  # no sysfs: pinning the current address again is harmless
    mac = ipr.link("get", index=index)[0].get_attr("IFLA_ADDRESS")
    try:
        ipr.link("set", index=index, address=mac)
    except Exception as exc:
        raise _fail(f"set the address of {name}", exc) from exc


def _kind(ipr: IPRoute, index: int) -> str:
    msg = ipr.link("get", index=index)[0]
    info = msg.get("IFLA_LINKINFO")
    return str(info.get("IFLA_INFO_KIND")) if info is not None else ""


# -- sysctls ---------------------------------------------------------------------------------

_SYSCTL = Path("/proc/sys")


def read_sysctl(key: str) -> str:
    return (_SYSCTL / key).read_text().strip()


def write_sysctl(key: str, value: str) -> None:
    path = _SYSCTL / key
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
    except OSError as exc:
        raise Internal(f"sysctl {key}={value}: {exc.strerror}") from exc


def _try_write(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError:
        pass  # hairpin is best effort (e.g. sysfs not mounted)


def ip_forward() -> bool:
    return read_sysctl("net/ipv4/ip_forward") == "1"


def set_ip_forward(enabled: bool) -> None:
    write_sysctl("net/ipv4/ip_forward", "1" if enabled else "0")
