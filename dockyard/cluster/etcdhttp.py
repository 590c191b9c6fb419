"""HTTP/1.1 + JSON to etcd's v3 gRPC gateway (``POST /v3/...``), stdlib only.

Keep-alive connections are pooled per endpoint; a request that cannot connect, times out or
meets an etcd without a leader moves on to the next endpoint, and is retried for up to
``retry_for`` seconds (so a cluster survives losing a member, even its Raft leader).
Retrying writes is safe because every write of the typed store is conditional (a
compare-and-swap) or idempotent: it can never apply twice. The price is that a write whose
first attempt did apply but whose answer was lost reports Conflict on the retry — callers of
an optimistic store handle Conflict by re-reading anyway.
``https://`` endpoints use TLS, with client certificates for mutual TLS between nodes.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dockyard import errors
from dockyard.cluster.kv import Compacted

Json = dict[str, Any]

GRPC_NOT_FOUND, GRPC_INVALID, GRPC_OUT_OF_RANGE, GRPC_UNAVAILABLE = 5, 3, 11, 14


@dataclass(frozen=True)
class EtcdTLS:
    """Trust ``ca`` for etcd's certificate; present ``cert``/``key`` (mutual TLS)."""
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


class _Retry(Exception):
    """A failure after which the request may be sent again (to another endpoint)."""


class EtcdHTTP:
    def __init__(self, endpoints: Sequence[str], tls: EtcdTLS | None = None,
                 timeout: float = 5.0, retry_for: float = 5.0) -> None:
        if not endpoints:
            raise errors.InvalidArgument("no etcd endpoints given")
        self.endpoints = [urlsplit(e if "://" in e else "http://" + e) for e in endpoints]
        self.tls = tls
        self.timeout = timeout
        self.retry_for = retry_for
        self._preferred = 0
        self._idle: list[tuple[int, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def connect(self, index: int, timeout: float | None) -> http.client.HTTPConnection:
        url = self.endpoints[index]
        host, port = url.hostname or "127.0.0.1", url.port or 2379
        if url.scheme == "https":
            if self._ssl is None:
                self._ssl = (self.tls or EtcdTLS()).context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.connect()
        return conn

    def _take(self) -> Iterator[tuple[int, http.client.HTTPConnection | None]]:
        """Connections to try, the preferred endpoint (and its idle connections) first."""
        with self._lock:
            preferred = self._preferred
            idle = [pair for pair in self._idle if pair[0] == preferred]
            self._idle = [pair for pair in self._idle if pair[0] != preferred]
        yield from idle
        for index in self.order(preferred):
            yield index, None

    def order(self, preferred: int | None = None) -> list[int]:
        """Endpoint indices, the preferred (last good) one first."""
        start = self._preferred if preferred is None else preferred
        count = len(self.endpoints)
        return [(start + step) % count for step in range(count)]

    def call(self, path: str, body: Json) -> Json:
        """POST ``body`` to ``path``; the decoded answer, or a dockyard error."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                return self._attempt(path, body)
            except _Retry as failure:
                if time.monotonic() + delay > deadline:
                    raise errors.Unavailable(f"etcd is unavailable: {failure}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _attempt(self, path: str, body: Json) -> Json:
        data = json.dumps(body).encode()
        last: Exception | None = None
        for index, conn in self._take():
            try:
                if conn is None:
                    conn = self.connect(index, self.timeout)
            except OSError as exc:
                self._forget(index)
                last = exc
                continue
            try:
                conn.request("POST", path, data, {"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # not delivered (a dead member or stale connection): try again
                self._forget(index)
                last = exc
                continue
            try:
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._forget(index)
                last = exc  # a dead member, a lost proposal: another member may answer
                continue
            self._release(index, conn, response)
            answer = _decode(path, payload)
            _raise_for(answer)
            return answer
        raise _Retry(str(last or "no endpoint answered"))

    def _forget(self, index: int) -> None:
        """Drop the idle connections to an endpoint that just failed."""
        with self._lock:
            stale = [conn for i, conn in self._idle if i == index]
            self._idle = [pair for pair in self._idle if pair[0] != index]
        for conn in stale:
            conn.close()

    def _release(self, index: int, conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        with self._lock:
            self._preferred = index
            if response.will_close:
                conn.close()
            elif len(self._idle) < 16:
                self._idle.append((index, conn))
            else:
                conn.close()

    def stream(self, path: str, body: Json) -> tuple[http.client.HTTPConnection,
                                                     http.client.HTTPResponse]:
        """A dedicated connection carrying a streamed answer (one JSON message per line)."""
        data = json.dumps(body).encode()
        last: Exception | None = None
        for index in self.order():
            try:
                conn = self.connect(index, self.timeout)
                conn.request("POST", path, data, {"Content-Type": "application/json"})
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                last = exc
                continue
            if conn.sock is not None:
                conn.sock.settimeout(None)
            with self._lock:
                self._preferred = index
            return conn, response
        raise errors.Unavailable(f"etcd is unavailable: {last}")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            conn.close()


def shutdown(conn: http.client.HTTPConnection) -> None:
    """Unblock a thread reading ``conn`` from another thread (that thread closes it)."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _decode(path: str, payload: bytes) -> Json:
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:
        raise errors.Internal(f"etcd sent a malformed answer to {path}: {payload[:200]!r}")
    if not isinstance(answer, dict):
        raise errors.Internal(f"etcd sent a malformed answer to {path}")
    return answer


def _raise_for(answer: Json) -> None:
    failure = answer.get("error")
    if failure is None:
        return
    message = str(answer.get("message") or failure).removeprefix("etcdserver: ")
    code = int(answer.get("code", 0))
    raise error_for(code, message)


def error_for(code: int, message: str) -> Exception:
    """The error for an etcd (gRPC) status; a retryable one for Unavailable."""
    if code == GRPC_UNAVAILABLE:
        return _Retry(message)
    if code == GRPC_NOT_FOUND:
        return errors.NotFound(message)
    if code == GRPC_OUT_OF_RANGE and "compacted" in message:
        return Compacted(0)
    if code in (GRPC_INVALID, GRPC_OUT_OF_RANGE):
        return errors.InvalidArgument(message)
    return errors.Internal(f"etcd: {message}")
