"""TLS (optionally mutual) for TCP listeners, as dockerd's --tlsverify/--tlscacert/--tlscert."""
from __future__ import annotations

import ssl
from typing import Any

from dockyard.daemon.config import DaemonConfig
from dockyard.errors import InvalidArgument


def wrap_server(server: Any, config: DaemonConfig) -> None:
    if not (config.tls_cert and config.tls_key):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_ca:
            context.load_verify_locations(config.tls_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"could not load TLS material: {exc}") from None
    server.socket = context.wrap_socket(server.socket, server_side=True)
