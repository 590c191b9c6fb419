"""docker/go-units and Go time formatting: human sizes and durations, size/duration parsing."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timezone
from dockyard.util.timefmt import human_duration  # noqa: F401 - re-exported

DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.<p>g``: like C's, exponent with at least two digits."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, ``4.26MB``."""
    unit = 0
    while size >= 1000.0 and unit < len(DECIMAL) - 1:
        size /= 1000.0
        unit += 1
    return _go_g(size, precision) + DECIMAL[unit]


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, ``1.5GiB``."""
    unit = 0
    while size >= 1024.0 and unit < len(BINARY) - 1:
        size /= 1024.0
        unit += 1
    return _go_g(size, 4) + BINARY[unit]


def time_ago(stamp: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return human_duration(now - stamp) + " ago"


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP])?[iI]?[bB]?$")


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: ``512m`` → 536870912 (binary multiples, suffix case-insensitive)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    power = " kmgtp".index((m.group(2) or " ").lower())
    return int(float(m.group(1)) * (1024 ** power))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds: ``1h30m``, ``10s``, ``-5m``."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def go_time_string(stamp: float) -> str:
    """Go's Time.String in local time: ``2026-11-27 22:00:00 +0000 UTC``."""
    local = datetime.fromtimestamp(stamp).astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S %z ") + (local.tzname() or "")


def rfc3339_nano_fixed(nanos: int) -> str:
    """jsonmessage.RFC3339NanoFixed in local time: ``2026-11-27T22:00:00.000000000Z``."""
    local = datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = local.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}" + zone


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an API timestamp (``0001-01-01T00:00:00Z`` → 0)."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not m:
        raise ValueError(f"invalid timestamp {text!r}")
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = m.group(3) or "Z"
    tz = UTC
    if zone != "Z":
        from datetime import timedelta
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    frac = float(m.group(2)) if m.group(2) else 0.0
    return base.replace(tzinfo=tz).timestamp() + frac


def timestamp_arg(value: str, now: float | None = None) -> str:
    """docker's GetTimestamp for ``--since``/``--until``: durations are relative to now;
    RFC 3339 dates and unix seconds pass through as ``seconds[.nanos]``."""
    now = time.time() if now is None else now
    try:
        return _fmt_seconds(now - parse_go_duration(value))
    except ValueError:
        pass
    if re.match(r"^\d+(\.\d+)?$", value):
        return value
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            local = datetime.strptime(value, fmt)
            return _fmt_seconds(local.timestamp())
        except ValueError:
            continue
    try:
        return _fmt_seconds(parse_rfc3339(value))
    except ValueError:
        raise ValueError(f'invalid value for "since": {value}') from None


def _fmt_seconds(stamp: float) -> str:
    whole = int(stamp)
    nanos = round((stamp - whole) * 1e9)
    return f"{whole}.{nanos:09d}"
