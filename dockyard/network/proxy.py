"""The userland proxy: published ports forwarded to containers by one thread in the daemon.

``PortForwarder`` listens on ``host_ip:host_port`` (every address when the binding has no IP,
so the port answers on 127.0.0.1 and on the host's addresses alike) and forwards TCP and UDP
to ``container_ip:container_port``; how bytes move is ``relay``'s business. One selector thread
serves every published port; it starts with the first ``add``. ``add`` binds in the caller's
thread (so a busy port fails there, with Docker's text) and hands the socket to the loop;
``remove`` returns once the listener and every connection accepted through it are closed.
"""
from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from functools import partial

from dockyard import errors
from dockyard.network.ports import PortBinding
from dockyard.network.relay import READ, Chooser, Loop, Published, Target, family

BUFFER_SIZE = 256 * 1024
UDP_IDLE_TIMEOUT = 90.0
_Key = tuple[str, str, int]
__all__ = ["BUFFER_SIZE", "UDP_IDLE_TIMEOUT", "PortForwarder", "Target"]


def _key(binding: PortBinding) -> _Key:
    return binding.proto, binding.listen_ip, binding.host_port


def _bind_error(binding: PortBinding, exc: OSError) -> errors.DockyardError:
    where = f"listen {binding.proto}{6 if ':' in binding.listen_ip else 4} " \
            f"{binding.listen_ip}:{binding.host_port}"
    if exc.errno == errno.EADDRINUSE:
        return errors.Conflict(
            f"Error starting userland proxy: {where}: bind: address already in use")
    if exc.errno == errno.EADDRNOTAVAIL:
        return errors.InvalidArgument(
            f"Error starting userland proxy: {where}: bind: cannot assign requested address")
    return errors.Internal(f"Error starting userland proxy: {where}: {exc.strerror or exc}")


def _listen(binding: PortBinding) -> socket.socket:
    if binding.proto not in ("tcp", "udp"):
        raise errors.NotImplementedYet(f"publishing {binding.proto} ports is not supported")
    if binding.host_port_end > binding.host_port:
        raise errors.InvalidArgument(
            f"host port range {binding.host_port_text()}: allocate one port first")
    kind = socket.SOCK_STREAM if binding.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family(binding.listen_ip), kind)
    try:
        if binding.proto == "tcp":  # never for UDP: it would let two sockets share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((binding.listen_ip, binding.host_port))
        if binding.proto == "tcp":
            sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise _bind_error(binding, exc) from None
    sock.setblocking(False)
    return sock


class PortForwarder:
    """Every published port of the daemon, served by one selector thread (started lazily)."""

    def __init__(self, *, buffer_size: int = BUFFER_SIZE,
                 udp_idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        self._buffer_size = buffer_size
        self._idle = udp_idle_timeout
        self._lock = threading.Lock()
        self._published: dict[_Key, tuple[PortBinding, Target | Chooser]] = {}
        self._commands: list[tuple[Callable[[], None], Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._closed = False
        self._stopping = False

    def add(self, binding: PortBinding, target: Target | Chooser) -> PortBinding:
        """Start forwarding; returns the binding as bound (``host_port`` 0: the kernel's pick)."""
        sock = _listen(binding)
        bound = replace(binding, host_ip=binding.listen_ip, host_port=sock.getsockname()[1],
                        host_port_end=0)
        with self._lock:
            if self._closed:
                sock.close()
                raise errors.Unavailable("the port forwarder is closed")
            self._published[_key(bound)] = (bound, target)
        try:
            self._call(lambda: self._start(bound, sock, target))
        except BaseException:
            with self._lock:
                self._published.pop(_key(bound), None)
            sock.close()
            raise
        return bound

    def remove(self, binding: PortBinding) -> bool:
        """Stop forwarding ``binding`` (as ``add`` returned it, or as given to it when its port
        was concrete) and close its connections; False if it was not published."""
        key = _key(binding)
        with self._lock:
            if self._published.pop(key, None) is None:
                return False
        self._call(lambda: self._stop(key))
        return True

    def published(self) -> list[tuple[PortBinding, Target | Chooser]]:
        with self._lock:
            return list(self._published.values())

    def close(self) -> None:
        """Close every listener and connection and stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._published.clear()
            thread = self._thread
        if thread is None:
            return
        self._call(lambda: None, stop=True)
        thread.join()

    # -- the loop thread ---------------------------------------------------------------

    def _call(self, command: Callable[[], None], stop: bool = False) -> None:
        done: Future[None] = Future()
        with self._lock:
            if self._stopping:
                raise errors.Unavailable("the port forwarder is closed")
            if self._thread is None:
                self._start_thread()
            self._commands.append((command, done))
            if stop:
                self._stopping = True
                self._commands.append((self._stop_all, Future()))
        assert self._wake_w is not None
        self._wake_w.send(b"x")
        done.result()

    def _start_thread(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._loop = Loop(self._buffer_size)
        self._listeners: dict[_Key, Published] = {}
        self._running = True
        self._loop.watch(self._wake_r, READ, self._on_wake)
        self._thread = threading.Thread(target=self._run, name="port-forwarder", daemon=True)
        self._thread.start()

    def _start(self, binding: PortBinding, sock: socket.socket, target: Target | Chooser
               ) -> None:
        published = Published(self._loop, sock, target, self._idle)
        self._listeners[_key(binding)] = published
        published.start()

    def _stop(self, key: _Key) -> None:
        published = self._listeners.pop(key, None)
        if published is not None:
            published.close()

    def _stop_all(self) -> None:
        for key in list(self._listeners):
            self._stop(key)
        self._running = False

    def _on_wake(self, mask: int) -> None:
        assert self._wake_r is not None
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, []
        for command, done in commands:
            try:
                command()
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                done.set_exception(exc)
            else:  # the caller resumes once what the command closed is really closed
                self._loop.after_batch(partial(done.set_result, None))

    def _run(self) -> None:
        next_sweep = time.monotonic() + 1.0
        while self._running:
            self._loop.run_once(1.0)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                for published in list(self._listeners.values()):
                    published.expire(now)
        self._loop.close()
        assert self._wake_r is not None and self._wake_w is not None
        self._wake_r.close()
        self._wake_w.close()
