"""Errors raised by the Engine API client."""
from __future__ import annotations


class ClientError(Exception):
    """Base of every client-side failure."""


class ConnectionFailed(ClientError):
    """The daemon could not be reached at all."""

    def __init__(self, host: str, reason: str = "") -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"Cannot connect to the dockyard daemon at {host}. "
                         "Is the dockyard daemon running?")


class ProtocolError(ClientError):
    """The daemon answered something that is not valid HTTP/1.1 for the request made."""


class APIError(ClientError):
    """A non-2xx answer from the daemon, with its JSON ``message``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def not_implemented(self) -> bool:
        return self.status in (404, 405, 501) and (
            "page not found" in self.message or "not implemented" in self.message.lower()
            or "not supported" in self.message.lower() or self.status == 501)
