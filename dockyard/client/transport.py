"""Where the daemon is and how to open a socket to it: unix or tcp, optionally TLS.

Follows the docker CLI: ``-H``/``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.client.errors import ConnectionFailed

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"


@dataclass(frozen=True)
class TLSOptions:
    verify: bool = False
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Endpoint:
    host: str  # as given, for messages
    scheme: str  # "unix" | "tcp"
    path: str = ""
    address: tuple[str, int] = ("", 0)
    tls: TLSOptions | None = None


def default_host(env: Mapping[str, str]) -> str:
    return env.get("DOCKER_HOST") or DEFAULT_HOST


def tls_from_env(env: Mapping[str, str], tls: bool = False, verify: bool = False,
                 cert_dir: str | None = None) -> TLSOptions | None:
    """TLS settings from flags and the environment, or None for plain connections."""
    verify = verify or bool(env.get("DOCKER_TLS_VERIFY"))
    if not (tls or verify):
        return None
    base = Path(cert_dir or env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")

    def pick(name: str) -> str | None:
        path = base / name
        return str(path) if path.exists() else None
    return TLSOptions(verify=verify, ca_cert=pick("ca.pem"), cert=pick("cert.pem"),
                      key=pick("key.pem"))


def parse_host(host: str, tls: TLSOptions | None = None) -> Endpoint:
    """``unix:///path``, ``tcp://h:p``, ``h:p``, ``fd://`` (unsupported) → an Endpoint."""
    if host.startswith("unix://"):
        return Endpoint(host=host, scheme="unix", path=host[len("unix://"):])
    if host.startswith("/"):
        return Endpoint(host="unix://" + host, scheme="unix", path=host)
    rest = host
    for prefix in ("tcp://", "http://", "https://"):
        if host.startswith(prefix):
            rest = host[len(prefix):]
            if prefix == "https://" and tls is None:
                tls = TLSOptions()
            break
    else:
        if "://" in host:
            raise ValueError(f"unsupported protocol in host {host!r}")
    rest = rest.split("/", 1)[0]
    default_port = 2376 if tls else 2375
    if rest.startswith("["):
        name, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        name, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return Endpoint(host=host, scheme="tcp", address=(name or "127.0.0.1",
                                                      int(port) if port else default_port),
                    tls=tls)


def _ssl_context(tls: TLSOptions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_cert) if tls.verify else \
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert and tls.key:
        ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


def connect(endpoint: Endpoint, timeout: float | None = None) -> socket.socket:
    """A connected (and, for TLS, wrapped) socket; ConnectionFailed if nobody answers."""
    try:
        if endpoint.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(endpoint.path)
            return sock
        sock = socket.create_connection(endpoint.address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.tls is not None:
            return _ssl_context(endpoint.tls).wrap_socket(
                sock, server_hostname=endpoint.address[0])
        return sock
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailed(endpoint.host, str(exc)) from exc
