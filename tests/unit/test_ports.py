"""Published ports: Docker's ``-p`` forms and errors, the API shapes, host port allocation."""
from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.network.ports import (
    DEFAULT_EPHEMERAL_RANGE,
    PortAllocator,
    PortBinding,
    bindings_from_api,
    ephemeral_range,
    network_settings_ports,
    parse_port_spec,
    parse_port_specs,
    port_is_free,
    publish_all,
)

B = PortBinding


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [B(80)]),
    ("80/udp", [B(80, "udp")]),
    ("80/TCP", [B(80, "tcp")]),
    ("8080:80", [B(80, "tcp", "", 8080)]),
    ("127.0.0.1:8080:80", [B(80, "tcp", "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [B(80, "tcp", "127.0.0.1", 0)]),
    ("8080:80/udp", [B(80, "udp", "", 8080)]),
    ("0.0.0.0:53:53/udp", [B(53, "udp", "0.0.0.0", 53)]),
    ("8000-8002:80-82", [B(80, "tcp", "", 8000), B(81, "tcp", "", 8001),
                         B(82, "tcp", "", 8002)]),
    ("80-81", [B(80), B(81)]),
    ("8000-8010:80", [B(80, "tcp", "", 8000, 8010)]),
    ("[::1]:80:80", [B(80, "tcp", "::1", 80)]),
    ("[::1]::80", [B(80, "tcp", "::1", 0)]),
    ("::1:80:80", [B(80, "tcp", "::1", 80)]),
    ("0:80", [B(80, "tcp", "", 0)]),
    ("published=8080,target=80", [B(80, "tcp", "", 8080)]),
    ("target=53,protocol=udp", [B(53, "udp")]),
])
def test_port_spec_forms(spec: str, expected: list[PortBinding]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("abc", "invalid containerPort: abc"),
    ("8080:abc", "invalid containerPort: abc"),
    ("65536", "invalid containerPort: 65536"),
    ("x:80", "invalid hostPort: x"),
    ("8080-:80", "invalid hostPort: 8080-"),
    ("90-80:80", "invalid hostPort: 90-80"),
    ("80-90:80-85", "invalid ranges specified for container and host Ports: 80-85 and 80-90"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("localhost:80:80", "invalid IP address: localhost"),
    ("8080:", "no port specified: 8080:<empty>"),
    ("80/icmp", "invalid proto: icmp"),
    ("80/tcp/udp", "invalid port format for --publish: 80/tcp/udp"),
    ("[::1:80:80", "invalid port format for --publish: [::1:80:80"),
    ("8080 :80", "invalid port format for --publish: 8080 :80"),
    ("target=80,oops", "invalid publish opts format (should be name=value but got 'oops')"),
])
def test_port_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        parse_port_spec(spec)
    assert str(caught.value) == message


def test_api_shapes() -> None:
    specs = parse_port_specs(["8080:80", "127.0.0.1::80", "53:53/udp", "9000-9010:81"])
    assert specs.exposed == {"80/tcp": {}, "53/udp": {}, "81/tcp": {}}
    assert specs.bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "", "HostPort": "53"}],
        "81/tcp": [{"HostIp": "", "HostPort": "9000-9010"}],
    }
    assert bindings_from_api(specs.bindings) == [
        B(80, "tcp", "", 8080), B(80, "tcp", "127.0.0.1", 0), B(53, "udp", "", 53),
        B(81, "tcp", "", 9000, 9010)]


def test_api_bindings_validation() -> None:
    assert bindings_from_api(None) == []
    assert bindings_from_api({"80/tcp": None}) == [B(80)]
    assert bindings_from_api({"80": [{"HostPort": "8080/tcp"}]}) == [B(80, "tcp", "", 8080)]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"x/tcp": []}, "invalid port specification: 'x'"),
        ({"80/tcp": [{"HostPort": "y"}]}, "invalid port specification: 'y'"),
        ({"80/tcp": [{"HostIp": "nope"}]}, "invalid IP address: nope")]
    for bad, message in cases:
        with pytest.raises(errors.InvalidArgument, match=message):
            bindings_from_api(bad)


def test_publish_all_and_network_settings() -> None:
    explicit = [B(80, "tcp", "", 8080)]
    assert publish_all(["80/tcp", "443/tcp", "53/udp"], explicit) == [
        B(80, "tcp", "", 8080), B(443), B(53, "udp")]
    published = [B(80, "tcp", "", 8080), B(80, "tcp", "127.0.0.1", 32768), B(443, "tcp", "", 32769)]
    assert network_settings_ports(["80/tcp", "443/tcp", "9000/tcp"], published) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": "32768"}],
        "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32769"}],
        "9000/tcp": None,
    }


def test_ephemeral_range(tmp_path: Path) -> None:
    good = tmp_path / "range"
    good.write_text("32768\t60999\n")
    assert ephemeral_range(good) == (32768, 60999)
    good.write_text("garbage\n")
    assert ephemeral_range(good) == DEFAULT_EPHEMERAL_RANGE
    assert ephemeral_range(tmp_path / "missing") == DEFAULT_EPHEMERAL_RANGE


def test_allocator_explicit_conflicts() -> None:
    alloc = PortAllocator((40000, 40010), probe=lambda ip, port, proto: True)
    first = alloc.allocate(B(80, "tcp", "", 8080))
    assert first == B(80, "tcp", "", 8080)
    with pytest.raises(errors.Conflict) as caught:
        alloc.allocate(B(81, "tcp", "", 8080))
    assert str(caught.value) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    with pytest.raises(errors.Conflict, match="Bind for 127.0.0.1:8080 failed"):
        alloc.allocate(B(81, "tcp", "127.0.0.1", 8080))  # the wildcard covers every address
    alloc.allocate(B(81, "udp", "", 8080))  # another protocol is another port
    assert alloc.allocated() == {("tcp", "", 8080), ("udp", "", 8080)}
    alloc.release(first)
    assert alloc.allocate(B(81, "tcp", "127.0.0.1", 8080)).host_port == 8080
    alloc.allocate(B(82, "tcp", "127.0.0.2", 8080))  # distinct specific addresses coexist


def test_allocator_dynamic_skips_busy_and_taken() -> None:
    busy = {40001, 40003}
    alloc = PortAllocator((40000, 40004), probe=lambda ip, port, proto: port not in busy,
                          rng=random.Random(0))
    got = {alloc.allocate(B(80 + i)).host_port for i in range(3)}
    assert got == {40000, 40002, 40004}
    with pytest.raises(errors.Conflict, match="all ports are allocated"):
        alloc.allocate(B(90))
    ranged = PortAllocator((40000, 40004), probe=lambda ip, port, proto: port != 9001)
    picked = ranged.allocate(B(80, "tcp", "", 9000, 9001))
    assert picked == B(80, "tcp", "", 9000)
    with pytest.raises(errors.Conflict, match="Bind for 0.0.0.0:9000-9001 failed"):
        ranged.allocate(B(81, "tcp", "", 9000, 9001))


def test_port_is_free_bind_test() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        assert not port_is_free("127.0.0.1", port, "tcp")
        assert not port_is_free("", port, "tcp")  # the wildcard overlaps 127.0.0.1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        assert not port_is_free("127.0.0.1", holder.getsockname()[1], "udp")
    real = PortAllocator(port_range=(port, port))
    assert real.allocate(B(80, "tcp", "127.0.0.1")).host_port == port  # free again
