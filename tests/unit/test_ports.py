"""Published ports: Docker's ``-p`` forms and errors, the API shapes, host port allocation."""
from __future__ import annotations

import errno
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.network.portalloc import (
    DEFAULT_EPHEMERAL_RANGE,
    PortAllocator,
    bind_error,
    bind_port,
    ephemeral_range,
    port_is_free,
)
from dockyard.network.ports import (
    PortBinding,
    bindings_from_api,
    network_settings_ports,
    parse_port_spec,
    parse_port_specs,
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
    alloc = PortAllocator((40000, 40010), reserve=lambda ip, port, proto: None)
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
    busy = {40001, 40003, 9001}

    def probe(ip: str, port: int, proto: str) -> None:
        if port in busy:
            raise OSError(98, "Address already in use")

    alloc = PortAllocator((40000, 40004), reserve=probe, rng=random.Random(0))
    got = {alloc.allocate(B(80 + i)).host_port for i in range(3)}
    assert got == {40000, 40002, 40004}
    with pytest.raises(errors.Conflict, match="all ports are allocated"):
        alloc.allocate(B(90))
    ranged = PortAllocator((40000, 40004), reserve=probe)
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


def _held_tcp(listen: bool, reuse: bool = True) -> socket.socket:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))  # most servers do
    holder.bind(("127.0.0.1", 0))
    if listen:
        holder.listen(1)
    return holder


# (A bound, never listening SO_REUSEADDR socket is not seen: the probe binds with
# SO_REUSEADDR itself so that TIME_WAIT leftovers do not count, and Linux lets two such
# sockets share a port until one listens.)
@pytest.mark.parametrize(("listen", "reuse"), [(True, True), (True, False), (False, False)])
def test_explicit_port_held_by_another_socket(listen: bool, reuse: bool) -> None:
    alloc = PortAllocator((40000, 40010))
    with _held_tcp(listen, reuse) as holder:
        port = holder.getsockname()[1]
        with pytest.raises(errors.Conflict) as caught:
            alloc.allocate(B(80, "tcp", "127.0.0.1", port))
        assert str(caught.value) == (
            f"listen tcp4 127.0.0.1:{port}: bind: address already in use")
        with pytest.raises(errors.Conflict, match=f"listen tcp4 0.0.0.0:{port}: bind"):
            alloc.allocate(B(80, "tcp", "", port))  # every address includes 127.0.0.1
        assert alloc.allocated() == set()  # nothing claimed by the failures
        assert alloc.allocate(B(80, "udp", "127.0.0.1", port)).host_port == port
    assert alloc.allocate(B(80, "tcp", "127.0.0.1", port)).host_port == port  # freed: works


def test_explicit_udp_port_held_by_another_socket() -> None:
    alloc = PortAllocator((40000, 40010))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(errors.Conflict, match=f"listen udp4 127.0.0.1:{port}: bind: "
                                                  "address already in use"):
            alloc.allocate(B(53, "udp", "127.0.0.1", port))


def test_held_port_keeps_other_processes_out_until_release() -> None:
    alloc = PortAllocator((40000, 40010), reserve=bind_port)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binding = alloc.allocate(B(80, "tcp", "127.0.0.1", port))
    udp = alloc.allocate(B(53, "udp", "127.0.0.1", port))
    assert alloc.holding() == {("tcp", "127.0.0.1", port), ("udp", "127.0.0.1", port)}
    with socket.socket() as intruder:  # SO_REUSEADDR does not get around the held socket
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
    assert not port_is_free("", port, "tcp")
    alloc.release(binding)
    alloc.release(udp)
    assert alloc.holding() == set()
    assert port_is_free("127.0.0.1", port, "tcp") and port_is_free("127.0.0.1", port, "udp")


def test_bind_port_ignores_time_wait_leftovers() -> None:
    with _held_tcp(listen=True) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end of the port sits in TIME_WAIT
        client.close()
    held = bind_port("127.0.0.1", port, "tcp")
    assert held is not None
    held.close()


def test_dynamic_ports_skip_and_hold() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        alloc = PortAllocator((port, port), reserve=bind_port)
        with pytest.raises(errors.Conflict, match="all ports are allocated"):
            alloc.allocate(B(80, "tcp", "127.0.0.1"))
        with pytest.raises(errors.Conflict, match=f"Bind for 127.0.0.1:{port}-{port + 1}"):
            PortAllocator((1, 2), reserve=_refuse).allocate(
                B(80, "tcp", "127.0.0.1", port, port + 1))
    got = alloc.allocate(B(80, "tcp", "127.0.0.1"))
    assert got.host_port == port and alloc.holding() == {("tcp", "127.0.0.1", port)}
    assert not port_is_free("127.0.0.1", port, "tcp")
    alloc.release(got)
    assert port_is_free("127.0.0.1", port, "tcp")


def _refuse(ip: str, port: int, proto: str) -> None:
    raise OSError(errno.EADDRINUSE, "Address already in use")


def test_restore_never_fails_and_holds_when_it_can() -> None:
    alloc = PortAllocator((40000, 40010), reserve=bind_port)
    with _held_tcp(listen=True) as other:
        port = other.getsockname()[1]
        alloc.restore(B(80, "tcp", "127.0.0.1", port))  # bound elsewhere: recorded only
        assert alloc.allocated() == {("tcp", "127.0.0.1", port)} and alloc.holding() == set()
    alloc.release(B(80, "tcp", "127.0.0.1", port))
    alloc.restore(B(80, "tcp", "127.0.0.1", port))
    assert alloc.holding() == {("tcp", "127.0.0.1", port)}
    with pytest.raises(errors.Conflict, match="port is already allocated"):
        alloc.allocate(B(81, "tcp", "", port))
    alloc.release(B(80, "tcp", "127.0.0.1", port))


def test_bind_error_texts() -> None:
    assert str(bind_error("", 80, "tcp", OSError(errno.EADDRINUSE, "x"))) == (
        "listen tcp4 0.0.0.0:80: bind: address already in use")
    other = bind_error("::1", 80, "udp", OSError(errno.EADDRNOTAVAIL, "x"))
    assert isinstance(other, errors.InvalidArgument)
    assert str(other) == "listen udp6 ::1:80: bind: cannot assign requested address"


def test_bind_port_is_cheap() -> None:
    """Measured, loosely asserted: a bind probe costs microseconds, not milliseconds."""
    start = time.perf_counter()
    for _ in range(200):
        held = bind_port("127.0.0.1", 0, "tcp")
        assert held is not None
        held.close()
    assert (time.perf_counter() - start) / 200 < 0.002
