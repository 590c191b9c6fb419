"""``dockyard compose``: the compose config pipeline, planned and converged through the API.

    dockyard compose [-f FILE]... [-p NAME] [--project-directory DIR] [--env-file FILE]
                     [--profile P] COMMAND [ARGS]

Each module of this package contributes a ``COMMANDS`` tuple of subcommands.
"""
from __future__ import annotations

import argparse

from dockyard.cli.command import (
    Command,
    FlagParser,
    StatusError,
    UsageError,
    check_nargs,
    help_text,
    parse,
    usage_tail,
)
from dockyard.cli.compose import listing, manage, ops, run, up
from dockyard.cli.compose.progress import MODES
from dockyard.cli.context import Context
from dockyard.errors import DockyardError

PATH = "dockyard compose"

SUBCOMMANDS: dict[str, Command] = {c.name: c for mod in (up, manage, run, ops, listing)
                                   for c in mod.COMMANDS}


# -- the `compose` command itself ----------------------------------------------------------------
def _global_flags(p: FlagParser) -> None:
    p.add_argument("-f", "--file", action="append", default=None, help="Compose configuration "
                   "files")
    p.add_argument("-p", "--project-name", default=None, help="Project name")
    p.add_argument("--project-directory", default=None, help="Specify an alternate working "
                   "directory (default: the path of the, first specified, Compose file)")
    p.add_argument("--env-file", action="append", default=None, help="Specify an alternate "
                   "environment file")
    p.add_argument("--profile", action="append", default=None, help="Specify a profile to "
                   "enable")
    p.add_argument("--progress", default=None, help="Set type of progress output (auto, tty, "
                   "plain, quiet)")


def _help(cmd_path: str) -> str:
    lines = [f"Usage:  {cmd_path} [OPTIONS] COMMAND", "",
             "Define and run multi-container applications with Docker", "", "Commands:"]
    lines += [f"  {n:<11} {c.summary}" for n, c in sorted(SUBCOMMANDS.items())]
    return "\n".join(lines) + "\n"


def _compose(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.args:
        ctx.out(_help(PATH), end="")
        return 0
    if ns.progress is not None and ns.progress not in (*MODES, "none"):
        raise StatusError(f"unsupported --progress value \"{ns.progress}\"")
    name, rest = ns.args[0], ns.args[1:]
    sub = SUBCOMMANDS.get(name)
    if sub is None:
        raise StatusError(f"unknown docker command: \"compose {name}\"")
    path = f"{PATH} {name}"
    parser = FlagParser(path)
    sub.build(parser)
    try:
        sub_ns = parse(sub, parser, rest)
        if sub_ns.help:
            ctx.out(help_text(sub, path, parser), end="")
            return 0
        check_nargs(sub, path, sub_ns.args)
    except UsageError as exc:
        ctx.err(exc.message + usage_tail(sub, path))
        return exc.code
    for key in ("file", "project_name", "project_directory", "env_file", "profile",
                "progress"):
        setattr(sub_ns, key, getattr(ns, key))
    try:
        return sub.run(ctx, sub_ns)
    except DockyardError as exc:
        ctx.err(str(exc))
        return 1


COMPOSE = Command("compose", "[OPTIONS] COMMAND", "Docker Compose", _global_flags, _compose,
                  (0, None), interspersed=False)
COMMANDS = [COMPOSE]

__all__ = ["COMMANDS", "COMPOSE", "SUBCOMMANDS"]
