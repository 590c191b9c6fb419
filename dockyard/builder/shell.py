"""Shell-word processing for Dockerfiles: quotes, escapes and ``$VAR`` expansion.

This follows buildkit's ``shell.Lex``. A word is read left to right: ``'...'`` is literal,
``"..."`` allows ``$`` expansion and escapes of ``"``, ``$`` and the escape character, the
escape character (``\\`` or the ``# escape=`` one) escapes the next character, and ``$NAME`` /
``${NAME}`` expand, with the modifiers ``:-``, ``-``, ``:+``, ``+``, ``:?``, ``?``, ``#``,
``##``, ``%``, ``%%``, ``/`` and ``//`` (``*`` and ``?`` glob patterns). Unset variables
expand to nothing. ``words`` splits the result on unquoted whitespace, including whitespace
that came from an unquoted expansion.

The lexer options mirror buildkit's: ``raw_quotes`` and ``raw_escapes`` keep quotes and
escape characters in the output (the parser uses them to find heredoc markers),
``skip_quotes`` treats quotes as ordinary characters and ``skip_unset`` leaves references to
unset variables as written.

Every call reports the variables it looked up: ``used`` (found in the environment) and
``unset`` (not found), which the builder needs for cache keys and unused-ARG warnings.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

# Go's unicode.IsSpace: the characters Dockerfile tooling treats as whitespace.
SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
         "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def is_space(ch: str) -> bool:
    """Whether the single character ``ch`` is whitespace (Go's ``unicode.IsSpace``)."""
    return ch != "" and ch in SPACE


def go_quote(text: str) -> str:
    """``text`` double-quoted the way Go's ``strconv.Quote`` does it."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


@dataclass(frozen=True)
class ProcessResult:
    """One processed word: the whole text, the split words and the variables looked up."""

    word: str
    words: tuple[str, ...]
    used: frozenset[str]
    unset: frozenset[str]


@dataclass(frozen=True)
class Lexer:
    """Processes words with one escape character and one set of options."""

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_quotes: bool = False
    skip_unset: bool = False

    def process(self, word: str, env: Mapping[str, str]) -> ProcessResult:
        """Expand ``word``; InvalidArgument names the word and what is wrong with it."""
        scan = _Scan(self, word, env)
        try:
            text, words = scan.until("", self.raw_escapes)
        except _LexError as exc:
            raise InvalidArgument(f"failed to process {go_quote(word)}: {exc}") from None
        return ProcessResult(text, tuple(words), frozenset(scan.used), frozenset(scan.unset))


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> ProcessResult:
    return Lexer(escape).process(word, env)


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with quotes removed, escapes applied and variables expanded."""
    return Lexer(escape).process(word, env).word


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Like :func:`expand_word`, then split on unquoted whitespace."""
    return list(Lexer(escape).process(word, env).words)


class _LexError(Exception):
    pass


class _Words:
    """Collects the split words while a word is processed."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.buf: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if not is_space(ch):
            self.add_raw(ch)
        elif self.in_word and self.buf:
            self.words.append("".join(self.buf))
            self.buf = []
            self.in_word = False

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.buf.append(text)
        self.in_word = True

    def finish(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf = []
            self.in_word = False
        return self.words


class _Scan:
    """The state of processing one word (private; one instance per call)."""

    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lx = lexer
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.used: set[str] = set()
        self.unset: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += len(ch)
        return ch

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to ``stop`` (consumed) or, with ``stop == ""``, to the end."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) != "":
            if stop and ch == stop:
                self.next()
                return "".join(result), words.finish()
            if ch == "$":
                value = self.dollar()
                result.append(value)
                words.add_string(value)
                continue
            if ch in ("'", '"') and not self.lx.skip_quotes:
                value = self.single_quote() if ch == "'" else self.double_quote()
                result.append(value)
                words.add_raw(value)
                continue
            ch = self.next()
            if ch == self.lx.escape:
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if ch == "":
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def single_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lx.raw_quotes else []
        while True:
            ch = self.next()
            if ch == "":
                raise _LexError(
                    "unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lx.raw_quotes else []
        while True:
            ch = self.peek()
            if ch == "":
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lx.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == "":
                    continue
                if following in ('"', "$", self.lx.escape):
                    ch = self.next()
            out.append(ch)

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        (self.unset if value is None else self.used).add(name)
        return value

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdecimal():
            while self.peek().isdecimal():
                self.pos += 1
        elif ch in _SPECIAL_PARAMS:
            self.pos += 1
        else:
            while (c := self.peek()) != "" and (c.isalpha() or c.isdecimal() or c == "_"):
                self.pos += 1
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.lx.skip_unset else ""
            return value
        self.next()
        ch = self.peek()
        if ch == "":
            raise _LexError("syntax error: missing '}'")
        if ch in ("{", "}", ":"):
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.lx.skip_unset else ""
            return value
        if ch == ":":
            op = self.next()
            return self.modifier(name, op, ":" + op, null_is_unset=True)
        if ch in ("+", "-", "?", "#", "%"):
            return self.modifier(name, ch, ch, null_is_unset=False)
        if ch == "/":
            return self.substitute(name)
        if ch == "":
            raise _LexError("syntax error: missing '}'")
        raise _LexError(f"unsupported modifier ({ch}) in substitution")

    def closing(self, stop: str, raw_escapes: bool, missing: str) -> str:
        try:
            return self.until(stop, raw_escapes)[0]
        except _LexError:
            if self.peek() == "":
                raise _LexError(missing) from None
            raise

    def modifier(self, name: str, op: str, chs: str, null_is_unset: bool) -> str:
        pattern_op = op in ("#", "%")
        if null_is_unset and pattern_op:
            raise _LexError(f"unsupported modifier ({chs}) in substitution")
        word = self.closing("}", pattern_op, "syntax error: missing '}'")
        value = self.lookup(name)
        if value is None and self.lx.skip_unset:
            return "${" + name + chs + word + "}"
        empty = value is None or (null_is_unset and value == "")
        if op == "-":
            return word if empty else value or ""
        if op == "+":
            return "" if empty else word
        if op == "?":
            if empty:
                reason = "unset" if value is None else "empty"
                raise _LexError(f"{name}: {word or 'is not allowed to be ' + reason}")
            return value or ""
        if pattern_op:
            greedy = word.startswith(op)
            pattern = word[1:] if greedy else word
            trim = _trim_suffix if op == "%" else _trim_prefix
            return trim(pattern, value or "", greedy)
        raise _LexError(f"unsupported modifier ({chs}) in substitution")

    def substitute(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self.closing("/", True, "syntax error: missing '/' in ${}")
        replacement = self.closing("}", True, "syntax error: missing '}'")
        value = self.lookup(name)
        if value is None and self.lx.skip_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        value = value or ""
        if replace_all:
            return regex.sub(lambda _: replacement, value)
        found = regex.search(value)
        if found is None:
            return value
        return value[:found.start()] + replacement + value[found.end():]


def _pattern_tokens(pattern: str) -> list[str]:
    """The pattern split into characters, an escape and its character kept together."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        step = 2 if pattern[i] == "\\" and i + 1 < len(pattern) else 1
        tokens.append(pattern[i:i + step])
        i += step
    return tokens


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell glob (``*``, ``?``, ``\\`` escapes; no brackets) as a regular expression."""
    out = ["^"] if anchored else []
    for token in _pattern_tokens(pattern):
        if token == "*":
            out.append(".*" if greedy else ".*?")
        elif token == "?":
            out.append(".")
        elif token.startswith("\\"):
            escaped = token[1:]
            if escaped in ("}", "/"):
                out.append(re.escape(escaped))
            elif escaped in ("*", "?", "\\"):
                out.append("\\" + escaped)
            else:
                raise _LexError(f"invalid pattern ({pattern}) in substitution: "
                                f"invalid escape '\\{escaped}'")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    found = _pattern_regex(pattern, greedy, anchored=True).search(value)
    return value[found.end():] if found else value


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regular expression finds leftmost matches: reverse the pattern and the value.
    reversed_pattern = "".join(reversed(_pattern_tokens(pattern)))
    return _trim_prefix(reversed_pattern, value[::-1], greedy)[::-1]
