"""How the registry client reaches a registry: which endpoint (HTTPS, or plain HTTP for
loopback and configured insecure registries), one connection per request (:func:`open_url`
→ :class:`Response`), whether an insecure host offers TLS, and the mapping of a registry's
error body to an error category (:func:`registry_error`).
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Self

from dockyard.errors import (
    DockyardError,
    Forbidden,
    InvalidArgument,
    NotFound,
    Unauthorized,
    Unavailable,
)
from dockyard.types.reference import DEFAULT_DOMAIN

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
USER_AGENT = "dockyard/0.1"
_PARAM_RE = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
# RFC 6750 error codes in a Bearer challenge, as Docker reports them
_BEARER_ERRORS = {"invalid_token": "unauthorized: authentication required",
                  "insufficient_scope": "denied: requested access to the resource is denied"}


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case)
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              .replace('\\"', '"') for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


@dataclass(frozen=True)
class Endpoint:
    host: str  # host[:port] as used in URLs
    secure: bool

    @property
    def base(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}"


def is_insecure(domain: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Plain HTTP for loopback addresses and configured registries (host or CIDR)."""
    host = urllib.parse.urlsplit("//" + domain).hostname or domain
    if host == "localhost":
        return True
    address = _address(host)
    for entry in insecure_registries:
        if entry in (domain, host):
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return address is not None and address.is_loopback


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def endpoint_for(domain: str, insecure_registries: Iterable[str] = ()) -> Endpoint:
    if domain in (DEFAULT_DOMAIN, "index.docker.io"):
        return Endpoint(DOCKER_HUB_ENDPOINT, True)
    return Endpoint(domain, not is_insecure(domain, insecure_registries))


class Response:
    """A response whose body has not been read yet; close it (or use ``with``)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 url: str) -> None:
        self._conn = conn
        self.raw = resp
        self.status = resp.status
        self.url = url

    def header(self, name: str, default: str = "") -> str:
        return self.raw.getheader(name, default) or default

    def read(self, size: int = -1) -> bytes:
        return self.raw.read() if size < 0 else self.raw.read(size)

    def close(self) -> None:
        self.raw.close()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def open_url(url: str, method: str, headers: dict[str, str], body: bytes | BinaryIO | None,
          timeout: float, context: ssl.SSLContext | None) -> Response:
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.netloc, timeout=timeout,
                                           context=context or ssl.create_default_context(),
                                           blocksize=1 << 16)
    else:
        conn = http.client.HTTPConnection(parts.netloc, timeout=timeout, blocksize=1 << 16)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request(method, target, body=body, headers={"User-Agent": USER_AGENT, **headers})
        return Response(conn, conn.getresponse(), url)
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise Unavailable(f"{method.capitalize()} \"{url}\": {_net_error(exc, parts.netloc)}") \
            from None


def _net_error(exc: BaseException, netloc: str) -> str:
    """A network failure in the words Go's net/http uses (what Docker users see)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"read tcp {netloc}: read: connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        return f"write tcp {netloc}: write: broken pipe"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"dial tcp {netloc}: i/o timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "EOF"
    return str(exc)


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def offers_tls(host: str, timeout: float) -> bool:
    """Whether ``host`` answers a TLS handshake (then HTTPS is used, unverified)."""
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    try:
        with socket.create_connection((name.strip("[]") or host, int(port or 443)),
                                      timeout=timeout) as raw:
            with unverified().wrap_socket(raw, server_hostname=name or host):
                return True
    except (OSError, ValueError):
        return False


def registry_error(resp: Response, what: str) -> DockyardError:
    """Map an error response (``{"errors":[{"code","message"}]}``) to an error category."""
    try:
        errors = json.loads(resp.read(1 << 16) or b"{}").get("errors") or []
        detail = ", ".join(f"{str(e.get('code', '')).lower().replace('_', ' ')}: "
                           f"{e.get('message', '')}"
                           for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError, OSError, http.client.HTTPException):
        detail = ""
    if 400 <= resp.status < 500:
        detail = _bearer_error(resp.header("WWW-Authenticate"), detail)
    if not detail and resp.status == 401:  # e.g. a HEAD answer: no body to explain it
        detail = "unauthorized: authentication required"
    detail = detail or f"unexpected status {resp.status}"
    message = f"{what}: {detail}"
    if resp.status == 401:
        return Unauthorized(message)
    if resp.status == 403:
        return Forbidden(message)
    if resp.status == 404:
        return NotFound(message)
    if resp.status in (400, 405, 411, 413, 416):
        return InvalidArgument(message)
    return Unavailable(message)



def _bearer_error(header: str, detail: str) -> str:
    """A Bearer challenge's ``error=`` (RFC 6750) first, then what the body said."""
    challenge = parse_challenge(header) if header else None
    if challenge is None or challenge.scheme != "bearer":
        return detail
    code = challenge.params.get("error", "")
    if code not in _BEARER_ERRORS:
        return detail
    head = _BEARER_ERRORS[code]
    if challenge.params.get("error_description"):
        head = head.split(":", 1)[0] + ": " + challenge.params["error_description"]
    return head if not detail or detail == head else f"{head}; {detail}"
