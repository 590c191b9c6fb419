"""The userland proxy and the embedded DNS server on real sockets, loopback only.

The "containers" are listeners this test starts on 127.0.0.1; the DNS upstream is a fake
resolver on 127.0.0.1. Nothing leaves the machine. The last test prints requests/s of an HTTP
keep-alive loop through the proxy and directly (measured, not asserted).
"""
from __future__ import annotations

import hashlib
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dockyard import errors
from dockyard.network import dnscodec as c
from dockyard.network.dns import DnsServer
from dockyard.network.portalloc import PortAllocator
from dockyard.network.ports import PortBinding
from dockyard.network.proxy import PortForwarder, Target

LOCAL = "127.0.0.1"


def _serve_forever(sock: socket.socket,
                   handle: Callable[[socket.socket], None]) -> threading.Thread:
    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return thread


def _echo(conn: socket.socket) -> None:
    """Echo until EOF, then half-close back (exercises half-close through the proxy)."""
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


@pytest.fixture
def tcp_target() -> Iterator[Target]:
    sock = socket.create_server((LOCAL, 0), backlog=512)
    _serve_forever(sock, _echo)
    yield Target(LOCAL, sock.getsockname()[1])
    sock.close()


@pytest.fixture
def udp_target() -> Iterator[Target]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCAL, 0))

    def serve() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(65535)
                sock.sendto(b"echo:" + data, peer)
            except OSError:
                return
    threading.Thread(target=serve, daemon=True).start()
    yield Target(LOCAL, sock.getsockname()[1])
    sock.close()


@pytest.fixture
def forwarder() -> Iterator[PortForwarder]:
    fw = PortForwarder()
    yield fw
    fw.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _round_trip(port: int, payload: bytes, host: str = LOCAL) -> bytes:
    with socket.create_connection((host, port), timeout=10) as conn:
        def send() -> None:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        chunks = []
        while chunk := conn.recv(1 << 20):
            chunks.append(chunk)
        sender.join()
    return b"".join(chunks)


def test_tcp_forwarding_bulk_and_half_close(forwarder: PortForwarder, tcp_target: Target) -> None:
    bound = forwarder.add(PortBinding(80, "tcp", LOCAL, 0), tcp_target)
    assert bound.host_ip == LOCAL and bound.host_port > 0
    assert _round_trip(bound.host_port, b"hello") == b"hello"
    payload = os.urandom(16 << 20)  # both directions at once, then EOF each way
    got = _round_trip(bound.host_port, payload)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_tcp_many_connections(forwarder: PortForwarder, tcp_target: Target) -> None:
    bound = forwarder.add(PortBinding(80, "tcp", LOCAL, 0), tcp_target)
    before = _open_fds()
    with ThreadPoolExecutor(max_workers=64) as pool:
        payloads = [os.urandom(1024 + i) for i in range(400)]
        results = list(pool.map(lambda p: _round_trip(bound.host_port, p), payloads))
    assert results == payloads
    for i in range(300):  # short sequential connections
        assert _round_trip(bound.host_port, b"%d" % i) == b"%d" % i
    held = [socket.create_connection((LOCAL, bound.host_port), timeout=10) for _ in range(200)]
    for i, conn in enumerate(held):  # all open at once (4 fds each, under a 1024 ulimit)
        conn.sendall(b"%05d" % i)
    for i, conn in enumerate(held):
        assert conn.recv(5) == b"%05d" % i
        conn.close()
    deadline = time.monotonic() + 5
    while _open_fds() > before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _open_fds() <= before + 2  # every proxied connection was closed


def test_published_port_answers_on_every_address(forwarder: PortForwarder,
                                                 tcp_target: Target) -> None:
    alloc = PortAllocator()
    binding = alloc.allocate(PortBinding(80, "tcp"))  # -P: a free ephemeral port
    bound = forwarder.add(binding, tcp_target)
    assert bound.host_ip == "0.0.0.0" and bound.host_port == binding.host_port
    for host in [LOCAL, "127.0.0.2", *_host_addresses()]:
        assert _round_trip(bound.host_port, b"ping", host) == b"ping"
    with pytest.raises(errors.Conflict, match="port is already allocated"):
        alloc.allocate(PortBinding(81, "tcp", "", bound.host_port))
    with pytest.raises(errors.Conflict, match="bind: address already in use"):
        forwarder.add(PortBinding(81, "tcp", LOCAL, bound.host_port), tcp_target)


def _host_addresses() -> list[str]:
    """The host's own non-loopback IPv4 addresses (connecting to them stays on the host)."""
    from pyroute2 import IPRoute  # type: ignore[import-not-found, unused-ignore]
    with IPRoute() as ipr:
        found = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=socket.AF_INET)]
    return [a for a in found if a and not a.startswith("127.")][:2]


def test_remove_closes_listener_and_connections(forwarder: PortForwarder,
                                                tcp_target: Target) -> None:
    bound = forwarder.add(PortBinding(80, "tcp", LOCAL, 0), tcp_target)
    live = socket.create_connection((LOCAL, bound.host_port), timeout=5)
    live.sendall(b"x")
    assert live.recv(1) == b"x"
    assert forwarder.remove(bound) and not forwarder.remove(bound)
    assert live.recv(1) == b""  # the proxied connection was closed
    live.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOCAL, bound.host_port), timeout=5).close()


def test_unreachable_target_closes_client(forwarder: PortForwarder) -> None:
    with socket.socket() as unused:
        unused.bind((LOCAL, 0))
        dead = Target(LOCAL, unused.getsockname()[1])  # bound, not listening: refused
        bound = forwarder.add(PortBinding(80, "tcp", LOCAL, 0), dead)
        with socket.create_connection((LOCAL, bound.host_port), timeout=5) as conn:
            assert conn.recv(1) == b""


def test_udp_forwarding_and_removal(forwarder: PortForwarder, udp_target: Target) -> None:
    bound = forwarder.add(PortBinding(53, "udp", LOCAL, 0), udp_target)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for round_ in range(20):
            for i, client in enumerate(clients):
                client.settimeout(5)
                client.sendto(b"%d-%d" % (i, round_), (LOCAL, bound.host_port))
                data, peer = client.recvfrom(65535)
                assert (data, peer) == (b"echo:%d-%d" % (i, round_), (LOCAL, bound.host_port))
        big = os.urandom(60000)
        clients[0].sendto(big, (LOCAL, bound.host_port))
        assert clients[0].recv(65535) == b"echo:" + big
    finally:
        for client in clients:
            client.close()
    forwarder.remove(bound)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((LOCAL, bound.host_port))  # the port is free again


# -- DNS ---------------------------------------------------------------------------------

class FakeUpstream:
    """A resolver on 127.0.0.1 (UDP and TCP): every name is 192.0.2.53; ``mode`` misbehaves."""

    def __init__(self) -> None:
        self.udp, self.tcp = self._bind()
        self.address = (LOCAL, self.udp.getsockname()[1])
        self.mode = "ok"
        self.seen: list[str] = []
        threading.Thread(target=self._serve_udp, daemon=True).start()
        _serve_forever(self.tcp, self._serve_tcp)

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):  # one port free for both UDP and TCP
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((LOCAL, 0))
            try:
                return udp, socket.create_server((LOCAL, udp.getsockname()[1]))
            except OSError:
                udp.close()
        raise RuntimeError("no port free for both UDP and TCP")

    def reply(self, wire: bytes) -> bytes:
        query = c.parse(wire)
        self.seen.append(query.questions[0].name)
        record = c.Record(query.questions[0].name, c.A, c.CLASS_IN, 30, c.a_data("192.0.2.53"))
        return c.encode(c.response(query, c.NOERROR, (record,)))

    def _serve_udp(self) -> None:
        while True:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            if self.mode == "drop":
                continue
            if self.mode == "spoof":  # a wrong id first: must be ignored
                self.udp.sendto(b"\x00\x00" + self.reply(wire)[2:], peer)
            self.udp.sendto(self.reply(wire), peer)

    def _serve_tcp(self, conn: socket.socket) -> None:
        with conn:
            size = struct.unpack("!H", conn.recv(2))[0]
            wire = conn.recv(size)
            answer = self.reply(wire)
            conn.sendall(struct.pack("!H", len(answer)) + answer)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def dns() -> Iterator[tuple[DnsServer, tuple[str, int], FakeUpstream]]:
    upstream = FakeUpstream()
    server = DnsServer(upstreams=[upstream.address], timeout=0.5)
    server.registry.set_network_name("net1", "front")
    server.registry.register("net1", ["web", "www"], "172.30.0.2", container="c1")
    server.registry.register("net1", ["www"], "172.30.0.3", container="c2")
    address = server.listen("net1", LOCAL, 0)
    yield server, address, upstream
    server.close()
    upstream.close()


def query(address: tuple[str, int], name: str, qtype: int = c.A, tcp: bool = False) -> c.Message:
    wire = c.encode(c.Message(0x5151, c.RD, (c.Question(name, qtype),)))
    if tcp:
        with socket.create_connection(address, timeout=5) as conn:
            conn.sendall(struct.pack("!H", len(wire)) + wire)
            size = struct.unpack("!H", conn.recv(2))[0]
            reply = b""
            while len(reply) < size:
                reply += conn.recv(size - len(reply))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(wire, address)
            reply = sock.recv(65535)
    msg = c.parse(reply)
    assert msg.id == 0x5151 and msg.is_response
    return msg


def addresses(msg: c.Message) -> list[str]:
    return sorted(c.address_of(r) for r in msg.answers if r.rtype in (c.A, c.AAAA))


@pytest.mark.parametrize("tcp", [False, True])
def test_dns_answers_registered_names(dns: tuple[DnsServer, tuple[str, int], FakeUpstream],
                                      tcp: bool) -> None:
    server, address, upstream = dns
    assert addresses(query(address, "web", tcp=tcp)) == ["172.30.0.2"]
    assert addresses(query(address, "WWW.", tcp=tcp)) == ["172.30.0.2", "172.30.0.3"]
    assert addresses(query(address, "web.front", tcp=tcp)) == ["172.30.0.2"]
    missing = query(address, "nosuch", tcp=tcp)
    assert missing.rcode == c.NXDOMAIN and not missing.answers
    server.registry.register("net1", ["late"], "172.30.0.9")
    assert addresses(query(address, "late", tcp=tcp)) == ["172.30.0.9"]
    server.registry.unregister("net1", ip="172.30.0.9")
    assert query(address, "late", tcp=tcp).rcode == c.NXDOMAIN
    assert upstream.seen == []  # nothing local was forwarded


@pytest.mark.parametrize("tcp", [False, True])
def test_dns_forwards_other_names(dns: tuple[DnsServer, tuple[str, int], FakeUpstream],
                                  tcp: bool) -> None:
    _, address, upstream = dns
    reply = query(address, "example.com", tcp=tcp)
    assert reply.rcode == c.NOERROR and addresses(reply) == ["192.0.2.53"]
    assert upstream.seen == ["example.com"]


def test_dns_upstream_misbehaving(dns: tuple[DnsServer, tuple[str, int], FakeUpstream]) -> None:
    _, address, upstream = dns
    upstream.mode = "spoof"
    assert addresses(query(address, "spoofed.example")) == ["192.0.2.53"]
    upstream.mode = "drop"
    started = time.monotonic()
    assert query(address, "slow.example").rcode == c.SERVFAIL
    assert time.monotonic() - started < 3


def test_dns_refuses_outside_subnet(dns: tuple[DnsServer, tuple[str, int], FakeUpstream]) -> None:
    server = dns[0]
    address = server.listen("net2", LOCAL, 0, subnet="10.99.0.0/16")
    assert query(address, "web").rcode == c.REFUSED
    assert server.unlisten("net2")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(address)  # the listener is gone


# -- measurement -------------------------------------------------------------------------

HTTP_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        body = b"ok" * 32
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""

HTTP_CLIENT = """
import multiprocessing, socket, sys, time
port, conns, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
REQUEST = b"GET / HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n"
def loop(results):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    count, buf, end = 0, b"", time.monotonic() + secs
    while time.monotonic() < end:
        sock.sendall(REQUEST)
        while True:
            head, sep, rest = buf.partition(b"\\r\\n\\r\\n")
            if sep:
                length = int(head.lower().split(b"content-length: ")[1].split(b"\\r\\n")[0])
                if len(rest) >= length:
                    buf = rest[length:]
                    break
            data = sock.recv(65536)
            if not data:
                raise SystemExit("connection closed")
            buf += data
        count += 1
    results.put(count)
ctx = multiprocessing.get_context("fork")
results = ctx.Queue()
workers = [ctx.Process(target=loop, args=(results,)) for _ in range(conns)]
for w in workers:
    w.start()
total = sum(results.get() for _ in workers)
for w in workers:
    w.join()
print(total / secs)
"""


def _requests_per_second(port: int, conns: int, secs: float = 1.0) -> float:
    out = subprocess.run([sys.executable, "-c", HTTP_CLIENT, str(port), str(conns), str(secs)],
                         check=True, capture_output=True, text=True, timeout=60)
    return float(out.stdout)


def _bulk_mb_per_second(port: int, size: int = 64 << 20) -> float:
    started = time.monotonic()
    assert len(_round_trip(port, b"\0" * size)) == size
    return 2 * size / (time.monotonic() - started) / 1e6  # bytes moved both ways


def test_measure_proxy_against_direct(forwarder: PortForwarder, tcp_target: Target) -> None:
    server = subprocess.Popen([sys.executable, "-c", HTTP_SERVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        target = Target(LOCAL, int(server.stdout.readline()))
        proxied = forwarder.add(PortBinding(80, "tcp", LOCAL, 0), target)
        print(f"\nHTTP keep-alive request loop, {os.cpu_count()} CPUs, median of 3 interleaved "
              "1 s runs (target: proxy >= 80 % of direct)")
        for conns in (1, 4, 8):
            runs = [(_requests_per_second(target.port, conns),
                     _requests_per_second(proxied.host_port, conns)) for _ in range(3)]
            direct = statistics.median(d for d, _ in runs)
            via = statistics.median(v for _, v in runs)
            print(f"  {conns} connection(s): direct {direct:8.0f} req/s, "
                  f"proxy {via:8.0f} req/s = {100 * via / direct:5.1f} %")
        echo = forwarder.add(PortBinding(81, "tcp", LOCAL, 0), tcp_target)
        direct_mb = _bulk_mb_per_second(tcp_target.port)
        via_mb = _bulk_mb_per_second(echo.host_port)
        print(f"  bulk echo (64 MiB each way): direct {direct_mb:.0f} MB/s, proxy {via_mb:.0f} "
              f"MB/s = {100 * via_mb / direct_mb:.1f} % (echo server in this process)")
    finally:
        server.kill()
        server.wait()
