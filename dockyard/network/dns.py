"""The embedded DNS server of user-defined networks.

Where it listens: one UDP+TCP listener per user network on the network's gateway address,
port 53; containers on that network get ``nameserver <gateway>`` in resolv.conf. Docker
instead answers on 127.0.0.11 inside every container's netns, which needs a socket per
container (entering each netns) plus NAT rules to reach port 53; a listener on the gateway
needs neither, is reachable from every container on the bridge, and tells the server which
network a query is about. Queries from addresses outside ``subnet`` (when given) are REFUSED,
so a routed gateway address does not make it an open resolver.

Answers: A/AAAA for names registered in ``registry`` (see ``dnsnames``; TTL 600 as Docker);
NXDOMAIN for other single-label names; PTR for registered addresses; everything else is
forwarded to the upstream resolvers (by default the host's, see ``dnsupstream``), each tried
in turn for ``timeout`` seconds, SERVFAIL when none answers. Local answers are given on the
server thread; forwarded UDP queries and TCP connections are served by worker threads.
"""
from __future__ import annotations

import ipaddress
import logging
import random
import selectors
import socket
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from dockyard import errors
from dockyard.network import dnscodec as codec
from dockyard.network import dnsupstream as upstream
from dockyard.network.dnscodec import DnsFormatError, Message, Record
from dockyard.network.dnsnames import DnsRegistry
from dockyard.network.dnsupstream import Address

TTL = 600
TCP_IDLE_TIMEOUT = 10.0
MAX_TCP_CLIENTS = 64
MAX_PENDING_FORWARDS = 512  # beyond this (a dead upstream under load) answer SERVFAIL at once
log = logging.getLogger("dockyard.network")


class _Forward:
    """``DnsServer.answer``'s verdict for queries the upstream resolvers must answer."""


FORWARD = _Forward()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Listener:
    def __init__(self, network_id: str, udp: socket.socket, tcp: socket.socket,
                 subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> None:
        self.network_id, self.udp, self.tcp, self.subnet = network_id, udp, tcp, subnet

    def allows(self, source: str) -> bool:
        if self.subnet is None:
            return True
        return ipaddress.ip_address(source) in self.subnet


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on the same ``host:port`` (port 0: one free for both)."""
    for _ in range(20):
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        tcp = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
            tcp.listen(64)
        except OSError as exc:
            udp.close()
            tcp.close()
            if port == 0:
                continue
            raise errors.Conflict(f"dns: cannot listen on {host}:{port}: {exc.strerror}") from None
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise errors.Unavailable(f"dns: no free port on {host} for both UDP and TCP")


class DnsServer:
    """Listeners for many networks, one server thread, worker threads for the slow paths."""

    def __init__(self, registry: DnsRegistry | None = None,
                 upstreams: Sequence[Address] | None = None, *, timeout: float = 2.0,
                 ttl: int = TTL, workers: int = 8) -> None:
        self.registry = registry or DnsRegistry()
        self.upstreams = list(upstream.host_upstreams() if upstreams is None else upstreams)
        self.timeout = timeout
        self.ttl = ttl
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dns")
        self._tcp_slots = threading.BoundedSemaphore(MAX_TCP_CLIENTS)
        self._forwards = threading.BoundedSemaphore(MAX_PENDING_FORWARDS)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- listeners ---------------------------------------------------------------------

    def listen(self, network_id: str, host: str, port: int = 53, *,
               subnet: str | None = None) -> Address:
        """Answer queries about ``network_id`` on ``host:port`` (UDP and TCP)."""
        net = ipaddress.ip_network(subnet, strict=False) if subnet else None
        udp, tcp = _bind_pair(host, port)
        listener = _Listener(network_id, udp, tcp, net)
        with self._lock:
            if self._closed or network_id in self._listeners:
                udp.close()
                tcp.close()
                if self._closed:
                    raise errors.Unavailable("the dns server is closed")
                raise errors.Conflict(f"dns: network {network_id} already has a listener")
            self._listeners[network_id] = listener
            self._selector.register(udp, selectors.EVENT_READ, listener)
            self._selector.register(tcp, selectors.EVENT_READ, listener)
            if self._thread is None:
                self._selector.register(self._wake_r, selectors.EVENT_READ, None)
                self._thread = threading.Thread(target=self._run, name="dns", daemon=True)
                self._thread.start()
        self._wake()
        return _sockname(udp)

    def unlisten(self, network_id: str) -> bool:
        with self._lock:
            listener = self._listeners.pop(network_id, None)
            if listener is None:
                return False
            for sock in (listener.udp, listener.tcp):
                self._selector.unregister(sock)
                sock.close()
        self._wake()
        return True

    def addresses(self) -> dict[str, Address]:
        with self._lock:
            return {n: _sockname(lst.udp) for n, lst in self._listeners.items()}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            networks = list(self._listeners)
        for network_id in networks:
            self.unlisten(network_id)
        self._wake()
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- the server thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            # Wait without the lock, then read the events under it: listen()/unlisten() change
            # the selector's tables from other threads. A socket closed after this point
            # makes its handler see an OSError, which it takes as "nothing to read".
            self._selector.select(timeout=1.0)
            with self._lock:
                ready = self._selector.select(timeout=0)
            for key, _ in ready:
                if key.data is None:
                    self._drain_wake()
                elif key.fileobj is key.data.udp:
                    self._on_datagrams(key.data)
                else:
                    self._on_connection(key.data)

    def _drain_wake(self) -> None:
        try:
            self._wake_r.recv(4096)
        except OSError:
            pass

    def _on_datagrams(self, listener: _Listener) -> None:
        for _ in range(64):
            try:
                wire, client = listener.udp.recvfrom(65535)
            except OSError:  # nothing left, or the listener was closed meanwhile
                return
            try:
                reply = self.answer(wire, listener, client[0], tcp=False)
            except Exception:  # one bad packet must not stop the server
                log.exception("dns: cannot answer a query from %s", client[0])
                continue
            if reply is FORWARD and self._forwards.acquire(blocking=False):
                self._pool.submit(self._forward_udp, listener, wire, client)
            elif reply is FORWARD:
                _sendto(listener.udp, _servfail(wire), client)
            elif isinstance(reply, bytes):
                _sendto(listener.udp, reply, client)

    def _forward_udp(self, listener: _Listener, wire: bytes, client: Address) -> None:
        try:
            _sendto(listener.udp, self.forward(wire, tcp=False), client)
        finally:
            self._forwards.release()

    def _on_connection(self, listener: _Listener) -> None:
        try:
            conn, client = listener.tcp.accept()
        except OSError:
            return
        if not self._tcp_slots.acquire(blocking=False):
            conn.close()
            return
        threading.Thread(target=self._serve_tcp, args=(listener, conn, client[0]),
                         name="dns-tcp", daemon=True).start()

    def _serve_tcp(self, listener: _Listener, conn: socket.socket, source: str) -> None:
        try:
            with conn:
                conn.settimeout(TCP_IDLE_TIMEOUT)
                while (wire := upstream.read_tcp_message(conn)) is not None:
                    reply = self.answer(wire, listener, source, tcp=True)
                    if reply is FORWARD:
                        reply = self.forward(wire, tcp=True)
                    if not isinstance(reply, bytes):
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            self._tcp_slots.release()

    # -- answering ---------------------------------------------------------------------

    def answer(self, wire: bytes, listener: _Listener, source: str,
               tcp: bool) -> bytes | _Forward | None:
        """The reply's bytes, ``FORWARD`` for the upstreams, or None to drop the query."""
        try:
            query = codec.parse(wire)
        except DnsFormatError:
            ident = codec.peek_id(wire)
            if ident is None or len(wire) < 12:
                return None
            return codec.encode(Message(ident, codec.QR | codec.FORMERR))
        if query.is_response:
            return None
        if query.opcode != codec.OPCODE_QUERY:
            return codec.encode(codec.response(query, codec.NOTIMP))
        if len(query.questions) != 1:
            return codec.encode(codec.response(query, codec.FORMERR))
        if not listener.allows(source):
            return codec.encode(codec.response(query, codec.REFUSED))
        reply = self.resolve(query, listener.network_id, source)
        if reply is None:
            return FORWARD
        limit = 65535 if tcp else (query.edns_payload() or codec.UDP_LIMIT)
        return codec.encode(reply, max_size=limit)

    def resolve(self, query: Message, network_id: str, source: str) -> Message | None:
        """The local answer to ``query``, or None when it is for the upstream resolvers."""
        question = query.questions[0]
        if question.qclass not in (codec.CLASS_IN, codec.ANY):
            return None
        networks, querier = self.registry.scope(network_id, source)
        if question.qtype == codec.PTR:
            return self._resolve_ptr(query, networks)
        ips = self.registry.lookup(question.name, networks, querier)
        if not ips:
            key = codec.name_key(question.name)
            if key and "." not in key:
                return codec.response(query, codec.NXDOMAIN, authoritative=True)
            return None
        random.shuffle(ips)
        answers = tuple(self._address_record(question.name, ip) for ip in ips
                        if _wanted(question.qtype, ip))
        return codec.response(query, codec.NOERROR, answers, authoritative=True)

    def _address_record(self, name: str, ip: str) -> Record:
        if ":" in ip:
            return Record(name, codec.AAAA, codec.CLASS_IN, self.ttl, codec.aaaa_data(ip))
        return Record(name, codec.A, codec.CLASS_IN, self.ttl, codec.a_data(ip))

    def _resolve_ptr(self, query: Message, networks: set[str]) -> Message | None:
        name = query.questions[0].name
        address = codec.reverse_address(name)
        if address is None:
            return None
        names = self.registry.names_of(address, networks)
        if not names:
            return None
        answers = tuple(Record(name, codec.PTR, codec.CLASS_IN, self.ttl, codec.name_data(n))
                        for n in names)
        return codec.response(query, codec.NOERROR, answers, authoritative=True)

    # -- forwarding --------------------------------------------------------------------

    def forward(self, wire: bytes, tcp: bool) -> bytes:
        """Ask the upstream resolvers; their reply under the client's id, else SERVFAIL."""
        ours = set(self.addresses().values())
        upstreams = [u for u in self.upstreams if u not in ours]  # never ask ourselves
        return upstream.forward(upstreams, wire, tcp, self.timeout) or _servfail(wire)

def _servfail(wire: bytes) -> bytes:
    return codec.encode(codec.response(codec.parse(wire), codec.SERVFAIL))


def _wanted(qtype: int, ip: str) -> bool:
    if qtype == codec.ANY:
        return True
    return qtype == (codec.AAAA if ":" in ip else codec.A)


def _sockname(sock: socket.socket) -> Address:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


def _sendto(sock: socket.socket, data: bytes, client: Address) -> None:
    try:
        sock.sendto(data, client)
    except OSError:
        pass
