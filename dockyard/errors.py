"""The closed set of error categories every layer raises.

Lower layers raise these; the API layer maps each category to one HTTP status in
``dockyard.api.errors`` and nowhere else. Messages are lower-case where Docker's are, and
name the object they are about (``No such container: web`` keeps Docker's exact text).
"""
from __future__ import annotations


class DockyardError(Exception):
    """Base of every error dockyard raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DockyardError):
    """The named object does not exist (HTTP 404)."""


class InvalidArgument(DockyardError):
    """The request is malformed or a parameter is invalid (HTTP 400)."""


class Conflict(DockyardError):
    """The object exists or is in a state that forbids the operation (HTTP 409)."""


class Unauthorized(DockyardError):
    """Credentials are missing or wrong (HTTP 401)."""


class Forbidden(DockyardError):
    """The operation is not allowed (HTTP 403)."""


class Unavailable(DockyardError):
    """A dependency (runtime, registry, peer) cannot be reached now (HTTP 503)."""


class NotImplementedYet(DockyardError):
    """The feature is not supported (HTTP 501)."""


class NotModified(DockyardError):
    """The operation had nothing to do (HTTP 304), e.g. starting a running container."""


class Internal(DockyardError):
    """An unexpected failure inside dockyard (HTTP 500)."""
