"""Flag types and list formats the ``network`` and ``volume`` commands share: docker's
FilterOpt, label and ``key=value`` map flags, string slices, ``--format`` selection."""
from __future__ import annotations

import argparse
import json
import re

from dockyard.cli.command import FlagParser, invalid
from dockyard.cli.context import Context
from dockyard.cli.ps import parse_filters


def filter_opt(value: str) -> str:
    """docker's FilterOpt: ``name=value``, name lower-cased, both sides trimmed."""
    if value and "=" not in value:
        raise invalid(value, "bad format of filter (expected name=value)")
    name, _, val = value.partition("=")
    return f"{name.strip().lower()}={val.strip()}" if value else ""


def label_opt(value: str) -> str:
    if not value.partition("=")[0].strip():
        raise invalid(value, f"invalid label '{value}': empty name")
    return value


def strings_opt(value: str) -> list[str]:
    """pflag's StringSlice: comma-separated values."""
    return [v for v in value.split(",")] if value else []


def kv_map(items: list[str] | None) -> dict[str, str]:
    """ConvertKVStringsToMap / MapOpts: ``k=v`` (``k`` alone → empty value)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        out[key] = value
    return dict(sorted(out.items()))  # the order Go's encoder sends a map in


def flat(groups: list[list[str]] | None) -> list[str]:
    return [v for group in groups or [] for v in group]


def filters_of(items: list[str]) -> dict[str, dict[str, bool]]:
    return parse_filters([i for i in items if i])


def add_filter(p: FlagParser, *names: str, help: str) -> None:
    p.add_argument(*names, dest="filter", action="append", default=[], type=filter_opt,
                   metavar="filter", help=help)


def labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def configured_format(ctx: Context, key: str) -> str:
    """A ``networksFormat``/``volumesFormat`` from the client config file, if any."""
    try:
        value = json.loads(ctx.config_path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def list_format(ctx: Context, ns: argparse.Namespace, key: str,
                formats: tuple[str, str, str, str]) -> str:
    """docker's NewNetworkFormat/NewVolumeFormat: ``-q`` only shortens the table."""
    table, quiet, raw, raw_quiet = formats
    fmt = ns.format or ""
    if not fmt:
        fmt = configured_format(ctx, key) if not ns.quiet else ""
        fmt = fmt or "table"
    if fmt == "table":
        return quiet if ns.quiet else table
    if fmt == "raw":
        return raw_quiet if ns.quiet else raw
    return str(fmt)


def go_time_text(stamp: str) -> str:
    """Go's Time.String of an RFC 3339 API timestamp: ``2024-01-02 03:04:05.5 +0000 UTC``."""
    m = re.match(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$",
                 stamp or "")
    if not m:
        return "0001-01-01 00:00:00 +0000 UTC"
    frac = (m.group(3) or "")[:9].rstrip("0")
    zone = m.group(4)
    offset = "+0000 UTC" if zone == "Z" else f"{zone[:3]}{zone[4:]} {zone[:3]}{zone[4:]}"
    return f"{m.group(1)} {m.group(2)}{'.' + frac if frac else ''} {offset}"
