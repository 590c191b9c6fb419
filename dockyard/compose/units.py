"""Durations (``1m30s``) and byte sizes (``512m``) as Compose writes them."""
from __future__ import annotations

import re
from typing import Any

from dockyard.errors import InvalidArgument

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(value: Any, where: str = "") -> float | None:
    """Go duration string (or a number of seconds) → seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise InvalidArgument(f"{loc(where)}invalid duration {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """Seconds → Go's ``time.Duration.String()`` form (``1m30s``, ``500ms``, ``0s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("us", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{_trim(ns / size)}{unit}"
    out = ""
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{_trim(ns / 1e9)}s"


def _trim(x: float) -> str:
    return f"{x:.9f}".rstrip("0").rstrip(".")


def parse_size(value: Any, where: str = "") -> int | None:
    """``512m``, ``1g``, ``1.5GB``, ``1024`` → bytes."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value).strip())
    if not m:
        raise InvalidArgument(f"{loc(where)}invalid size {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def to_bool(value: Any, where: str) -> bool | None:
    """Booleans after interpolation (``"true"``, ``"no"``…); ``where`` names the key."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidArgument(f"{where.rstrip('.: ')} must be a boolean, not {value!r}")


def to_int(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{where.rstrip('.: ')} must be an integer, not {value!r}") from None


def to_float(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{where.rstrip('.: ')} must be a number, not {value!r}") from None


def loc(where: str) -> str:
    where = where.rstrip(".: ")
    return f"{where}: " if where else ""
