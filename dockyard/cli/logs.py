"""``logs``: fetch (and follow) a container's output."""
from __future__ import annotations

import argparse

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.units import timestamp_arg
from dockyard.client.streams import copy_output


def _build(p: FlagParser) -> None:
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("--since", default="",
                   help="Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative "
                        "(e.g. \"42m\" for 42 minutes)")
    p.add_argument("-n", "--tail", default="all",
                   help="Number of lines to show from the end of the logs (default \"all\")")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--until", default="",
                   help="Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or "
                        "relative (e.g. \"42m\" for 42 minutes)")


def _time(value: str, flag: str) -> str | None:
    if not value:
        return None
    try:
        return timestamp_arg(value)
    except ValueError:
        raise StatusError(f'invalid value for "{flag}": failed to parse value as time or '
                          f'duration: "{value}"') from None


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    info = ctx.client.get(f"/containers/{ns.args[0]}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    query = {"stdout": True, "stderr": True, "follow": ns.follow or None,
             "timestamps": ns.timestamps or None, "details": ns.details or None,
             "tail": ns.tail, "since": _time(ns.since, "since"),
             "until": _time(ns.until, "until")}
    with ctx.client.stream("GET", f"/containers/{info['Id']}/logs", query) as resp:
        copy_output(resp, tty, ctx.bin_stdout, ctx.bin_stderr)
    return 0


LOGS = Command("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container", _build, _run,
               (1, 1))
COMMANDS = [LOGS]
