"""Local address facts read from the kernel (no packet is ever sent).

``default_address`` is what ``docker swarm init`` advertises when told nothing: the IPv4
address of the interface holding the default route.
"""
from __future__ import annotations

import fcntl
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915


def default_interface(route_table: Path = Path("/proc/net/route")) -> str | None:
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return fields[0]
    return None


def interface_address(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            answer = fcntl.ioctl(s.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


def default_address() -> str | None:
    name = default_interface()
    return interface_address(name) if name else None
