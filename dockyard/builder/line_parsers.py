"""One Dockerfile instruction line → a syntax-tree :class:`Node`, as buildkit splits it.

The keyword, then the leading ``--flags`` (quotes and escapes processed, names not checked),
then the arguments split the way the instruction wants them: JSON exec form or the shell
string (RUN, CMD, ENTRYPOINT, SHELL), JSON or whitespace-separated words (COPY, ADD, VOLUME),
name/value/separator triples (ENV, LABEL), quote-aware raw words (ARG), the whole rest of the
line (USER, WORKDIR, STOPSIGNAL, MAINTAINER), HEALTHCHECK's type and command, and ONBUILD's
nested instruction.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.builder.shell import SPACE, go_quote, is_space
from dockyard.errors import InvalidArgument

_WS = re.compile(r"[\t\v\f\r ]+")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


@dataclass(frozen=True)
class Heredoc:
    """A heredoc: ``<<[-]NAME`` on the instruction line, its body on the following lines."""

    name: str
    content: str = ""
    expand: bool = True   # False when any part of the name was quoted
    chomp: bool = False   # ``<<-``: leading tabs are stripped from the body
    fd: int = 0           # ``3<<EOF`` (0 when not given)


@dataclass(frozen=True)
class Node:
    """One instruction as written: keyword, flags, split arguments, where it was."""

    value: str                        # the keyword as written (``run``, ``RUN``, ...)
    args: tuple[str, ...] = ()
    sub: Node | None = None           # ONBUILD's nested instruction
    flags: tuple[str, ...] = ()       # leading ``--flag[=value]`` words
    json: bool = False                # the arguments were a JSON array
    heredocs: tuple[Heredoc, ...] = ()
    original: str = ""                # the whole instruction line, continuations joined
    start_line: int = 0
    end_line: int = 0
    comments: tuple[str, ...] = ()    # the comment lines right before it

    @property
    def keyword(self) -> str:
        return self.value.lower()


@dataclass(frozen=True)
class _Args:
    args: tuple[str, ...] = ()
    json: bool = False
    sub: Node | None = None


def node_from_line(line: str, escape: str, comments: tuple[str, ...] = ()) -> Node:
    keyword, flags, rest = _split_command(line, escape)
    parsed = _DISPATCH.get(keyword.lower(), _parse_ignore)(rest, escape)
    return Node(value=keyword, args=parsed.args, sub=parsed.sub, flags=flags,
                json=parsed.json, original=line, comments=comments)


def _split_command(line: str, escape: str) -> tuple[str, tuple[str, ...], str]:
    parts = _WS.split(line.strip(SPACE), maxsplit=1)
    if len(parts) < 2:
        return parts[0], (), ""
    rest, flags = _extract_flags(parts[1], escape)
    return parts[0], flags, rest.strip(SPACE)


def _extract_flags(line: str, escape: str) -> tuple[str, tuple[str, ...]]:
    """Leading ``--flag`` words (quotes and escapes processed) and the rest of the line."""
    flags: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and is_space(line[i]):
            i += 1
        if i == n:
            return "", tuple(flags)
        if not line.startswith("--", i):
            return line[i:], tuple(flags)
        word, quoted, i = _scan_word(line, i, escape, keep_escapes=False)
        if word == "--":
            return line[i:], tuple(flags)
        if word or quoted:
            flags.append(word)


def _scan_word(text: str, i: int, escape: str, keep_escapes: bool) -> tuple[str, bool, int]:
    """One whitespace-delimited word from ``text[i]`` (not whitespace): the word, whether it
    had quotes, and where it ended. Quotes stay in the word only with ``keep_escapes``."""
    out: list[str] = []
    quote = ""
    quoted = False
    n = len(text)
    while i < n:
        ch = text[i]
        if not quote and is_space(ch):
            break
        if not quote and ch in ("'", '"'):
            quote, quoted = ch, True
            if keep_escapes:
                out.append(ch)
        elif quote and ch == quote:
            quote = ""
            if keep_escapes:
                out.append(ch)
        elif ch == escape and not (keep_escapes and quote == "'"):
            if i + 1 == n:
                return "".join(out), quoted, n
            i += 1
            out.append(ch + text[i] if keep_escapes else text[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out), quoted, i


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Words split on whitespace outside quotes; quotes and escapes are kept (``ARG``)."""
    words: list[str] = []
    i, n = 0, len(rest)
    while i < n:
        if is_space(rest[i]):
            i += 1
            continue
        word, quoted, i = _scan_word(rest, i, escape, keep_escapes=True)
        if word or quoted:
            words.append(word)
    return words


def _parse_ignore(rest: str, escape: str) -> _Args:
    return _Args(("",))   # buildkit keeps an empty argument for unknown instructions


def _parse_sub_command(rest: str, escape: str) -> _Args:
    return _Args(sub=node_from_line(rest, escape)) if rest else _Args()


def _parse_name_val(key: str) -> Callable[[str, str], _Args]:
    def parse_name_val(rest: str, escape: str) -> _Args:
        words = parse_words(rest, escape)
        if not words:
            return _Args()
        if "=" not in words[0]:   # the old form: KEY name value
            parts = _WS.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise InvalidArgument(f"{key} must have two arguments")
            return _Args((parts[0], parts[1], ""))
        triples: list[str] = []
        for word in words:
            if "=" not in word:
                raise InvalidArgument(f"Syntax error - can't find = in {go_quote(word)}. "
                                      "Must be of the form: name=value")
            name, _, value = word.partition("=")
            triples += [name, value, "="]
        return _Args(tuple(triples))
    return parse_name_val


def _parse_name_or_name_val(rest: str, escape: str) -> _Args:
    return _Args(tuple(parse_words(rest, escape)))


def _parse_whitespace_delimited(rest: str, escape: str = "\\") -> _Args:
    return _Args(tuple(_WS.split(rest))) if rest else _Args()


def _parse_string(rest: str, escape: str) -> _Args:
    return _Args((rest,)) if rest else _Args()


def _parse_json(rest: str) -> tuple[str, ...] | None:
    """The JSON array of strings ``rest`` is, None if it is not JSON (error: not strings)."""
    rest = rest.lstrip(SPACE)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise InvalidArgument(_NOT_STRINGS)
    return tuple(value)


def _reject_constant(name: str) -> object:
    raise ValueError(f"not JSON: {name}")   # Go's JSON has no NaN or Infinity


def _parse_maybe_json(rest: str, escape: str = "\\") -> _Args:
    if not rest:
        return _Args()
    parsed = _parse_json(rest)
    return _Args((rest,)) if parsed is None else _Args(parsed, json=True)


def _parse_maybe_json_to_list(rest: str, escape: str) -> _Args:
    parsed = _parse_json(rest)
    return _parse_whitespace_delimited(rest) if parsed is None else _Args(parsed, json=True)


def _parse_health_config(rest: str, escape: str) -> _Args:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    if sep == 0:
        return _Args()
    following = sep
    while following < len(rest) and is_space(rest[following]):
        following += 1
    command = _parse_maybe_json(rest[following:])
    return _Args((rest[:sep],) + command.args, json=command.json)


_DISPATCH: dict[str, Callable[[str, str], _Args]] = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_name_val("ENV"),
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health_config,
    "label": _parse_name_val("LABEL"),
    "maintainer": _parse_string,
    "onbuild": _parse_sub_command,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}
