"""Dockerfile text → syntax tree, the way buildkit's parser builds it.

The parser knows lines, not meanings. It reads the parser directives at the top of the file
(``# syntax=``, ``# escape=``, ``# check=``), joins continuation lines (the escape character
at the end of a line; comment and blank lines inside a continuation are dropped), splits each
instruction into its keyword, its leading ``--flags`` (kept as written, not validated) and
its arguments, split per instruction (``line_parsers``), and reads the bodies of heredocs
(``RUN <<EOF``). Variables are not expanded here; ``instructions`` turns
nodes into typed instructions and validates them.

:func:`render` prints a tree in buildkit's s-expression dump format (the golden files of
``shared/conformance/dockerfile-parser``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dockyard.builder.line_parsers import Heredoc, Node, node_from_line, parse_words
from dockyard.builder.shell import SPACE, Lexer, go_quote
from dockyard.errors import InvalidArgument

_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)([^<]*)")
_DIRECTIVE_NAMES = frozenset({"syntax", "escape", "check"})
_HEREDOC_KEYWORDS = frozenset({"add", "copy", "run"})
_LINE_LEXER = Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
_WORD_LEXER = Lexer(skip_unset=True)
_RAW_WORD_LEXER = Lexer(raw_quotes=True, skip_unset=True)


class DockerfileParseError(InvalidArgument):
    """A Dockerfile that cannot be parsed; ``start_line``/``end_line`` are 1-based (0: none)."""

    def __init__(self, detail: str, start_line: int = 0, end_line: int = 0) -> None:
        prefix = f"dockerfile parse error on line {start_line}: " if start_line else ""
        super().__init__(prefix + detail)
        self.detail = detail
        self.start_line = start_line
        self.end_line = end_line or start_line


@dataclass(frozen=True)
class ParseWarning:
    message: str
    line: int


@dataclass(frozen=True)
class ParseResult:
    """A parsed Dockerfile: its instructions and the directives that applied."""

    children: tuple[Node, ...]
    escape: str = "\\"
    directives: tuple[tuple[str, str], ...] = ()
    warnings: tuple[ParseWarning, ...] = ()

    @property
    def start_line(self) -> int:
        return self.children[0].start_line if self.children else 0

    @property
    def end_line(self) -> int:
        return self.children[-1].end_line if self.children else 0

    def directive(self, name: str) -> str | None:
        return dict(self.directives).get(name)


def parse(text: str) -> ParseResult:
    """Parse a Dockerfile; DockerfileParseError (an InvalidArgument) if it is malformed."""
    reader = _Reader(text.removeprefix("\ufeff"))
    state = _Directives()
    children: list[Node] = []
    warnings: list[ParseWarning] = []
    comments: list[str] = []
    while (raw := reader.next()) is not None:
        if _is_comment(raw):
            comment = raw[1:].strip(SPACE)
            comments = comments + [comment] if comment else []
        line = state.process(raw, reader.number, strip_left=True)
        start = reader.number
        line, ended = state.trim_continuation(line)
        if ended and line == "":
            continue
        line, had_empty = _continue(line, ended, reader, state)
        if had_empty:
            warnings.append(ParseWarning(f"Empty continuation line found in: {line}",
                                         reader.number))
        try:
            node = node_from_line(line, state.escape, tuple(comments))
            if _can_contain_heredoc(node) and "<<" in line:
                node = _read_heredocs(node, line, reader, start)
        except DockerfileParseError:
            raise
        except InvalidArgument as exc:
            raise DockerfileParseError(exc.message, start, reader.number) from None
        children.append(replace(node, start_line=start, end_line=reader.number))
        comments = []
    if not children:
        raise DockerfileParseError("file with no instructions")
    return ParseResult(tuple(children), state.escape, tuple(state.seen.items()),
                       tuple(warnings))


def render(tree: ParseResult | Node) -> str:
    """The s-expression dump: one ``(keyword ["--flags"] "arg" ...)`` line per instruction."""
    if isinstance(tree, Node):
        return _dump(tree)
    return "\n".join(f"({_dump(child)})" for child in tree.children)


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like ``<<EOF``, ``<<-"EOF"`` or ``3<<EOF`` opens (None if none)."""
    match = _HEREDOC.fullmatch(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    words = _WORD_LEXER.process(rest, {}).words
    if len(words) != 1:
        return None
    raw = _RAW_WORD_LEXER.process(rest, {}).words
    if len(raw) != len(words):
        raise InvalidArgument(
            f"internal lexing of heredoc produced inconsistent results: {rest}")
    expand = _quote_count(words[0]) == _quote_count(raw[0])
    return Heredoc(name=words[0], expand=expand, chomp=match.group(2) == "-",
                   fd=int(match.group(1) or "0"))


def heredocs_from_line(line: str) -> tuple[Heredoc, ...]:
    """Every heredoc an instruction line opens, in order."""
    try:
        words = _LINE_LEXER.process(line, {}).words
    except InvalidArgument:
        return ()
    return tuple(doc for word in words if (doc := parse_heredoc(word)) is not None)


def chomp_heredoc(content: str) -> str:
    """A ``<<-`` body: leading tabs removed from every line."""
    return re.sub(r"(?m)^\t+", "", content)


def _quote_count(word: str) -> int:
    return word.count("'") + word.count('"')


class _Reader:
    """Lines with their endings (only ``\\n`` ends a line); ``number`` counts lines read."""

    def __init__(self, text: str) -> None:
        parts = text.split("\n")
        self.lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        self.number = 0

    def next(self) -> str | None:
        if self.number >= len(self.lines):
            return None
        self.number += 1
        return self.lines[self.number - 1]


class _Directives:
    """Directive state of one parse: the escape character and the directives seen."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.done = False
        self.escape = "\\"
        self.continuation = _continuation_regex(self.escape)

    def process(self, raw: str, number: int, strip_left: bool) -> str:
        """A raw line without its ending (and comment), looking for directives on the way."""
        token = raw.rstrip("\r\n")
        if strip_left:
            token = token.lstrip(SPACE)
        self.observe(token, number)
        return "" if token.startswith("#") else token

    def observe(self, line: str, number: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.fullmatch(line[1:].lstrip(SPACE)) if line.startswith("#") else None
        key = match.group(1).lower() if match else ""
        if match is None or key not in _DIRECTIVE_NAMES:
            self.done = True
            return
        if key in self.seen:
            raise DockerfileParseError(f"only one {key} parser directive can be used", number)
        self.seen[key] = match.group(2)
        if key == "escape":
            if match.group(2) not in ("`", "\\"):
                raise DockerfileParseError(
                    f"invalid escape token '{match.group(2)}' does not match ` or \\", number)
            self.escape = match.group(2)
            self.continuation = _continuation_regex(self.escape)

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """The line without a trailing escape character, and whether the instruction ends."""
        match = self.continuation.search(line)
        if match is None:
            return line, True
        return line[:match.start()] + (match.group(1) or ""), False


def _continuation_regex(escape: str) -> re.Pattern[str]:
    # An escape character ends a line unless it is itself escaped (buildkit's regex).
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")


def _is_comment(raw: str) -> bool:
    return raw.rstrip("\r\n").lstrip(SPACE).startswith("#")


def _continue(line: str, ended: bool, reader: _Reader,
              state: _Directives) -> tuple[str, bool]:
    """Append continuation lines; also says whether an empty one was skipped."""
    parts = [line]
    had_empty = False
    while not ended and (raw := reader.next()) is not None:
        text = state.process(raw, reader.number, strip_left=False)
        if _is_comment(raw):
            continue
        if not text.lstrip(SPACE):
            had_empty = True
            continue
        text, ended = state.trim_continuation(text)
        parts.append(text)
    return "".join(parts), had_empty


def _can_contain_heredoc(node: Node) -> bool:
    target = node.sub if node.keyword == "onbuild" and node.sub is not None else node
    return target.keyword in _HEREDOC_KEYWORDS and not target.json


def _read_heredocs(node: Node, line: str, reader: _Reader, start: int) -> Node:
    docs = []
    for doc in heredocs_from_line(line):
        body: list[str] = []
        while True:
            raw = reader.next()
            if raw is None:
                raise DockerfileParseError("unterminated heredoc", start, reader.number)
            candidate = raw.rstrip("\r\n")
            if doc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == doc.name:
                break
            body.append(raw)
        docs.append(replace(doc, content="".join(body)))
    return replace(node, heredocs=tuple(docs))


def _dump(node: Node) -> str:
    text = node.value.lower()
    if node.flags:
        text += " [" + " ".join(go_quote(flag) for flag in node.flags) + "]"
    if node.sub is not None:
        text += f" ({_dump(node.sub)})"
    text += "".join(" " + go_quote(arg) for arg in node.args)
    return text.strip(SPACE)


__all__ = ["DockerfileParseError", "Heredoc", "Node", "ParseResult", "ParseWarning",
           "chomp_heredoc", "heredocs_from_line", "parse", "parse_heredoc", "parse_words",
           "render"]
