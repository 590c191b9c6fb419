"""Values printed the way Go's ``fmt`` prints them, for the history texts the classic builder
writes with ``%q`` (``CMD ["sh" "-c" "echo hi"]``, ``HEALTHCHECK &{[...] "5s" ... '\\x03'}``)."""
from __future__ import annotations

from dockyard.builder.shell import go_quote


def go_quoted_list(items: list[str]) -> str:
    """``%q`` of a ``[]string``: each element quoted, separated by spaces."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"


def go_quote_rune(number: int) -> str:
    """``%q`` of an integer: a single-quoted character literal (``'\\x00'``, ``'A'``)."""
    if not 0 <= number <= 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        return "'\\ufffd'" if number > 0x10FFFF or number >= 0xD800 else "'\\x00'"
    char = chr(number)
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + go_quote(char)[1:-1] + "'"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``0s``, ``500ms``, ``1.5s``, ``1m30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _fraction(u, scale) + unit
    text = _fraction(u % 60_000_000_000, 1_000_000_000) + "s"
    minutes = u // 60_000_000_000
    if minutes:
        text = f"{minutes % 60}m" + text
        if minutes >= 60:
            text = f"{minutes // 60}h" + text
    return sign + text


def _fraction(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
