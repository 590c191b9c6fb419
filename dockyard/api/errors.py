"""The one place that maps error categories to HTTP statuses and Docker's JSON error body."""
from __future__ import annotations

import json

from dockyard import errors

STATUS: dict[type[errors.DockyardError], int] = {
    errors.InvalidArgument: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotModified: 304,
    errors.Internal: 500,
    errors.NotImplementedYet: 501,
    errors.Unavailable: 503,
}


def status_of(error: BaseException) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def body_of(error: BaseException) -> bytes:
    message = error.message if isinstance(error, errors.DockyardError) else (
        f"internal error: {type(error).__name__}: {error}")
    return json.dumps({"message": message}).encode() + b"\n"
