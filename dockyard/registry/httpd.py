"""A small threaded HTTP/1.1 server: requests with streamed bodies in, responses out.

The registry's own (the Engine API server is a sibling package it must not import).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit


class RawStream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def readline(self, limit: int = -1, /) -> bytes: ...


class LengthReader:
    """Reads at most ``length`` bytes of a request body."""

    def __init__(self, raw: RawStream, length: int) -> None:
        self.raw, self.left = raw, length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.raw.read(n)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    @property
    def done(self) -> bool:
        return self.left <= 0


class ChunkedReader:
    """Decodes a ``Transfer-Encoding: chunked`` body."""

    def __init__(self, raw: RawStream) -> None:
        self.raw, self.left, self.done = raw, 0, False

    def _next_chunk(self) -> None:
        line = self.raw.readline(1024)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while self.raw.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            self.done = True
        self.left = size

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self.done and (n < 0 or len(out) < n):
            if self.left == 0:
                self._next_chunk()
                continue
            want = self.left if n < 0 else min(self.left, n - len(out))
            data = self.raw.read(want)
            if not data:
                self.done = True
                break
            out += data
            self.left -= len(data)
            if self.left == 0:
                self.raw.readline(16)  # CRLF after the chunk
        return bytes(out)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: LengthReader | ChunkedReader
    length: int | None

    def arg(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None

    def read_all(self, limit: int) -> bytes:
        return self.body.read(limit + 1)


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: BinaryIO | None = None
    length: int = 0
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json"} | (headers or {})
        return cls(status, h, json.dumps(value).encode())


App = Callable[[Request], Response]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dockyard-registry"
    server: RegistryHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _request(self) -> Request:
        url = urlsplit(self.path)
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length = None if chunked else int(self.headers.get("Content-Length") or 0)
        body: LengthReader | ChunkedReader = ChunkedReader(self.rfile) if chunked \
            else LengthReader(self.rfile, length or 0)
        return Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                       self.headers, body, length)

    def _handle(self) -> None:
        request = self._request()
        response = self.server.app(request)
        if not request.body.done:
            self.close_connection = True
        self._send(response, head=self.command == "HEAD")

    def _send(self, r: Response, head: bool) -> None:
        self.send_response(r.status)
        length = r.length if r.stream is not None else len(r.body)
        headers = {"Content-Length": str(length)} | r.headers
        for key, value in list(headers.items()) + r.extra_headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            if head:
                return
            if r.stream is not None:
                _copy_n(r.stream, self.wfile, r.length)
            else:
                self.wfile.write(r.body)
        finally:
            if r.stream is not None:
                r.stream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


def _copy_n(src: BinaryIO, dst: Any, length: int) -> None:
    while length > 0:
        data = src.read(min(length, 1 << 20))
        if not data:
            break
        dst.write(data)
        length -= len(data)


class RegistryHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.app = app
        self.verbose = verbose


__all__ = ["App", "RegistryHTTPServer", "Request", "Response"]
