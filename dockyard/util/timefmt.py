"""Time formats of the Engine API: RFC 3339 with nanoseconds, and Docker's human durations."""
from __future__ import annotations

import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    ns = time.time_ns()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for an RFC 3339 timestamp (nanoseconds truncated to micro)."""
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, frac = text.rstrip("Z").partition(".")
    offset = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, offset = frac.split(sign, 1)[0], sign + frac.split(sign, 1)[1]
    if len(main) > 19:
        main, offset = main[:19], main[19:]
    stamp = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    stamp = stamp.replace(tzinfo=timezone.utc)
    seconds = stamp.timestamp() + (float("0." + frac) if frac else 0.0)
    if offset:
        hours, _, minutes = offset[1:].partition(":")
        delta = int(hours) * 3600 + int(minutes or 0) * 60
        seconds -= delta if offset[0] == "+" else -delta
    return seconds


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: 'Less than a second', '3 seconds', 'About an hour', …"""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def go_duration(nanos: int) -> str:
    """Go's time.Duration.String: ``5s``, ``1m30s``, ``1h0m0s``, ``500ms``."""
    if nanos == 0:
        return "0s"
    sign, n = ("-" if nanos < 0 else ""), abs(int(nanos))
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _fraction(n, size) + unit
    secs, rest = divmod(n, 1_000_000_000)
    text = f"{secs % 60}" + (f".{rest:09d}".rstrip("0") if rest else "") + "s"
    minutes, hours = secs // 60 % 60, secs // 3600
    if secs >= 60:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(n: int, size: int) -> str:
    whole, rest = divmod(n, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")
