"""The parsing half of :mod:`dockyard.cli.gotemplate`: Go text/template source → a node list.

Lexing splits text from ``{{…}}`` actions (with ``{{- -}}`` trimming, comments dropped);
actions are tokenised into pipelines (``$x :=`` declarations, ``|`` pipes, parenthesised
sub-pipelines) and ``if``/``range``/``with`` blocks with their ``else`` branches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class TemplateError(Exception):
    pass


# -- parse tree ----------------------------------------------------------------------------
@dataclass
class Pipe:
    decl: list[str]
    cmds: list[list[Any]]  # each command is a list of operands (tokens or nested Pipe)


@dataclass
class Text:
    text: str


@dataclass
class Action:
    pipe: Pipe


@dataclass
class Block:
    kind: str  # "if" | "range" | "with"
    pipe: Pipe
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<decl>:=|=)
  | (?P<punct>[|(),])
  | (?P<field>\$\w*(?:\.\w+)*|\.(?:\w+(?:\.\w+)*)?)
  | (?P<ident>[A-Za-z_]\w*)
)""", re.VERBOSE)


@dataclass(frozen=True)
class Tok:
    kind: str
    value: str
    pos: int = 0  # offset in the template source, for error messages


def _tokens(src: str, base: int = 0) -> list[Tok]:
    out: list[Tok] = []
    pos = len(src) - len(src.lstrip())
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos:]!r} in command")
        pos = m.end()
        kind = m.lastgroup or ""
        out.append(Tok(kind, m.group(kind), base + m.start(kind)))
    return out


def _parse_pipe(toks: list[Tok], pos: int = 0, close: str = "") -> tuple[Pipe, int]:
    decl: list[str] = []
    look = pos
    names: list[str] = []
    while look < len(toks) and toks[look].kind == "field" and toks[look].value.startswith("$"):
        names.append(toks[look].value)
        look += 1
        if look < len(toks) and toks[look].value == ",":
            look += 1
            continue
        break
    if names and look < len(toks) and toks[look].kind == "decl":
        decl, pos = names, look + 1
    cmds: list[list[Any]] = [[]]
    while pos < len(toks):
        tok = toks[pos]
        if tok.value == ")" and close == ")":
            return Pipe(decl, cmds), pos + 1
        if tok.value == "|":
            cmds.append([])
        elif tok.value == "(":
            sub, pos = _parse_pipe(toks, pos + 1, ")")
            cmds[-1].append(sub)
            continue
        else:
            cmds[-1].append(tok)
        pos += 1
    if close:
        raise TemplateError("unclosed left paren")
    if not cmds[-1]:
        raise TemplateError("missing value for command")
    return Pipe(decl, cmds), pos


Item = tuple[str, str, int]  # ("text"|"action", text, offset of the text in the source)


def _lex(src: str) -> list[Item]:
    """Text and action items, with ``{{-``/``-}}`` trimming and comments dropped."""
    items: list[Item] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            items.append(("text", text, 0))
        pos, trim_next = m.end(), bool(m.group(3))
        raw = m.group(2)
        body = raw.strip()
        if not body.startswith("/*"):
            items.append(("action", body, m.start(2) + len(raw) - len(raw.lstrip())))
    text = src[pos:].lstrip() if trim_next else src[pos:]
    if "{{" in text:
        line = src[:pos + text.index("{{")].count("\n") + 1
        raise TemplateError(f"template: :{line}: unclosed action")
    if text:
        items.append(("text", text, 0))
    return items


Term = tuple[str, int] | None


def _parse_list(items: list[Item], pos: int) -> tuple[list[Any], int, Term]:
    """Nodes up to an ``{{end}}``/``{{else…}}`` (returned as the terminator) or the end."""
    nodes: list[Any] = []
    while pos < len(items):
        kind, body, offset = items[pos]
        pos += 1
        if kind == "text":
            nodes.append(Text(body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else"):
            return nodes, pos, (body, offset)
        if word in ("if", "range", "with"):
            block, pos = _parse_block(word, body[len(word):], offset + len(word), items, pos)
            nodes.append(block)
        elif body:
            nodes.append(Action(_parse_pipe(_tokens(body, offset))[0]))
    return nodes, pos, None


def _parse_block(kind: str, pipe_src: str, offset: int, items: list[Item],
                 pos: int) -> tuple[Block, int]:
    block = Block(kind, _parse_pipe(_tokens(pipe_src, offset))[0])
    block.body, pos, end = _parse_list(items, pos)
    if end is None:
        raise TemplateError(f"unexpected EOF in {kind}")
    term, term_at = end
    if term.startswith("else"):
        rest = term[4:].strip()
        word = rest.split(None, 1)[0] if rest else ""
        if word in ("if", "with"):
            at = term_at + term.index(word) + len(word)
            inner, pos = _parse_block(word, rest[len(word):], at, items, pos)
            block.orelse = [inner]
        else:
            block.orelse, pos, end = _parse_list(items, pos)
            if end is None or end[0] != "end":
                raise TemplateError(f"expected end; found {end[0] if end else 'EOF'}")
    return block, pos


def parse(src: str) -> list[Any]:
    """Parse a template into a node list."""
    nodes, _, term = _parse_list(_lex(src), 0)
    if term is not None:
        raise TemplateError(f"unexpected {{{{{term[0]}}}}}")
    return nodes
