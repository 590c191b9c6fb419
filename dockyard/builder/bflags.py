"""Instruction flags (``--from=``, ``--mount=``, ``--interval=`` ...), as buildkit's BFlags.

The parser keeps flags as written; each instruction declares the flags it accepts and
:func:`parse_flags` checks them with buildkit's messages (``unknown flag: --foo``,
``missing a value on flag: --from`` ...). Also here: Go durations (HEALTHCHECK intervals)
and ``RUN --mount`` specs.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from dockyard.errors import InvalidArgument

BOOL, STRING, STRINGS = "bool", "string", "strings"

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_MOUNT_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required",
               "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite",
               "size", "env")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_NANOSECONDS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
                "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_MINIMUM_INTERVAL = 1_000_000   # 1ms, Docker's minimum healthcheck duration
_SIZE = re.compile(r"(?i)([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?b)?")


@dataclass(frozen=True)
class Flags:
    """The flags of one instruction after checking: values by name (without ``--``)."""

    values: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def enabled(self, name: str) -> bool:
        return self.values.get(name) == "true"

    def all(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())

    @property
    def used(self) -> frozenset[str]:
        return frozenset(self.values) | frozenset(self.lists)


def parse_flags(args: Sequence[str], accepted: Mapping[str, str]) -> Flags:
    """Check ``args`` (``--name[=value]``) against ``accepted`` (name → BOOL/STRING/STRINGS)."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("--"):
            raise InvalidArgument(f"arg should start with -- : {arg}")
        flag, has_value, value = arg.partition("=")
        name = flag[2:]
        kind = accepted.get(name)
        if kind is None:
            raise InvalidArgument(
                with_suggestion(f"unknown flag: {flag}", name, accepted, prefix="--"))
        if kind != STRINGS and name in values:
            raise InvalidArgument(f"duplicate flag specified: {flag}")
        if kind == BOOL:
            values[name] = _flag_bool(flag, bool(has_value), value)
        elif not has_value:
            raise InvalidArgument(f"missing a value on flag: {flag}")
        elif kind == STRING:
            values[name] = value
        else:
            lists.setdefault(name, []).append(value)
    return Flags(values, {name: tuple(items) for name, items in lists.items()})


def _flag_bool(flag: str, has_value: bool, value: str) -> str:
    if has_value and value == "":
        raise InvalidArgument(f"missing a value on flag: {flag}")
    lowered = value.lower()
    if lowered in ("", "true", "false"):
        return lowered or "true"
    raise InvalidArgument(f"expecting boolean value for flag {flag}, not: {value}")


def with_suggestion(message: str, value: str, options: Sequence[str] | Mapping[str, str],
                    prefix: str = "") -> str:
    """``message`` plus `` (did you mean X?)`` when an option is a near miss of ``value``:
    one edit (or transposition) away, two for words of six letters or more."""
    limit = 2 if len(value) >= 6 else 1
    best, best_distance = "", limit + 1
    for option in options:
        distance = _edit_distance(value, option)
        if 0 < distance < best_distance:
            best, best_distance = option, distance
    return f"{message} (did you mean {prefix}{best}?)" if best else message


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1,
                         rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def parse_duration(text: str) -> int:
    """A Go duration (``1h30m``, ``1.5s``, ``300ms``) in nanoseconds, with Go's errors."""
    invalid = InvalidArgument(f'time: invalid duration "{text}"')
    rest, sign = text, 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise invalid
    total = Fraction(0)
    while rest:
        match = _DURATION_PART.match(rest)
        whole, fraction, unit = match.groups() if match else ("", None, "")
        if not whole and not fraction:
            raise invalid
        if unit == "":
            raise InvalidArgument(f'time: missing unit in duration "{text}"')
        if unit not in _NANOSECONDS:
            raise InvalidArgument(f'time: unknown unit "{unit}" in duration "{text}"')
        number = Fraction(int(whole or "0"))
        if fraction:
            number += Fraction(int(fraction), 10 ** len(fraction))
        total += number * _NANOSECONDS[unit]
        rest = rest[match.end():] if match else ""
    return sign * int(total)


def flag_interval(flags: Flags, name: str) -> int:
    """A HEALTHCHECK duration flag in nanoseconds (0: not given or 0)."""
    text = flags.get(name)
    value = parse_duration(text) if text else 0
    if value and value < _MINIMUM_INTERVAL:
        raise InvalidArgument(f'Interval "{name}" cannot be less than 1ms')
    return value


def flag_retries(text: str) -> int:
    """HEALTHCHECK's ``--retries`` (0: not given)."""
    if not text:
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InvalidArgument(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    if not -2 ** 31 <= int(text) < 2 ** 31:
        raise InvalidArgument(f'strconv.ParseInt: parsing "{text}": value out of range')
    if int(text) < 0:
        raise InvalidArgument(f"--retries cannot be negative ({int(text)})")
    return int(text)


@dataclass(frozen=True)
class Mount:
    """One ``RUN --mount=...``: buildkit's fields, with its defaults."""

    type: str = "bind"
    from_stage: str = ""
    source: str = ""
    target: str = ""
    readonly: bool = True
    cache_id: str = ""
    sharing: str = ""
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int = 0
    env: str | None = None


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """A ``--mount`` value (CSV ``key=value`` fields). Without ``expand`` (at parse time)
    values holding ``$`` are left for later; ``from`` may never use a variable."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise InvalidArgument(f"failed to parse csv mounts: {exc}") from None
    values: dict[str, Any] = {}
    deferred = False
    for item in fields:
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            _mount_flag(values, key, item)
            continue
        if expand is not None:
            value = expand(value)
        elif key == "from" and "$" in value[:-1]:
            raise InvalidArgument(
                "'from' doesn't support variable expansion, define alias stage instead")
        elif "$" in value:
            deferred = True
            continue
        _mount_field(values, key, value, item)
    return _mount_checked(values, deferred)


def _mount_flag(values: dict[str, Any], key: str, item: str) -> None:
    if key in ("readonly", "ro", "readwrite", "rw"):
        values["readonly"] = key in ("readonly", "ro")
    elif key == "required" and values.get("type") in ("secret", "ssh"):
        values["required"] = True
    elif key == "required":
        raise InvalidArgument(
            f"unexpected key 'required' for mount type '{values.get('type', 'bind')}'")
    else:
        raise InvalidArgument(f"invalid field '{item}' must be a key=value pair")


def _mount_field(values: dict[str, Any], key: str, value: str, item: str) -> None:
    names = {"src": "source", "dst": "target", "destination": "target", "from": "from_stage",
             "id": "cache_id", "source": "source", "target": "target"}
    if key in names:
        values[names[key]] = value
    elif key == "type":
        if value.lower() not in MOUNT_TYPES:
            raise InvalidArgument(with_suggestion(f'unsupported mount type "{value}"',
                                                  value, MOUNT_TYPES))
        values["type"] = value.lower()
    elif key in ("readonly", "ro", "readwrite", "rw", "required"):
        if key == "required" and values.get("type") not in ("secret", "ssh"):
            raise InvalidArgument(
                f"unexpected key 'required' for mount type '{values.get('type', 'bind')}'")
        flag = _go_bool(key, value)
        values["required" if key == "required" else "readonly"] = (
            flag if key in ("readonly", "ro", "required") else not flag)
    elif key == "sharing":
        if value.lower() not in SHARING_MODES:
            raise InvalidArgument(f'unsupported sharing value "{value}"')
        values["sharing"] = value.lower()
    elif key in ("mode", "uid", "gid"):
        values[key] = _mount_number(key, value)
    elif key == "size":
        values["size"] = _ram_in_bytes(value)
    elif key == "env":
        values["env"] = value
    else:
        raise InvalidArgument(with_suggestion(f"unexpected key '{key}' in '{item}'", key,
                                              _MOUNT_KEYS))


def _go_bool(key: str, value: str) -> bool:
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise InvalidArgument(f"invalid value for {key}: {value}")


def _mount_number(key: str, value: str) -> int:
    base = 8 if key == "mode" else 10
    if not re.fullmatch("[0-7]+" if base == 8 else "[0-9]+", value) or \
            int(value, base) >= 2 ** 32:
        raise InvalidArgument(f"invalid value {value} for {key}")
    return int(value, base)


def _ram_in_bytes(value: str) -> int:
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024 ** power)


def _mount_checked(values: dict[str, Any], deferred: bool) -> Mount:
    kind = str(values.get("type", "bind"))
    if "readonly" not in values:
        values["readonly"] = kind not in ("cache", "tmpfs")
    mount = Mount(**values)
    if deferred:
        return mount   # checked again once the values are expanded
    for name in ("mode", "uid", "gid"):
        if values.get(name) is not None and kind not in ("secret", "ssh", "cache"):
            raise InvalidArgument(f'{name} not allowed for "{kind}" type mounts')
    if mount.sharing and kind != "cache":
        raise InvalidArgument(f"invalid cache sharing set for {kind} mount")
    if kind == "secret":
        if mount.from_stage:
            raise InvalidArgument("secret mount should not have a from")
        if not (mount.source or mount.target or mount.cache_id or mount.env):
            raise InvalidArgument("invalid secret mount. one of source, target required")
        if mount.source and mount.cache_id:
            raise InvalidArgument("both source and id can't be set")
    if mount.size and kind != "tmpfs":
        raise InvalidArgument(f"unexpected key 'size' for mount type '{kind}'")
    return mount
