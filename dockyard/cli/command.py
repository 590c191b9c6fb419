"""Command definitions and docker-style (pflag) argument handling on top of argparse."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from dockyard.cli.context import Context

PROG = "dockyard"


class UsageError(Exception):
    """Bad command line; ``code`` is 125 for flag errors and 1 for argument counts."""

    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StatusError(Exception):
    """Exit with ``code`` after printing ``message`` (if any) to stderr."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def invalid(value: str, reason: str) -> argparse.ArgumentTypeError:
    """A type-conversion failure, reported like pflag: ``invalid argument "x" for …``."""
    return argparse.ArgumentTypeError(f"\x00{value}\x00{reason}")


class FlagParser(argparse.ArgumentParser):
    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)
        self.add_argument("--help", action="store_true", help="Print usage")

    def error(self, message: str) -> NoReturn:
        raise UsageError(_translate(message, getattr(self, "argv", [])))

    def parse_flags(self, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
        self.argv = argv
        return self.parse_known_intermixed_args(argv)

    def bool_dests(self) -> dict[str, str]:
        """Long and short option strings of boolean flags → their dest."""
        out: dict[str, str] = {}
        for action in self._actions:
            if action.nargs == 0:
                for opt in action.option_strings:
                    out[opt] = action.dest
        return out

    def takes_value(self, opt: str) -> bool | None:
        action = self._option_string_actions.get(opt)
        return None if action is None else action.nargs != 0


def _flag_names(spec: str) -> str:
    return ", ".join(spec.split("/"))


def _translate(message: str, argv: list[str]) -> str:
    """argparse's wording → pflag's."""
    if message.startswith("argument "):
        spec, _, rest = message[len("argument "):].partition(": ")
        if rest.startswith("expected one argument"):
            spellings = spec.split("/")
            used = [a for a in argv if a in spellings]
            longest = used[-1] if used else spellings[-1]
            if longest.startswith("--"):
                return f"flag needs an argument: {longest}"
            return f"flag needs an argument: '{longest[1:]}' in {longest}"
        if "\x00" in rest:
            _, value, reason = rest.split("\x00", 2)
            return f'invalid argument "{value}" for "{_flag_names(spec)}" flag: {reason}'
        return f"{_flag_names(spec)}: {rest}"
    return message


def unknown_flag(arg: str) -> UsageError:
    if arg.startswith("--"):
        return UsageError(f"unknown flag: {arg.split('=', 1)[0]}")
    return UsageError(f"unknown shorthand flag: '{arg[1:2]}' in {arg}")


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    build: Callable[[FlagParser], None]
    run: Callable[[Context, argparse.Namespace], int]
    nargs: tuple[int, int | None] = (0, 0)
    interspersed: bool = True
    aliases: tuple[str, ...] = ()


def split_interspersed(parser: FlagParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """For ``run``/``exec``: flags end at the first positional (pflag SetInterspersed false)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i], argv[i + 1:]
        if not arg.startswith("-") or arg == "-":
            return argv[:i], argv[i:]
        if arg.startswith("--"):
            if "=" not in arg and parser.takes_value(arg):
                i += 1
        else:
            for pos in range(1, len(arg)):
                needs = parser.takes_value("-" + arg[pos])
                if needs is None:
                    raise unknown_flag("-" + arg[pos:] if pos > 1 else arg)
                if needs:
                    if pos == len(arg) - 1:
                        i += 1
                    break
        i += 1
    return argv, []


def _explicit_bools(parser: FlagParser, argv: list[str]) -> tuple[list[str], dict[str, bool]]:
    """pflag accepts ``--rm=false``; argparse booleans take no value, so set them afterwards."""
    bools = parser.bool_dests()
    rest: list[str] = []
    explicit: dict[str, bool] = {}
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and name in bools and name.startswith("-"):
            if value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise UsageError(f'invalid argument "{value}" for "{name}" flag: '
                                 f'strconv.ParseBool: parsing "{value}": invalid syntax')
            explicit[bools[name]] = value.lower() in ("true", "1", "t")
            continue
        rest.append(arg)
    return rest, explicit


def parse(cmd: Command, parser: FlagParser, argv: list[str]) -> argparse.Namespace:
    """Flags and positionals (``ns.args``) the way the docker CLI splits them."""
    if argv and argv[0] == "--" and not cmd.interspersed:
        argv = argv[1:]
    if cmd.interspersed:
        flags, positionals = _split_dashdash(argv)
    else:
        flags, positionals = split_interspersed(parser, argv)
    flags, explicit = _explicit_bools(parser, flags)
    ns, extra = parser.parse_flags(flags)
    for arg in extra:
        if arg.startswith("-") and arg != "-":
            raise unknown_flag(arg)
    ns.args = list(getattr(ns, "args", []) or []) + [a for a in extra if not (
        a.startswith("-") and a != "-")] + positionals
    for dest, value in explicit.items():
        setattr(ns, dest, value)
    return ns


def _split_dashdash(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def check_nargs(cmd: Command, path: str, args: list[str]) -> None:
    low, high = cmd.nargs
    n = len(args)
    if low <= n and (high is None or n <= high):
        return
    if high == 0:
        msg = "accepts no arguments"
    elif high is None:
        msg = f"requires at least {low} argument{'s' if low != 1 else ''}"
    elif low == high:
        msg = f"requires {low} argument{'s' if low != 1 else ''}"
    elif low == 0:
        msg = f"requires at most {high} argument{'s' if high != 1 else ''}"
    else:
        msg = f"requires at least {low} and at most {high} arguments"
    raise UsageError(f"{PROG}: '{path}' {msg}", code=1)


def help_text(cmd: Command, path: str, parser: FlagParser) -> str:
    lines = [f"Usage:  {path} {cmd.usage}".rstrip(), "", cmd.summary, ""]
    opts: list[tuple[str, str]] = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(action.option_strings)
        if action.option_strings[0].startswith("--"):
            names = "    " + names
        if action.nargs != 0:
            names += f" {action.metavar or _kind(action)}"
        opts.append((names, action.help or ""))
    if opts:
        width = max(len(n) for n, _ in opts) + 3
        lines.append("Options:")
        lines.extend(f"  {n.ljust(width)}{h}".rstrip() for n, h in sorted(
            opts, key=lambda o: o[0].split("--", 1)[-1].lower()))
    return "\n".join(lines) + "\n"


_TYPE_NAMES = {"int": "int", "int64": "int", "mem_bytes": "bytes", "mem_swap_bytes": "bytes",
               "duration_ns": "duration", "nano_cpus": "decimal"}


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse._AppendAction):
        return "list"
    return _TYPE_NAMES.get(getattr(action.type, "__name__", ""), "string")


def usage_tail(cmd: Command, path: str) -> str:
    return f"\n\nUsage:  {path} {cmd.usage}\n\nRun '{path} --help' for more information"
