"""The hand-encoded rtnetlink requests of ``host.rtnl`` equal what pyroute2 compiles."""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dockyard.host import rtnl

pyroute2 = pytest.importorskip("pyroute2")


@pytest.fixture(scope="module")
def compile_() -> Iterator[Callable[[Callable[[Any], object]], bytes]]:
    ipb = pyroute2.IPBatch()

    def run(request: Callable[[Any], object]) -> bytes:
        ipb.reset()
        request(ipb)
        return _normalise(bytes(ipb.batch))

    yield run
    ipb.close()


def _normalise(data: bytes, seq: int = 0) -> bytes:
    """Zero the sequence number and port id (pyroute2 picks its own)."""
    out = bytearray(data)
    struct.pack_into("=II", out, 8, seq, 0)
    return bytes(out)


def test_getlink_by_name(compile_: Callable[..., bytes]) -> None:
    assert _normalise(rtnl.rtnl_getlink(7, "eth0")) == compile_(
        lambda b: b.link("get", ifname="eth0"))


def test_link_up(compile_: Callable[..., bytes]) -> None:
    assert _normalise(rtnl.rtnl_link_up(1, 42)) == compile_(
        lambda b: b.link("set", index=42, state="up"))


def test_add_address(compile_: Callable[..., bytes]) -> None:
    assert _normalise(rtnl.rtnl_add_address(1, 42, "172.31.0.2", 24)) == compile_(
        lambda b: b.addr("add", index=42, address="172.31.0.2", prefixlen=24))


def test_default_route(compile_: Callable[..., bytes]) -> None:
    assert _normalise(rtnl.rtnl_default_route(1, "172.31.0.1")) == compile_(
        lambda b: b.route("add", dst="0.0.0.0/0", gateway="172.31.0.1"))


def test_reply_offsets_walk_aligned_messages() -> None:
    batch = rtnl.rtnl_getlink(1, "eth10") + rtnl.rtnl_link_up(2, 3)
    assert rtnl._offsets(batch) == [0, len(rtnl.rtnl_getlink(1, "eth10"))]
    assert rtnl._offsets(b"\0" * 20) == []
