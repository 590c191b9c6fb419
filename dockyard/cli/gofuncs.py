"""Go value printing and the template functions docker's ``--format`` offers."""
from __future__ import annotations

import json
from typing import Any, ClassVar

from dockyard.cli.gotypes import kind_of


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key yields; prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


class TypedNil:
    """A null/omitted field whose Go type is known: prints ``[]``, ``map[]`` or ``<nil>``."""

    TEXT: ClassVar[dict[str, str]] = {"slice": "[]", "map": "map[]", "ptr": "<nil>"}

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __str__(self) -> str:
        return self.TEXT[self.kind]


class GoMap(dict[str, Any]):
    """A JSON object known to be a Go map (labels, options…): printed and encoded sorted."""


def structlike(value: dict[str, Any]) -> bool:
    """API objects (``{"Id":…, "State":…}``) print like Go structs, label maps like maps."""
    return bool(value) and all(k[:1].isupper() and k.replace("_", "").isalnum() for k in value)


def go_str(value: Any) -> str:
    """Go's ``%v`` for values decoded from JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is NO_VALUE:
        return "<no value>"
    if isinstance(value, TypedNil):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        if structlike(value) and not isinstance(value, GoMap):
            return "{" + " ".join(go_str(_typed(k, v)) for k, v in value.items()) + "}"
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _typed(name: str, value: Any) -> Any:
    """A struct field's value, with nulls of known slice/map/pointer fields typed."""
    if value is None:
        kind = kind_of(name)
        return TypedNil(kind) if kind else None
    if isinstance(value, dict) and kind_of(name) == "map":
        return GoMap(value)
    return value


def _go_float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mant, _, exp = text.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        exp = exp.lstrip("+-").rjust(2, "0")
        text = f"{mant}e{sign}{exp}"
    return text


def truthy(value: Any) -> bool:
    if value is NO_VALUE or value is None or isinstance(value, TypedNil):
        return False
    return bool(value)


def to_json(value: Any) -> str:
    """docker's ``json`` function: compact, HTML not escaped, maps sorted like Go.

    Formatter contexts (ps/images rows) marshal themselves with json.Marshal first, which
    does escape ``<``, ``>`` and ``&``."""
    text = json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False)
    if hasattr(value, "to_json"):
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


def _jsonable(value: Any, name: str = "") -> Any:
    """Go's encoding: struct fields in declaration (= API) order, map keys sorted."""
    if value is NO_VALUE or isinstance(value, TypedNil):
        return None
    if isinstance(value, dict):
        is_map = isinstance(value, GoMap) or kind_of(name) == "map"
        keys = sorted(value) if is_map else list(value)
        return {k: _jsonable(value[k], "" if is_map else k) for k in keys}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, name) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, "")
        elif isinstance(value, (list, tuple, str)):
            try:
                value = value[int(key)]
            except (IndexError, ValueError):
                from dockyard.cli.gotemplate import TemplateError
                raise TemplateError(f"error calling index: index out of range: {key}") from None
        elif value is None or isinstance(value, TypedNil):
            return "" if isinstance(value, TypedNil) and value.kind == "map" else None
        else:
            from dockyard.cli.gotemplate import TemplateError
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    i = 0
    arg = iter(args)
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%" or i + 1 >= len(fmt):
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+ #0123456789.":
            j += 1
        verb, flags = fmt[j] if j < len(fmt) else "", fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        value = next(arg, NO_VALUE)
        if verb in "vs":
            out.append(("%" + flags + "s") % go_str(value))
        elif verb == "q":
            out.append(json.dumps(go_str(value), ensure_ascii=False))
        elif verb in "dxXo":
            out.append(("%" + flags + verb) % int(value))
        elif verb in "feEgG":
            out.append(("%" + flags + verb) % float(value))
        else:
            out.append(go_str(value))
    return "".join(out)


def _cmp(op: str) -> Any:
    import operator
    fn = getattr(operator, op)

    def compare(a: Any, *bs: Any) -> bool:
        if op == "eq":
            return any(fn(a, b) for b in bs)
        return bool(fn(a, bs[0]))
    return compare


def _and(*args: Any) -> Any:
    for a in args:
        if not truthy(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if truthy(a):
            return a
    return args[-1]


def _truncate(text: Any, length: int) -> str:
    s = go_str(text)
    return s[:length]


def _slice(value: Any, *idx: int) -> Any:
    if len(idx) == 0:
        return value
    if len(idx) == 1:
        return value[idx[0]:]
    return value[idx[0]:idx[1]]


def _title(text: Any) -> str:
    s = go_str(text)
    return " ".join(w[:1].upper() + w[1:] for w in s.split(" "))


FUNCS: dict[str, Any] = {
    "json": to_json,
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda text, sep: go_str(text).split(sep),
    "upper": lambda text: go_str(text).upper(),
    "lower": lambda text: go_str(text).lower(),
    "title": _title,
    "pad": lambda text, before, after: " " * before + go_str(text) + " " * after,
    "truncate": _truncate,
    "index": _index,
    "len": lambda v: len(v) if v is not None and v is not NO_VALUE else 0,
    "print": lambda *a: "".join(go_str(v) for v in a),
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "printf": _printf,
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"),
    "gt": _cmp("gt"), "ge": _cmp("ge"),
    "and": _and, "or": _or, "not": lambda v: not truthy(v),
    "slice": _slice,
}

# In table headers every formatting function passes its (header) argument through.
HEADER_FUNCS: dict[str, Any] = {
    name: (lambda v, *rest: v) for name in
    ("json", "join", "split", "upper", "lower", "title", "pad", "truncate")
}
