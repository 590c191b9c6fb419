"""Registry server configuration, TLS, and start/stop (blocking or on a background thread)."""
from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from dockyard.registry.auth import Htpasswd
from dockyard.registry.httpd import RegistryHTTPServer
from dockyard.registry.routes import RegistryApp
from dockyard.registry.storage import RegistryStorage
from dockyard.registry.token import DEFAULT_TTL, TokenAuth, load_secret


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    storage: Path
    htpasswd: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    read_only: bool = False
    verbose: bool = False
    auth: str = ""  # "", "basic" (when htpasswd is given) or "token"
    token_secret: Path | None = None  # default: a generated secret in the storage dir
    anonymous_pull: bool = False
    token_ttl: int = DEFAULT_TTL
    token_realm: str = ""  # default: <scheme>://<Host header>/token


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def build_server(config: ServerConfig) -> RegistryHTTPServer:
    storage = RegistryStorage(config.storage)
    storage.ensure()
    htpasswd = Htpasswd.load(config.htpasswd) if config.htpasswd else None
    if config.auth not in ("", "basic", "token"):
        raise ValueError(f"unknown auth mode {config.auth!r} (want basic or token)")
    if config.auth == "token":
        tokens = TokenAuth(load_secret(config.token_secret, config.storage), htpasswd,
                           config.anonymous_pull, config.token_ttl, config.token_realm,
                           tls=config.tls_cert is not None)
        app = RegistryApp(storage, None, config.read_only, tokens)
    else:
        app = RegistryApp(storage, htpasswd, config.read_only)
    server = RegistryHTTPServer((config.host, config.port), app, config.verbose)
    if config.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key or config.tls_cert))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


class RunningServer:
    """A registry serving on a background thread (for tests and embedding)."""

    def __init__(self, config: ServerConfig) -> None:
        self.server = build_server(config)
        self.thread = threading.Thread(target=self.server.serve_forever, name="registry",
                                       daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RunningServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
