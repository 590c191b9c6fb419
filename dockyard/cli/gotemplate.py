"""A subset of Go's text/template, enough for docker's ``--format`` strings.

Supported: text, ``{{.A.B}}``, ``{{.Method "arg"}}``, ``$``/``$var``, string/number/bool
literals, parenthesised pipelines, ``|`` pipes, ``{{if}}/{{else if}}/{{else}}/{{end}}``,
``{{range}}`` (with ``$i, $v :=``), ``{{with}}``, ``{{- -}}`` trimming, comments, and the
functions docker registers (json, join, split, upper, lower, title, pad, truncate) plus Go's
builtins (index, len, print, printf, println, eq, ne, lt, le, gt, ge, and, or, not, slice).
The parser is :mod:`dockyard.cli.gotparse`; this module runs its node list.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dockyard.cli.gofuncs import (
    FUNCS,
    GoMap,
    TypedNil,
    go_str,
    structlike,
    truthy,
)
from dockyard.cli.gotparse import Action, Block, Pipe, TemplateError, Text, Tok, parse
from dockyard.cli.gotypes import kind_of

__all__ = ["FieldError", "Template", "TemplateError", "parse"]


# -- execution -----------------------------------------------------------------------------
class _Scope:
    def __init__(self, root: Any) -> None:
        self.vars: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.vars):
            if name in frame:
                return frame[name]
        raise TemplateError(f'undefined variable "{name}"')

    def set(self, name: str, value: Any) -> None:
        self.vars[-1][name] = value


_MISSING = object()


class FieldError(Exception):
    """A field that cannot be evaluated; the caller adds Go's position context."""


def _field(value: Any, name: str, args: list[Any]) -> Any:
    if isinstance(value, dict):
        if args:
            raise FieldError(f"{name} is not a method but has arguments")
        if name not in value:
            kind = kind_of(name)
            if kind is None:
                raise FieldError(f'map has no entry for key "{name}"')
            return TypedNil(kind)
        found = value[name]
        kind = kind_of(name)
        if found is None:
            return TypedNil(kind) if kind else None
        if kind == "map" and isinstance(found, dict):
            return GoMap(found)
        return found
    if isinstance(value, TypedNil):
        if value.kind == "ptr":
            raise FieldError("nil pointer evaluating interface {}." + name)
        return TypedNil(value.kind)
    if value is None or isinstance(value, (str, int, float, list)):
        kind = "<nil>" if value is None else _go_type(value)
        raise FieldError(f"can't evaluate field {name} in type {kind}")
    attr = getattr(value, name, _MISSING)
    if attr is _MISSING or name.startswith("_"):
        raise FieldError(f"can't evaluate field {name} in type *formatter."
                         f"{type(value).__name__}")
    return attr(*args) if callable(attr) else attr


def _go_type(value: Any) -> str:
    return {str: "string", int: "int", float: "float64", list: "[]interface {}",
            bool: "bool"}.get(type(value), "interface {}")


class Template:
    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]] | None = None) -> None:
        self.src = src
        self.nodes = parse(src)
        self.funcs = dict(FUNCS)
        self.funcs.update(funcs or {})

    def execute(self, data: Any, partial: bool = False) -> str:
        """Render; with ``partial`` an error keeps what was rendered so far (table headers)."""
        out: list[str] = []
        try:
            self._run(self.nodes, data, _Scope(data), out)
        except (TemplateError, TypeError, ValueError, KeyError):
            if not partial:
                raise
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, scope: _Scope, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Action):
                value = self._pipe(node.pipe, dot, scope)
                if not node.pipe.decl:
                    out.append(go_str(value))
            else:
                self._block(node, dot, scope, out)

    def _block(self, node: Block, dot: Any, scope: _Scope, out: list[str]) -> None:
        scope.vars.append({})
        try:
            if node.kind == "range":
                self._range(node, dot, scope, out)
                return
            value = self._pipe(node.pipe, dot, scope, declare=node.kind != "range")
            if truthy(value):
                self._run(node.body, value if node.kind == "with" else dot, scope, out)
            else:
                self._run(node.orelse, dot, scope, out)
        finally:
            scope.vars.pop()

    def _range(self, node: Block, dot: Any, scope: _Scope, out: list[str]) -> None:
        value = self._pipe(Pipe([], node.pipe.cmds), dot, scope)
        if isinstance(value, dict):
            keys = value.keys() if structlike(value) else sorted(value)
            items = [(k, value[k]) for k in keys]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif value is None or isinstance(value, TypedNil):
            items = []
        elif isinstance(value, int):
            items = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"range can't iterate over {go_str(value)}")
        if not items:
            self._run(node.orelse, dot, scope, out)
            return
        names = node.pipe.decl
        for key, item in items:
            if len(names) == 1:
                scope.set(names[0], item)
            elif len(names) == 2:
                scope.set(names[0], key)
                scope.set(names[1], item)
            self._run(node.body, item, scope, out)

    def _pipe(self, pipe: Pipe, dot: Any, scope: _Scope, declare: bool = True) -> Any:
        value: Any = None
        for i, cmd in enumerate(pipe.cmds):
            value = self._command(cmd, dot, scope, [value] if i else [])
        if pipe.decl and declare:
            scope.set(pipe.decl[-1], value)
        return value

    def _command(self, cmd: list[Any], dot: Any, scope: _Scope, piped: list[Any]) -> Any:
        head = cmd[0]
        if isinstance(head, Tok) and head.kind == "ident" and head.value not in (
                "true", "false", "nil"):
            fn = self.funcs.get(head.value)
            if fn is None:
                raise TemplateError(f'function "{head.value}" not defined')
            args = [self._operand(a, dot, scope) for a in cmd[1:]] + piped
            return fn(*args)
        if isinstance(head, Tok) and head.kind == "field":
            args = [self._operand(a, dot, scope) for a in cmd[1:]] + piped
            return self._eval_field(head, dot, scope, args)
        if len(cmd) > 1 or piped:
            raise TemplateError(f"can't give argument to non-function {cmd[0]}")
        return self._operand(head, dot, scope)

    def _eval_field(self, tok: Tok, dot: Any, scope: _Scope, args: list[Any]) -> Any:
        text = tok.value
        if text == ".":
            return dot
        parts = text.split(".")
        if text.startswith("$"):
            value, parts = scope.get(parts[0]), parts[1:]
        else:
            value, parts = dot, parts[1:]
        for n, name in enumerate(parts):
            try:
                value = _field(value, name, args if n == len(parts) - 1 else [])
            except FieldError as exc:
                raise TemplateError(f'{self._where(tok)}: executing "" at <{text}>: '
                                    f"{exc}") from None
        return value

    def _where(self, tok: Tok) -> str:
        """Go's ErrorContext: ``template: :line:col`` of the (chained) field."""
        pos = tok.pos
        second = tok.value.find(".", 1)
        if second > 0:
            pos += second
        before = self.src[:pos]
        line = before.count("\n") + 1
        col = pos - (before.rfind("\n") + 1) if "\n" in before else pos
        return f"template: :{line}:{col}"

    def _operand(self, op: Any, dot: Any, scope: _Scope) -> Any:
        if isinstance(op, Pipe):
            return self._pipe(op, dot, scope)
        if op.kind == "str":
            return _unquote(op.value)
        if op.kind == "num":
            return float(op.value) if "." in op.value else int(op.value)
        if op.kind == "field":
            return self._eval_field(op, dot, scope, [])
        if op.value in ("true", "false"):
            return op.value == "true"
        if op.value == "nil":
            return None
        fn = self.funcs.get(op.value)
        if fn is None:
            raise TemplateError(f'function "{op.value}" not defined')
        return fn()


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    try:
        return str(json.loads(text))
    except ValueError:
        return text[1:-1].encode().decode("unicode_escape")
