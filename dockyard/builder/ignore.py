""".dockerignore, with the exact semantics of Docker's ``moby/patternmatcher``.

Reading (``ignorefile.ReadAll``): a UTF-8 BOM is dropped from the first line; a line starting
with ``#`` *before* trimming is a comment; lines are whitespace-trimmed, blank ones skipped;
``!`` marks an exception; each pattern is ``filepath.Clean``-ed and one leading ``/`` dropped
(``/abs`` and ``./x`` mean ``abs`` and ``x``). A pattern's syntax is checked as Go's
``filepath.Match(p, ".")`` does.

Matching (``MatchesOrParentMatches``): a path is excluded when the *last* pattern that
matches it — or matches one of its parent directories — is not an exception, so ``foo``
excludes ``foo/bar`` and ``!foo/keep`` re-includes one file under an excluded ``foo``.
Patterns are compiled the way patternmatcher compiles them: ``*`` and ``?`` never match
``/``, ``**`` matches any number of directories (``**/x``, ``a/**/b``, ``a/**``), ``[...]``
classes are kept, a ``\\`` takes the next character literally, and so are the shortcuts
patternmatcher takes (``a/**`` is a string-prefix test, ``**x`` a string-suffix test, so
``**.go`` matches ``x.go`` and ``**foo`` matches ``barfoo``). Patterns never depend on
whether the path is a directory (a trailing ``/`` is cleaned away).

The context walk (:meth:`IgnoreMatcher.may_contain_exceptions`) must descend into an
excluded directory when an exception could re-include something inside it. Docker's classic
CLI only does so when an exception's text starts with ``<dir>/``; we also descend when an
exception's leading segments could *match* the directory (``!*/keep``, ``!**/keep``), as
BuildKit does, so an exception is never silently lost.

The Dockerfile and ``.dockerignore`` are always sent even when ignored (the caller reads them
before pruning; see :mod:`dockyard.builder.context`).
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from dockyard.errors import InvalidArgument

__all__ = ["IgnoreMatcher", "Pattern", "go_clean", "go_match", "read_patterns"]

_BOM = "\ufeff"
_REGEX_SPECIAL = frozenset(".+()|{}$")


class _BadPattern(Exception):
    """Go's ``filepath.ErrBadPattern``."""


# -- Go's path/filepath.Clean and Match (unix) -------------------------------------------------
def go_clean(path: str) -> str:
    """``filepath.Clean``: collapse ``//``, ``.`` and ``..`` lexically; ``""`` becomes ``.``."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    if len(chunk) < 2:
        raise _BadPattern
    return chunk[0], chunk[1:]


def _match_class(chunk: str, ch: str) -> tuple[bool, str]:
    """Match ``ch`` against the class at the start of ``chunk`` (after ``[``)."""
    negated = chunk.startswith("^")
    if negated:
        chunk = chunk[1:]
    matched = False
    ranges = 0
    while True:
        if chunk.startswith("]") and ranges > 0:
            return matched != negated, chunk[1:]
        lo, chunk = _get_esc(chunk)
        hi = lo
        if chunk[0] == "-":
            hi, chunk = _get_esc(chunk[1:])
        if ch and lo <= ch <= hi:
            matched = True
        ranges += 1


def _match_chunk(chunk: str, text: str) -> tuple[str, bool]:
    """Go's ``matchChunk``: does ``chunk`` (no ``*``) match a prefix of ``text``?"""
    failed = False
    while chunk:
        if not failed and not text:
            failed = True
        ch = chunk[0]
        if ch == "[":
            current = "" if failed else text[0]
            text = text if failed else text[1:]
            ok, chunk = _match_class(chunk[1:], current)
            failed = failed or not ok
            continue
        if ch == "?":
            if not failed:
                failed = text[0] == "/"
                text = text[1:]
            chunk = chunk[1:]
            continue
        if ch == "\\":
            chunk = chunk[1:]
            if not chunk:
                raise _BadPattern
        if not failed:
            failed = chunk[0] != text[0]
            text = text[1:]
        chunk = chunk[1:]
    return ("", False) if failed else (text, True)


def _go_match(pattern: str, name: str) -> bool:
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * matches the rest unless it has a /
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if star:
            found = False
            for i in range(len(name)):
                if name[i] == "/":
                    break
                rest, ok = _match_chunk(chunk, name[i + 1:])
                if ok and (pattern or not rest):
                    name, found = rest, True
                    break
            if found:
                continue
        while pattern:  # report a syntax error in the rest of the pattern, as Go does
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match``; raises InvalidArgument ``syntax error in pattern``."""
    try:
        return _go_match(pattern, name)
    except _BadPattern:
        raise InvalidArgument(f"syntax error in pattern: {pattern}") from None


# -- patternmatcher ---------------------------------------------------------------------------
class _Kind(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"


def _translate(pattern: str) -> tuple[_Kind, str]:
    """patternmatcher's ``compile``: the match kind and the regexp (without ``$``)."""
    regex, kind, pos, step = "^", _Kind.EXACT, 0, 0
    while pos < len(pattern):
        ch, pos = pattern[pos], pos + 1
        if ch == "*" and pattern[pos:pos + 1] == "*":
            pos += 1
            if pattern[pos:pos + 1] == "/":
                pos += 1
            if pos >= len(pattern):
                if kind is _Kind.EXACT:
                    kind = _Kind.PREFIX
                else:
                    regex, kind = regex + ".*", _Kind.REGEXP
            else:
                regex, kind = regex + "(.*/)?", _Kind.REGEXP
            if step == 0:
                kind = _Kind.SUFFIX
        elif ch == "*":
            regex, kind = regex + "[^/]*", _Kind.REGEXP
        elif ch == "?":
            regex, kind = regex + "[^/]", _Kind.REGEXP
        elif ch in _REGEX_SPECIAL:
            regex += "\\" + ch
        elif ch == "\\" and pos < len(pattern):
            regex, kind, pos = regex + re.escape(pattern[pos]), _Kind.REGEXP, pos + 1
        elif ch == "\\":
            regex += "\\\\"
        elif ch in "[]":
            regex, kind = regex + ch, _Kind.REGEXP
        else:
            regex += ch
        step += 1
    return kind, regex


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern (without its ``!``) and how it matches."""

    text: str
    exclusion: bool
    kind: _Kind
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, line: str) -> Pattern:
        text = go_clean(line.strip())
        exclusion = text.startswith("!")
        if exclusion:
            if len(text) == 1:
                raise InvalidArgument('illegal exclusion pattern: "!"')
            text = text[1:]
        go_match(text, ".")  # Docker's syntax check
        kind, source = _translate(text)
        regex = None
        if kind is _Kind.REGEXP:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "possible nested set" for [[
                    regex = re.compile(source)
            except re.error:
                raise InvalidArgument(f"syntax error in pattern: {text}") from None
        return cls(text, exclusion, kind, regex)

    def match(self, path: str) -> bool:
        if self.kind is _Kind.EXACT:
            return path == self.text
        if self.kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind is _Kind.SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None

    def could_match_below(self, directory: str) -> bool:
        """Whether this pattern could match ``directory``, an ancestor, or a descendant."""
        if ("/" + self.text + "/").startswith("/" + directory + "/"):
            return True  # Docker's own test
        segments = self.text.split("/")
        for i, part in enumerate(directory.split("/")):
            if i >= len(segments) or "**" in segments[i]:
                return True
            try:
                if not _go_match(segments[i], part):
                    return False
            except _BadPattern:
                return True
        return True


def read_patterns(text: str) -> list[str]:
    """``ignorefile.ReadAll``: the pattern lines of a .dockerignore, normalized."""
    patterns: list[str] = []
    for number, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass(frozen=True)
class IgnoreMatcher:
    """The compiled patterns of one .dockerignore (empty: nothing excluded)."""

    patterns: tuple[Pattern, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        """Parse .dockerignore content; InvalidArgument on a bad pattern."""
        return cls.from_patterns(read_patterns(text))

    @classmethod
    def from_patterns(cls, lines: Sequence[str]) -> IgnoreMatcher:
        """Compile already-read patterns (patternmatcher's ``New``)."""
        return cls(tuple(Pattern.compile(line) for line in lines if line.strip()))

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether ``rel_path`` (relative to the context, ``/``-separated) is excluded.

        ``is_dir`` does not change the answer — Docker's patterns never depend on it — and
        is accepted so walks can say what they hold. The context root is never excluded.
        """
        del is_dir
        path = go_clean(rel_path).lstrip("/")
        if path in ("", "."):
            return False
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[:i + 1]) for i in range(len(parents))]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # cannot change the outcome
            if pattern.match(path) or any(pattern.match(p) for p in prefixes):
                matched = not pattern.exclusion
        return matched

    def may_contain_exceptions(self, directory: str) -> bool:
        """Whether a walk must descend into the excluded ``directory``: an exception
        (``!pattern``) could re-include something inside it."""
        path = go_clean(directory).lstrip("/")
        return any(p.exclusion and p.could_match_below(path) for p in self.patterns)
