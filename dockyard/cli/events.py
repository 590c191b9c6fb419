"""``events``: stream the daemon's events in docker's line format."""
from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import TemplateError
from dockyard.cli.gotemplate import Template
from dockyard.cli.ps import parse_filters
from dockyard.cli.units import rfc3339_nano_fixed, timestamp_arg


def event_line(event: dict[str, Any]) -> str:
    """docker's printOutput: ``<time> <type> <action> <id> (k=v, …)``."""
    parts = []
    if event.get("timeNano"):
        parts.append(rfc3339_nano_fixed(int(event["timeNano"])) + " ")
    elif event.get("time"):
        parts.append(rfc3339_nano_fixed(int(event["time"]) * 1_000_000_000) + " ")
    actor = event.get("Actor") or {}
    parts.append(f"{event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}")
    attrs = actor.get("Attributes") or {}
    if attrs:
        parts.append(" (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")")
    return "".join(parts)


MESSAGE_FIELDS = ("status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                  "timeNano")


OMIT_EMPTY = ("status", "id", "from")


def go_order(event: dict[str, Any]) -> dict[str, Any]:
    """events.Message field order (what docker's typed ``{{json .}}`` prints)."""
    ordered = {k: event[k] for k in MESSAGE_FIELDS
               if k in event and not (k in OMIT_EMPTY and not event[k])}
    ordered.update({k: v for k, v in event.items() if k not in MESSAGE_FIELDS})
    return ordered


def _build(p: FlagParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output based on conditions provided")
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("--since", default="", help="Show all events created since timestamp")
    p.add_argument("--until", default="", help="Stream events until this timestamp")


def _stamp(value: str) -> str | None:
    if not value:
        return None
    try:
        return timestamp_arg(value)
    except ValueError as exc:
        raise StatusError(str(exc)) from None


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        filters = parse_filters(ns.filter)
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    template = None
    if ns.format:
        try:
            template = Template("{{json .}}" if ns.format == "json" else ns.format)
        except TemplateError as exc:
            raise StatusError(f"template parsing error: {exc}") from None
    query = {"since": _stamp(ns.since), "until": _stamp(ns.until), "filters": filters or None}
    with ctx.client.stream("GET", "/events", query) as resp:
        for event in resp.iter_json():
            ctx.out(template.execute(go_order(event)) if template else event_line(event))
    return 0


EVENTS = Command("events", "[OPTIONS]", "Get real time events from the server", _build, _run)
COMMANDS = [EVENTS]
