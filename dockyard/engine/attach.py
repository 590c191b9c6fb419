"""Attach sessions: a hijacked client connection bridged to a shim's attach socket.

A session opened while the container is not running waits ("pending") until the next start,
which connects it *before* the process runs, so no output is missed (``docker run``).
Without a tty, output is framed with Docker's 8-byte stream headers.
"""
from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import Unavailable
from dockyard.runtime.shim import client as shim

STDOUT, STDERR = 1, 2


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


@dataclass(eq=False)
class Session:
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    stdin_once: bool
    # The client's stream; set once the client has been answered (see Engine.attach_session).
    sock: socket.socket | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    conn: shim.AttachConnection | None = None
    # Called with the exit status before the client's stream is closed, so a client that
    # inspects right after EOF (docker-py's exec_run) already sees the exit code.
    on_exit: Callable[[int], None] | None = None

    def connect(self, state_dir: Path) -> None:
        try:
            self.conn = shim.AttachConnection.connect(state_dir, "A")
        except Unavailable:
            self.conn = None
        self.connected.set()

    def cancel(self) -> None:
        self.cancelled = True
        self.connected.set()

    def pump(self) -> None:
        """Run until the container exits or the client goes away; closes both ends."""
        conn, client = self.conn, self.sock
        if conn is None or client is None:
            return
        if self.stdin:
            threading.Thread(target=self._pump_stdin, args=(conn, client), daemon=True).start()
        try:
            while True:
                item = conn.read_frame()
                if item is None:
                    break
                kind, payload = item
                if kind in (STDOUT, STDERR):
                    self._write_output(client, kind, payload)
                elif kind == 3:
                    if self.on_exit is not None:
                        self.on_exit(int(payload or b"255"))
                    break
        except OSError:
            pass
        finally:
            conn.close()
            _shutdown(client)

    def _write_output(self, client: socket.socket, kind: int, payload: bytes) -> None:
        if (kind == STDOUT and not self.stdout) or (kind == STDERR and not self.stderr):
            return
        client.sendall(payload if self.tty else frame(kind, payload))

    def _pump_stdin(self, conn: shim.AttachConnection, client: socket.socket) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                conn.send_stdin(data)
            if self.stdin_once or not self.tty:
                conn.close_stdin()
        except OSError:
            pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class AttachHub:
    """Sessions waiting for a container's next start."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Session]] = {}
        self._lock = threading.Lock()

    def add_pending(self, cid: str, session: Session) -> None:
        with self._lock:
            self._pending.setdefault(cid, []).append(session)

    def discard(self, cid: str, session: Session) -> None:
        with self._lock:
            sessions = self._pending.get(cid, [])
            if session in sessions:
                sessions.remove(session)

    def connect_pending(self, cid: str, state_dir: Path) -> None:
        with self._lock:
            sessions = self._pending.pop(cid, [])
        for session in sessions:
            session.connect(state_dir)

    def cancel(self, cid: str) -> None:
        with self._lock:
            sessions = self._pending.pop(cid, [])
        for session in sessions:
            session.cancel()
