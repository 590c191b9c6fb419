"""The ``dockyard`` client: global options, command lookup, and docker's exit-code rules."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.cli import (
    attach,
    build,
    containerinfo,
    containers,
    cp,
    diskusage,
    events,
    exec,
    images,
    info,
    inspect,
    logs,
    ps,
    registry,
    system,
    transfer,
)
from dockyard.cli import run as run_mod
from dockyard.cli import networks, nodes, secrets, services, stacks, swarm, volumes
from dockyard.cli.command import (
    PROG,
    Command,
    FlagParser,
    StatusError,
    UsageError,
    check_nargs,
    help_text,
    parse,
    usage_tail,
)
from dockyard.cli.context import Context
from dockyard.cli.gotemplate import TemplateError
from dockyard.client.errors import APIError, ClientError
from dockyard.client.streams import SystemError_
from dockyard.client.transport import default_host, tls_from_env

TOP: dict[str, Command] = {c.name: c for mod in (
    run_mod, containers, attach, exec, logs, containerinfo, inspect, images, registry,
    transfer, cp, system, info, events, build) for c in mod.COMMANDS}
TOP["ps"] = ps.PS
TOP["compose"] = __import__("dockyard.cli.compose", fromlist=["COMPOSE"]).COMPOSE

GROUPS: dict[str, tuple[str, dict[str, Command]]] = {
    "container": ("Manage containers", {
        **{n: TOP[n] for n in ("attach", "commit", "cp", "create", "diff", "exec", "export",
                               "kill", "logs", "pause", "port", "rename", "restart", "rm",
                               "run", "start", "stop", "top", "unpause", "wait")},
        "inspect": inspect.CONTAINER_INSPECT, "ls": ps.PS, "list": ps.PS, "ps": ps.PS,
        "prune": containers.PRUNE}),
    "image": ("Manage images", {
        **{n: TOP[n] for n in ("build", "history", "import", "load", "pull", "push", "save",
                               "tag")},
        "inspect": inspect.IMAGE_INSPECT, "ls": images.IMAGES, "list": images.IMAGES,
        "rm": images.RMI, "remove": images.RMI, "prune": images.PRUNE}),
    "network": ("Manage networks", networks.GROUP),
    "config": ("Manage Swarm configs", secrets.CONFIG),
    "node": ("Manage Swarm nodes", nodes.NODE),
    "secret": ("Manage Swarm secrets", secrets.SECRET),
    "service": ("Manage Swarm services", services.SERVICE),
    "stack": ("Manage Swarm stacks", stacks.STACK),
    "swarm": ("Manage Swarm", swarm.SWARM),
    "system": ("Manage dockyard", {"df": diskusage.DF, "prune": diskusage.PRUNE,
                                   "info": TOP["info"], "events": TOP["events"]}),
    "volume": ("Manage volumes", volumes.GROUP),
}


@dataclass
class GlobalOptions:
    hosts: list[str] = field(default_factory=list)
    tls: bool = False
    tlsverify: bool = False
    cert_files: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    show_version: bool = False
    show_help: bool = False


_VALUED = {"-H": "host", "--host": "host", "-l": "log-level", "--log-level": "log-level",
           "--tlscacert": "tlscacert", "--tlscert": "tlscert", "--tlskey": "tlskey",
           "--config": "config", "-c": "context", "--context": "context"}
_FLAGS = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tlsverify",
          "-v": "version", "--version": "version", "-h": "help", "--help": "help"}


def parse_globals(argv: list[str]) -> tuple[GlobalOptions, list[str]]:
    """docker's persistent flags, which precede the command name."""
    opts = GlobalOptions()
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if not eq and name.startswith("-H") and len(name) > 2:
            name, value, eq = "-H", name[2:], "="
        if name in _VALUED:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i]
            key = _VALUED[name]
            if key == "host":
                opts.hosts.append(value)
            elif key == "config":
                opts.config = value
            elif key.startswith("tls"):
                opts.cert_files[key] = value
        elif name in _FLAGS:
            key = _FLAGS[name]
            setattr(opts, {"version": "show_version", "help": "show_help"}.get(key, key), True) \
                if key in ("version", "help", "tls", "tlsverify") else None
        elif arg == "--":
            i += 1
            break
        else:
            raise UsageError(f"unknown flag: {arg}" if arg.startswith("--")
                             else f"unknown shorthand flag: '{arg[1:2]}' in {arg}")
        i += 1
    return opts, argv[i:]


def make_context(opts: GlobalOptions, env: Mapping[str, str]) -> Context:
    if len(opts.hosts) > 1:
        raise StatusError("Specify only one -H")
    host = opts.hosts[0] if opts.hosts else default_host(env)
    cert_dir = os.path.dirname(opts.cert_files["tlscacert"]) \
        if "tlscacert" in opts.cert_files else None
    tls = tls_from_env(env, opts.tls or bool(opts.cert_files), opts.tlsverify, cert_dir)
    if tls is not None and opts.cert_files:
        from dataclasses import replace
        tls = replace(tls, ca_cert=opts.cert_files.get("tlscacert", tls.ca_cert),
                      cert=opts.cert_files.get("tlscert", tls.cert),
                      key=opts.cert_files.get("tlskey", tls.key))
    return Context(host=host, tls=tls, env=dict(env),
                   config_dir=Path(opts.config) if opts.config else None)


def main_help() -> str:
    lines = [f"Usage:  {PROG} [OPTIONS] COMMAND", "",
             "A Docker-compatible container engine", "", "Management Commands:"]
    lines += [f"  {name:<11} {summary}" for name, (summary, _) in GROUPS.items()]
    lines += ["", "Commands:"]
    lines += [f"  {name:<11} {cmd.summary}" for name, cmd in sorted(TOP.items())]
    lines += ["", "Global Options:",
              "  -H, --host string      Daemon socket to connect to",
              "      --config string    Location of client config files",
              "      --tls              Use TLS; implied by --tlsverify",
              "      --tlsverify        Use TLS and verify the remote",
              "  -v, --version          Print version information and quit", "",
              f"Run '{PROG} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def group_help(group: str) -> str:
    summary, commands = GROUPS[group]
    lines = [f"Usage:  {PROG} {group} COMMAND", "", summary, "", "Commands:"]
    lines += [f"  {name:<11} {cmd.summary}" for name, cmd in sorted(commands.items())]
    lines += ["", f"Run '{PROG} {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def _lookup(argv: list[str]) -> tuple[Command | None, str, list[str]]:
    name = argv[0]
    if name in GROUPS:
        if len(argv) < 2 or argv[1].startswith("-"):
            return None, f"{PROG} {name}", argv[1:]
        sub = GROUPS[name][1].get(argv[1])
        if sub is None:
            raise StatusError(f"{PROG}: unknown command: {PROG} {name} {argv[1]}\n\n"
                              f"Run '{PROG} {name} --help' for more information")
        return sub, f"{PROG} {name} {argv[1]}", argv[2:]
    cmd = TOP.get(name)
    if cmd is None:
        raise StatusError(f"{PROG}: unknown command: {PROG} {name}\n\n"
                          f"Run '{PROG} --help' for more information")
    return cmd, f"{PROG} {name}", argv[1:]


def dispatch(ctx: Context, cmd: Command, path: str, argv: list[str]) -> int:
    parser = FlagParser(path)
    cmd.build(parser)
    try:
        ns = parse(cmd, parser, argv)
        if ns.help:
            ctx.stdout.write(help_text(cmd, path, parser))
            return 0
        check_nargs(cmd, path, ns.args)
    except UsageError as exc:
        tail = usage_tail(cmd, path)
        if "requires at least" in exc.message:
            tail = tail.replace("\n\nRun '", "\n\nSee '")
        ctx.err(exc.message + tail)
        return exc.code
    return cmd.run(ctx, ns)


def execute(ctx: Context, argv: list[str]) -> int:
    """Run one command against ``ctx``; every failure becomes docker's message and status."""
    try:
        cmd, path, rest = _lookup(argv)
        if cmd is None:
            ctx.stdout.write(group_help(argv[0]))
            return 0
        return dispatch(ctx, cmd, path, rest)
    except StatusError as exc:
        if exc.message:
            ctx.err(exc.message)
        return exc.code or 1
    except APIError as exc:
        ctx.err(f"Error response from daemon: {exc.message}")
        return 1
    except (ClientError, SystemError_, TemplateError) as exc:
        ctx.err(str(exc))
        return 1
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        ctx.err(str(exc))
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run(args: list[str], env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        opts, rest = parse_globals(args)
    except UsageError as exc:
        sys.stderr.write(f"{exc.message}\n\nUsage:  {PROG} [OPTIONS] COMMAND\n\n"
                         f"Run '{PROG} --help' for more information\n")
        return 125
    if opts.show_version:
        from dockyard.cli.system import client_version
        print(f"Dockyard version {client_version()}")
        return 0
    if opts.show_help or not rest:
        sys.stdout.write(main_help())
        return 0
    try:
        ctx = make_context(opts, env)
    except (StatusError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return execute(ctx, rest)
