"""A minimal HTTP/1.1 exchange over an already connected socket.

Bodies may be bytes or an iterable of chunks (sent chunked). Responses expose the decoded
body (sized, chunked or until close) and, after ``101``, the raw duplex socket.
"""
from __future__ import annotations

import io
import json
import socket
import typing
from collections.abc import Iterable, Iterator
from typing import Any, Self

from dockyard.client.errors import ProtocolError

Body = bytes | Iterable[bytes] | None
CHUNK = 64 * 1024


class Response:
    """Status, headers and a body reader; ``close()`` releases the socket."""

    def __init__(self, sock: socket.socket, fp: io.BufferedReader, status: int, reason: str,
                 headers: dict[str, str], method: str) -> None:
        self.sock = sock
        self.fp = fp
        self.status = status
        self.reason = reason
        self.headers = headers
        self._left = -1  # bytes left in the current chunk (chunked) or body (sized)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._done = method == "HEAD" or status in (101, 204, 304) or 100 <= status < 200
        if not self._chunked and not self._done and "content-length" in headers:
            self._left = int(headers["content-length"])
            self._done = self._left == 0

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def read1(self, size: int = CHUNK) -> bytes:
        """Up to ``size`` body bytes as soon as some are available; b"" at the end."""
        if self._done:
            return b""
        if self._chunked:
            return self._read_chunked(size)
        want = size if self._left < 0 else min(size, self._left)
        data = self.fp.read1(want)
        if not data:
            self._done = True
        elif self._left >= 0:
            self._left -= len(data)
            self._done = self._left == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        if self._left <= 0:
            line = self.fp.readline()
            if not line:
                self._done = True
                return b""
            try:
                self._left = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise ProtocolError(f"bad chunk header {line!r}") from None
            if self._left == 0:
                while self.fp.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = self.fp.read1(min(size, self._left))
        if not data:
            self._done = True
            return b""
        self._left -= len(data)
        if self._left == 0:
            self.fp.readline()
        return data

    def iter_content(self, size: int = CHUNK) -> Iterator[bytes]:
        while True:
            data = self.read1(size)
            if not data:
                return
            yield data

    def read(self) -> bytes:
        return b"".join(self.iter_content())

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or fewer only at the end of the body."""
        out = bytearray()
        while len(out) < size:
            data = self.read1(size - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def iter_json(self) -> Iterator[Any]:
        """Objects of a JSON stream (newline separated or simply concatenated)."""
        decoder = json.JSONDecoder()
        buf = ""
        for chunk in self.iter_content():
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield obj
        if buf.strip():
            raise ProtocolError(f"truncated JSON stream: {buf[:80]!r}")

    def close(self) -> None:
        try:
            self.fp.close()
        finally:
            self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send_body(sock: socket.socket, body: Body) -> None:
    if body is None:
        return
    try:
        if isinstance(body, (bytes, bytearray)):
            sock.sendall(body)
            return
        for chunk in body:
            if chunk:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        # The server answered early (typically an error) and closed its read side;
        # its response is still waiting to be read.
        pass


def _read_head(fp: io.BufferedReader) -> tuple[int, str, dict[str, str]]:
    while True:
        line = fp.readline(65537)
        if not line:
            raise ProtocolError("connection closed before a response")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"malformed status line {line!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            hline = fp.readline(65537)
            if hline in (b"\r\n", b"\n", b""):
                break
            name, _, value = hline.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 100:
            return status, parts[2] if len(parts) > 2 else "", headers


def exchange(sock: socket.socket, method: str, target: str, headers: dict[str, str],
             body: Body = None) -> Response:
    """Send one request and read the response head; the body is left to the caller."""
    headers = dict(headers)
    if isinstance(body, (bytes, bytearray)):
        headers["Content-Length"] = str(len(body))
    elif body is not None:
        headers["Transfer-Encoding"] = "chunked"
    elif method in ("POST", "PUT"):
        headers["Content-Length"] = "0"
    sock.sendall(_encode_head(method, target, headers))
    _send_body(sock, body)
    fp = typing.cast(io.BufferedReader, sock.makefile("rb", buffering=CHUNK))
    status, reason, resp_headers = _read_head(fp)
    return Response(sock, fp, status, reason, resp_headers, method)
