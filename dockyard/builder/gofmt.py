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
