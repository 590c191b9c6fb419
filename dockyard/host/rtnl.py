"""Raw rtnetlink inside a container's namespace: the veth peer's lookup and configuration.

Four fixed-layout requests, encoded by hand: pyroute2 needs ~0.25 ms per request just to
compile it, which would double the cost of a connect. tests/unit/test_links_rtnl.py checks
the bytes against pyroute2's IPBatch. :func:`configure_peer` runs on a thread inside the
namespace (``netns.run_in``) on behalf of :meth:`dockyard.host.links.Links.attach_veth`.
"""
from __future__ import annotations

import os
import socket
import struct

from dockyard.errors import Internal

_NETLINK_ROUTE = 0
_EEXIST = 17

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 18, 20, 24
_IFLA_IFNAME, _IFA_ADDRESS, _IFA_LOCAL, _RTA_GATEWAY = 3, 1, 2, 5
_IFF_UP = 0x1
_AF_INET = 2
_RT_TABLE_MAIN, _RTPROT_STATIC, _RTN_UNICAST = 254, 4, 1


def _attr(kind: int, value: bytes) -> bytes:
    size = 4 + len(value)
    return struct.pack("=HH", size, kind) + value + b"\0" * (-size % 4)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HDR.pack(_HDR.size + len(body), kind, flags | _NLM_F_REQUEST | _NLM_F_ACK, seq, 0) \
        + body


def rtnl_getlink(seq: int, ifname: str) -> bytes:
    body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(_IFLA_IFNAME, ifname.encode() + b"\0")
    return _message(_RTM_GETLINK, 0, seq, body)


def rtnl_link_up(seq: int, index: int) -> bytes:
    return _message(_RTM_NEWLINK, 0, seq, _IFINFO.pack(0, 0, index, _IFF_UP, _IFF_UP))


def rtnl_add_address(seq: int, index: int, address: str, prefixlen: int) -> bytes:
    packed = socket.inet_aton(address)
    body = (_IFADDR.pack(_AF_INET, prefixlen, 0, 0, index)
            + _attr(_IFA_ADDRESS, packed) + _attr(_IFA_LOCAL, packed))
    return _message(_RTM_NEWADDR, _NLM_F_EXCL | _NLM_F_CREATE, seq, body)


def rtnl_default_route(seq: int, gateway: str) -> bytes:
    body = (_RTMSG.pack(_AF_INET, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_STATIC, 0, _RTN_UNICAST, 0)
            + _attr(_RTA_GATEWAY, socket.inet_aton(gateway)))
    return _message(_RTM_NEWROUTE, _NLM_F_EXCL | _NLM_F_CREATE, seq, body)


def configure_peer(ifname: str, address: str, prefixlen: int, gateway: str | None,
                   where: str) -> None:
    """On a thread inside the namespace: look the peer ``ifname`` up, then bring it up,
    give it its address and (with a gateway) the default route. ``where`` names the
    namespace in errors."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        replies = _exchange(sock, rtnl_getlink(1, ifname))
        index = next((_IFINFO.unpack_from(body)[2] for kind, _, body in replies
                      if kind == _RTM_NEWLINK), 0)
        if not index:
            raise Internal(f"veth peer {ifname} missing in {where}")
        batch = rtnl_link_up(2, index) + rtnl_add_address(3, index, address, prefixlen)
        if gateway:
            batch += rtnl_default_route(4, gateway)
        for kind, error, _ in _exchange(sock, batch):
            if error and not (kind == _RTM_NEWROUTE and error == _EEXIST):
                raise Internal(f"configure {ifname} in {where}: {os.strerror(error)}")


def _exchange(sock: socket.socket, data: bytes) -> list[tuple[int, int, bytes]]:
    """Send requests (each with NLM_F_ACK); (type, errno, body) per reply, where ``type`` is
    the request's type for acknowledgements and errors."""
    pending = {_HDR.unpack_from(data, off)[3]: _HDR.unpack_from(data, off)[1]
               for off in _offsets(data)}
    sock.sendall(data)
    replies: list[tuple[int, int, bytes]] = []
    while pending:
        chunk = sock.recv(65536)
        for off in _offsets(chunk):
            length, kind, _, seq, _ = _HDR.unpack_from(chunk, off)
            body = chunk[off + _HDR.size: off + length]
            if kind == _NLMSG_ERROR:
                error = -int(struct.unpack_from("=i", body, 0)[0])
                replies.append((pending.pop(seq, 0), error, body))
            elif kind != _NLMSG_DONE:
                replies.append((kind, 0, body))
    return replies


def _offsets(data: bytes) -> list[int]:
    found, off = [], 0
    while off + _HDR.size <= len(data):
        length = _HDR.unpack_from(data, off)[0]
        if length < _HDR.size:
            break
        found.append(off)
        off += (length + 3) & ~3
    return found
