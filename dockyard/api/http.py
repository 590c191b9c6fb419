"""A small threaded HTTP/1.1 server for the Engine API, with Docker's connection hijacking.

One thread per connection (keep-alive). Request bodies may be sized or chunked; responses are
sized JSON, chunked streams, or a hijacked raw socket (``101 UPGRADED``) for attach and exec.
"""
from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("dockyard.api")


class ChunkedReader:
    """Decodes a ``Transfer-Encoding: chunked`` request body."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._left = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while not self._done and (size < 0 or len(out) < size):
            if self._left == 0:
                line = self._raw.readline()
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self._raw.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    break
                self._left = length
            want = self._left if size < 0 else min(self._left, size - len(out))
            data = self._raw.read(want)
            if not data:
                self._done = True
                break
            out += data
            self._left -= len(data)
            if self._left == 0:
                self._raw.readline()
        return bytes(out)


class SizedReader:
    def __init__(self, raw: BinaryIO, length: int) -> None:
        self._raw = raw
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        data = self._raw.read(want)
        self._left -= len(data)
        return data


class Request:
    """What a route handler sees of one request."""

    def __init__(self, handler: "Handler") -> None:
        self._handler = handler
        split = urlsplit(handler.path)
        self.method = handler.command
        self.path = unquote(split.path)
        self.query = {k: v for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            self.body: Any = ChunkedReader(handler.rfile)  # type: ignore[arg-type]
        else:
            self.body = SizedReader(handler.rfile,  # type: ignore[arg-type]
                                    int(handler.headers.get("Content-Length") or 0))
        self.responded = False

    # -- query helpers --------------------------------------------------------------------
    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int_arg(self, name: str, default: int = 0) -> int:
        from dockyard.errors import InvalidArgument
        value = self.arg(name, "")
        try:
            return int(value) if value != "" else default
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {value!r}") from None

    def json(self, default: Any = None) -> Any:
        from dockyard.errors import InvalidArgument
        data = self.body.read()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"invalid JSON: {exc}") from None

    def wants_upgrade(self) -> bool:
        return "upgrade" in (self.headers.get("Connection") or "").lower()

    # -- responses ------------------------------------------------------------------------
    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        h = self._handler
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if status not in (204, 304):
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and self.method != "HEAD" and status not in (204, 304):
            h.wfile.write(body)
        h.wfile.flush()
        self.responded = True

    def send_json(self, value: Any, status: int = 200) -> None:
        self.send(status, json.dumps(value).encode() + b"\n")

    def stream(self, chunks: Iterable[bytes], content_type: str = "application/json",
               status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Chunked response; each item is flushed at once (progress, logs, events)."""
        h = self._handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.flush()
        self.responded = True
        if self.method == "HEAD":  # headers only; the body is never produced
            return
        try:
            for chunk in chunks:
                if chunk:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def hijack(self, content_type: str) -> socket.socket:
        """Switch to a raw duplex stream; the handler closes the connection afterwards."""
        h = self._handler
        if self.wants_upgrade():
            h.send_response(101, "UPGRADED")
            h.send_header("Connection", "Upgrade")
            h.send_header("Upgrade", "tcp")
        else:
            h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        h.wfile.flush()
        self.responded = True
        h.close_connection = True
        return h.connection

    @property
    def rfile(self) -> BinaryIO:
        return self._handler.rfile  # type: ignore[return-value]


Dispatch = Callable[[Request], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Docker/28.2.2-dockyard"
    sys_version = ""
    dispatch: Dispatch  # set on the subclass built by handler_class

    def setup(self) -> None:
        super().setup()
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)

    def _handle(self) -> None:
        request = Request(self)
        self.dispatch(request)
        if not self.close_connection:
            request.body.read()  # keep-alive: consume whatever the handler left unread

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def address_string(self) -> str:
        return "unix"


class _QuietErrors:
    """Clients hang up whenever they like; that is not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        log.exception("error while serving a connection")


class UnixServer(_QuietErrors, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


class TCPServer(_QuietErrors, socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def handler_class(dispatch: Dispatch) -> type[Handler]:
    return type("EngineHandler", (Handler,), {"dispatch": staticmethod(dispatch)})
