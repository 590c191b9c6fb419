"""The filters of ``POST /{containers,images,networks}/prune``: ``until``, ``label``,
``label!`` (Docker's prune filters; ``dangling`` for images is handled by the route)."""
from __future__ import annotations

import re
import time
from collections.abc import Iterable

from dockyard.api.filters import Filters
from dockyard.errors import InvalidArgument
from dockyard.util.timefmt import parse_rfc3339

PRUNE_KEYS = frozenset({"until", "label", "label!"})
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def validate(filters: Filters, extra: Iterable[str] = ()) -> Filters:
    allowed = PRUNE_KEYS | set(extra)
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
    if len(filters.get("until", [])) > 1:
        raise InvalidArgument("more than one until filter specified")
    return filters


def timestamp(value: str, now: float | None = None) -> float:
    """Docker's timetypes.GetTimestamp: a Go duration before now, RFC 3339 or Unix time."""
    now = time.time() if now is None else now
    if _DURATION.match(value):
        return now - sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    try:
        return float(value)
    except ValueError:
        pass
    try:
        text = value if "T" in value else value + "T00:00:00Z"
        return parse_rfc3339(text if text.endswith("Z") or "+" in text[10:] else text + "Z")
    except (ValueError, IndexError):
        raise InvalidArgument(f"failed to parse value as time or duration: \"{value}\"") \
            from None


def _has(labels: dict[str, str], item: str) -> bool:
    key, sep, value = item.partition("=")
    return key in labels and (not sep or labels[key] == value)


def matches(labels: dict[str, str], created: float, filters: Filters) -> bool:
    """True if an object with ``labels`` created at ``created`` (Unix time) is pruned."""
    for value in filters.get("until", []):
        if created >= timestamp(value):
            return False
    if not all(_has(labels, item) for item in filters.get("label", [])):
        return False
    return not any(_has(labels, item) for item in filters.get("label!", []))
