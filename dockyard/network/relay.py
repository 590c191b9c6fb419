"""The port forwarder's loop side: sockets, their selector interest, and the bytes between.

Everything here runs on the forwarder's one thread (see ``proxy``). TCP: each accepted
connection gets a non-blocking connection to the target; bytes move through one shared buffer
(``recv_into`` then ``send``) and only what the peer cannot take yet is kept per direction; a
direction with pending bytes stops reading its source (backpressure). EOF is passed on as
``shutdown(SHUT_WR)`` so half-closed connections keep working; an error on either side closes
both. UDP: one connected socket to the target per client address (a "flow"), replies sent back
through the listening socket, flows idle for ``idle_timeout`` seconds closed. A listener's
target may also be a chooser called per connection or flow (the swarm's routing mesh balances
that way; ``None``: nobody to forward to, the client is closed), and a target opens its own
upstream socket (the mesh's are made inside the ingress network's namespace).
"""
from __future__ import annotations

import errno
import logging
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

READ, WRITE = select.EPOLLIN, select.EPOLLOUT
_BROKEN = select.EPOLLERR | select.EPOLLHUP
log = logging.getLogger("dockyard.network")
MAX_UDP_FLOWS = 4096  # per published port; datagrams from further clients are dropped
Handler = Callable[[int], None]


@dataclass(frozen=True)
class Target:
    """Where a published port leads: the container's address on its network."""

    ip: str
    port: int

    def open(self, kind: int) -> socket.socket:
        """A new socket of ``kind`` to reach the target with."""
        return socket.socket(family(self.ip), kind)


Chooser = Callable[[], "Target | None"]


def family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class Loop:
    """An epoll set, its handlers and the shared buffer: the state the loop thread touches.

    Sockets are closed only after the batch of events being handled, so a socket accepted in
    the same batch cannot reuse a closed socket's fd and receive its stale events.
    """

    def __init__(self, buffer_size: int) -> None:
        self.epoll = select.epoll()
        self.buffer = bytearray(buffer_size)
        self.view = memoryview(self.buffer)
        self._handlers: dict[int, Handler] = {}
        self._masks: dict[int, int] = {}
        self._doomed: list[socket.socket] = []
        self._after: list[Callable[[], None]] = []

    def after_batch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the sockets forgotten in this batch are closed."""
        self._after.append(callback)

    def watch(self, sock: socket.socket, mask: int, handler: Handler) -> None:
        """Set ``sock``'s interest to ``mask`` (0: none), registering as needed."""
        fd = sock.fileno()
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not old:
            self.epoll.register(fd, mask)
        elif not mask:
            self.epoll.unregister(fd)
        else:
            self.epoll.modify(fd, mask)
        if mask:
            self._masks[fd] = mask
            self._handlers[fd] = handler
        else:
            del self._masks[fd], self._handlers[fd]

    def forget(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` and close it once the current batch is handled."""
        fd = sock.fileno()
        if fd < 0:
            return
        if self._masks.pop(fd, 0):
            self.epoll.unregister(fd)
            del self._handlers[fd]
        self._doomed.append(sock)

    def run_once(self, timeout: float) -> None:
        for fd, events in self.epoll.poll(timeout):
            handler = self._handlers.get(fd)
            if handler is None:  # forgotten earlier in this batch
                continue
            if events & _BROKEN:  # let the handler's recv/send see the error or EOF
                events |= READ | WRITE
            try:
                handler(events)
            except Exception:  # one bad socket must not stop every port
                log.exception("port forwarder: unexpected error")
        self._end_batch()

    def _end_batch(self) -> None:
        for sock in self._doomed:
            sock.close()
        self._doomed.clear()
        while self._after:
            self._after.pop(0)()

    def close(self) -> None:
        self._end_batch()
        self.epoll.close()


class _Flow:
    """One direction of a TCP connection: bytes read from ``src`` are written to ``dst``."""

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.pending: bytes = b""
        self.eof = False
        self.done = False  # EOF passed on to dst

    def wants_read(self) -> bool:
        return not self.pending and not self.eof

    def pump(self, loop: Loop) -> bool:
        """Read once from ``src``, write it to ``dst``; True when the interest changes."""
        try:
            n = self.src.recv_into(loop.buffer)
        except BlockingIOError:  # a spurious wakeup
            return False
        if not n:
            self.eof = True
            self.flush()
            return True
        sent = _send(self.dst, loop.view[:n])
        if sent == n:
            return False
        self.pending = bytes(loop.view[sent:n])
        return True

    def flush(self) -> None:
        if self.pending:
            sent = _send(self.dst, self.pending)
            self.pending = self.pending[sent:]
        if self.eof and not self.pending and not self.done:
            self.done = True
            self.dst.shutdown(socket.SHUT_WR)


def _send(sock: socket.socket, data: bytes | memoryview) -> int:
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


class _TcpConnection:
    def __init__(self, loop: Loop, client: socket.socket, target: Target,
                 on_close: Callable[[_TcpConnection], None]) -> None:
        self.loop, self.client, self._on_close = loop, client, on_close
        self.upstream = target.open(socket.SOCK_STREAM)
        self.upstream.setblocking(False)
        for sock in (client, self.upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = _Flow(client, self.upstream)  # client → container
        self.back = _Flow(self.upstream, client)  # container → client
        self.connected = False
        self.closed = False
        code = self.upstream.connect_ex((target.ip, target.port))
        if code not in (0, errno.EINPROGRESS):
            self.close()
            return
        self.loop.watch(self.upstream, WRITE, self._on_upstream)

    def _on_client(self, mask: int) -> None:
        if not self.closed:
            self._step(mask, self.out, self.back)

    def _on_upstream(self, mask: int) -> None:
        if self.closed:
            return
        if not self.connected:
            if self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.close()
                return
            self.connected = True
        self._step(mask, self.back, self.out)

    def _step(self, mask: int, reading: _Flow, writing: _Flow) -> None:
        changed = bool(mask & WRITE)
        try:
            if changed:
                writing.flush()
            if mask & READ and reading.wants_read():
                changed = reading.pump(self.loop) or changed
        except OSError:
            self.close()
            return
        if changed:  # the common case, everything sent at once, keeps the same interest
            self._rewatch()

    def _rewatch(self) -> None:
        if self.out.done and self.back.done:
            self.close()
            return
        out, back = self.out, self.back
        self.loop.watch(self.client, (READ if out.wants_read() else 0)
                        | (WRITE if back.pending else 0), self._on_client)
        self.loop.watch(self.upstream, (READ if back.wants_read() else 0)
                        | (WRITE if out.pending or (out.eof and not out.done) else 0),
                        self._on_upstream)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.forget(self.client)
        self.loop.forget(self.upstream)
        self._on_close(self)


class _UdpFlow:
    def __init__(self, sock: socket.socket, client: tuple[str, int]) -> None:
        self.sock, self.client, self.last = sock, client, time.monotonic()


class Published:
    """A listener and what it accepted."""

    def __init__(self, loop: Loop, sock: socket.socket, target: Target | Chooser,
                 idle_timeout: float) -> None:
        self.loop, self.sock, self.target = loop, sock, target
        self.idle_timeout = idle_timeout
        self.tcp: set[_TcpConnection] = set()
        self.udp: dict[tuple[str, int], _UdpFlow] = {}

    def pick(self) -> Target | None:
        return self.target if isinstance(self.target, Target) else self.target()

    def start(self) -> None:
        udp = self.sock.type == socket.SOCK_DGRAM
        self.loop.watch(self.sock, READ, self._on_datagram if udp else self._on_accept)

    def _on_accept(self, mask: int) -> None:
        for _ in range(64):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE, ECONNABORTED…: try again on the next wakeup
                return
            target = self.pick()
            if target is None:
                client.close()
                continue
            try:
                client.setblocking(False)
                conn = _TcpConnection(self.loop, client, target, self.tcp.discard)
            except OSError:  # no fd left for the upstream socket
                client.close()
                continue
            if not conn.closed:
                self.tcp.add(conn)

    def _on_datagram(self, mask: int) -> None:
        for _ in range(64):
            try:
                n, client = self.sock.recvfrom_into(self.loop.buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            flow = self.udp.get(client)
            try:
                if flow is None:
                    if len(self.udp) >= MAX_UDP_FLOWS:
                        continue
                    flow = self._new_flow(client)
                flow.last = time.monotonic()
                flow.sock.send(self.loop.view[:n])
            except OSError:  # no route, ECONNREFUSED from an earlier ICMP, full buffer: drop it
                pass

    def _new_flow(self, client: tuple[str, int]) -> _UdpFlow:
        target = self.pick()
        if target is None:
            raise OSError("no target")
        sock = target.open(socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((target.ip, target.port))
        except OSError:
            sock.close()
            raise
        flow = _UdpFlow(sock, client)
        self.udp[client] = flow
        self.loop.watch(sock, READ, lambda mask: self._on_reply(flow))
        return flow

    def _on_reply(self, flow: _UdpFlow) -> None:
        for _ in range(64):
            try:
                n = flow.sock.recv_into(self.loop.buffer)
            except ConnectionRefusedError:
                continue  # an ICMP error for an earlier datagram: no listener in the container
            except OSError:  # nothing more to read, or the flow was closed meanwhile
                return
            flow.last = time.monotonic()
            try:
                self.sock.sendto(self.loop.view[:n], flow.client)
            except OSError:
                pass

    def expire(self, now: float) -> None:
        for client, flow in list(self.udp.items()):
            if now - flow.last >= self.idle_timeout:
                del self.udp[client]
                self.loop.forget(flow.sock)

    def close(self) -> None:
        self.loop.forget(self.sock)
        for conn in list(self.tcp):
            conn.close()
        for flow in self.udp.values():
            self.loop.forget(flow.sock)
        self.udp.clear()
