"""Variable interpolation in compose values: ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``,
``${VAR:?err}``, ``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` for a literal ``$``.

Defaults and alternatives may themselves hold interpolations (``${A:-${B}}``). Unset variables
without a default become ``""`` and are reported through the ``warn`` callback, as Compose does.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.errors import InvalidArgument

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")

Warn = Callable[[str], None]


class InterpolationError(InvalidArgument):
    """A ``${VAR:?err}`` without a value, or a malformed ``${...}`` expression."""


def _noop(_: str) -> None:
    return None


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose body starts at ``start``; -1 if none."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate_string(text: str, env: Mapping[str, str], where: str = "",
                       warn: Warn = _noop) -> str:
    """Substitute variables in one string; ``where`` names the value in error messages."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(f"{where}invalid interpolation format: {text!r}")
            out.append(_expand(text[i + 2:end], text, env, where, warn))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if not m:
            out.append("$")  # a lone "$" stays literal, as in Compose
            i += 1
            continue
        name = m.group(0)
        if name not in env:
            warn(f"The {name!r} variable is not set. Defaulting to a blank string.")
        out.append(env.get(name, ""))
        i = m.end()
    return "".join(out)


def _expand(body: str, whole: str, env: Mapping[str, str], where: str, warn: Warn) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"{where}invalid interpolation format: {whole!r}")
    name, rest = m.group(0), body[m.end():]
    if not rest:
        if name not in env:
            warn(f"The {name!r} variable is not set. Defaulting to a blank string.")
        return env.get(name, "")
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(f"{where}invalid interpolation format: {whole!r}")
    arg = rest[len(op):]
    is_set = name in env
    has_value = is_set and env[name] != ""
    present = has_value if op.startswith(":") else is_set

    def sub() -> str:
        return interpolate_string(arg, env, where, warn)

    if op in (":-", "-"):
        return env[name] if present else sub()
    if op in (":+", "+"):
        return sub() if present else ""
    # ":?" / "?"
    if present:
        return env[name]
    raise InterpolationError(f"{where}required variable {name} is missing a value: {sub()}")


def interpolate(value: Any, env: Mapping[str, str], path: str = "", source: str = "",
                warn: Warn = _noop) -> Any:
    """Interpolate every string in a loaded YAML tree (mapping keys are left alone)."""
    if isinstance(value, str):
        prefix = f"{source}: " if source else ""
        where = f"{prefix}{path}: " if path else prefix
        return interpolate_string(value, env, where, warn)
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k), source, warn)
                for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}.{i}" if path else str(i), source, warn)
                for i, v in enumerate(value)]
    return value
