"""One syntax-tree :class:`~dockyard.builder.parser.Node` → its typed instruction(s), checked the
way buildkit checks each keyword (flags, argument counts, stage names, heredoc sources…).

:func:`parse_node` is the entry point (re-exported by :mod:`dockyard.builder.instructions`);
errors are :class:`~dockyard.builder.parser.DockerfileParseError` with Docker's texts, e.g.
``dockerfile parse error on line 3: unknown instruction: FOO``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dockyard.builder.bflags import (
    BOOL,
    STRING,
    STRINGS,
    Flags,
    flag_interval,
    flag_retries,
    parse_flags,
    parse_mount,
    with_suggestion,
)
from dockyard.builder.commands import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    FromInstruction,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from dockyard.builder.parser import (
    DockerfileParseError,
    Heredoc,
    Node,
    chomp_heredoc,
    parse_heredoc,
)
from dockyard.builder.shell import SPACE, go_quote
from dockyard.errors import InvalidArgument

_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")
_RESERVED_STAGE_NAMES = ("context", "scratch")
_ONBUILD_PREFIX = re.compile(r"(?i)^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*")
_NETWORK_MODES = ("default", "none", "host")


def parse_node(node: Node) -> tuple[Instruction, ...]:
    """The typed instruction(s) of one node, or DockerfileParseError."""
    try:
        parsed = _PARSERS.get(node.keyword, _unknown)(_Req(node))
    except DockerfileParseError:
        raise
    except InvalidArgument as exc:
        raise DockerfileParseError(exc.message, node.start_line, node.end_line) from None
    return parsed if isinstance(parsed, tuple) else (parsed,)


@dataclass(frozen=True)
class _Req:
    node: Node

    @property
    def args(self) -> tuple[str, ...]:
        sub = self.node.sub
        return self.node.args + ((sub.value,) + _Req(sub).args if sub is not None else ())

    @property
    def loc(self) -> dict[str, Any]:
        return {"original": self.node.original, "start_line": self.node.start_line,
                "end_line": self.node.end_line}

    def flags(self, accepted: Mapping[str, str] | None = None) -> Flags:
        return parse_flags(self.node.flags, accepted or {})

    def command(self) -> tuple[str, ...]:
        """The exec-form arguments, or the shell form joined into one string."""
        if self.node.json or not self.args:
            return self.args
        return (" ".join(self.args),)


def _at_least_one(req: _Req, keyword: str) -> None:
    if not req.args:
        raise InvalidArgument(f"{keyword} requires at least one argument")


def _exactly_one(req: _Req, keyword: str) -> str:
    if len(req.args) != 1:
        raise InvalidArgument(f"{keyword} requires exactly one argument")
    return req.args[0]


def _from(req: _Req) -> FromInstruction:
    args = req.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        quoted = go_quote(args[2])
        if not _STAGE_NAME.fullmatch(name):
            raise InvalidArgument(f"invalid name for build stage: {quoted}, "
                                  "name can't start with a number or contain symbols")
        if name in _RESERVED_STAGE_NAMES:
            raise InvalidArgument(f"invalid name for build stage: {quoted}, name is reserved")
    elif len(args) != 1:
        raise InvalidArgument("FROM requires either one or three arguments")
    flags = req.flags({"platform": STRING})
    return FromInstruction(args[0], name, flags.get("platform"), **req.loc)


def _pairs(req: _Req, keyword: str) -> tuple[tuple[str, str], ...]:
    req.flags()
    args = req.args
    if not args:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    if len(args) % 3:
        raise InvalidArgument(f"Bad input to {keyword}, too many arguments")
    pairs = tuple((args[i], args[i + 1]) for i in range(0, len(args), 3))
    if any(not name for name, _ in pairs):
        raise InvalidArgument(f"{keyword} names can not be blank")
    return pairs


def _arg(req: _Req) -> tuple[Arg, ...]:
    _at_least_one(req, "ARG")
    out = []
    for word in req.args:
        name, has_value, value = word.partition("=")
        if has_value and not name:
            raise InvalidArgument("ARG names can not be blank")
        out.append(Arg(name, value if has_value else None, **req.loc))
    return tuple(out)


def _sources(req: _Req, keyword: str) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    *sources, dest = req.args
    if _heredoc(dest) is not None:
        raise InvalidArgument(f"{keyword} cannot accept a heredoc as a destination")
    bodies = {doc.name: doc.content for doc in req.node.heredocs}
    paths: list[str] = []
    docs: list[Heredoc] = []
    for source in sources:
        doc = _heredoc(source)
        if doc is None:
            paths.append(source)
            continue
        content = bodies.get(doc.name, "")
        docs.append(replace(doc, content=chomp_heredoc(content) if doc.chomp else content))
    return tuple(paths), dest, tuple(docs)


def _heredoc(word: str) -> Heredoc | None:
    try:
        return parse_heredoc(word)
    except InvalidArgument:
        return None


def _transfer_flags(req: _Req, keyword: str, extra: Mapping[str, str]) -> Flags:
    if len(req.args) < 2:
        raise InvalidArgument(f"{keyword} requires at least two arguments, but only one was "
                              "provided. Destination could not be determined")
    return req.flags({"chown": STRING, "chmod": STRING, "link": BOOL, "exclude": STRINGS,
                      **extra})


def _copy(req: _Req) -> Copy:
    flags = _transfer_flags(req, "COPY", {"from": STRING, "parents": BOOL})
    sources, dest, docs = _sources(req, "COPY")
    return Copy(sources, dest, chown=flags.get("chown"), chmod=flags.get("chmod"),
                link=flags.enabled("link"), excludes=flags.all("exclude"), heredocs=docs,
                from_stage=flags.get("from"), parents=flags.enabled("parents"), **req.loc)


def _add(req: _Req) -> Add:
    flags = _transfer_flags(req, "ADD", {"keep-git-dir": BOOL, "checksum": STRING})
    sources, dest, docs = _sources(req, "ADD")
    return Add(sources, dest, chown=flags.get("chown"), chmod=flags.get("chmod"),
               link=flags.enabled("link"), excludes=flags.all("exclude"), heredocs=docs,
               keep_git_dir=flags.enabled("keep-git-dir"), checksum=flags.get("checksum"),
               **req.loc)


def _run(req: _Req) -> Run:
    flags = req.flags({"mount": STRINGS, "network": STRING})
    specs = flags.all("mount")
    mounts = tuple(parse_mount(spec) for spec in specs)
    network = flags.get("network", "default")
    if network not in _NETWORK_MODES:
        raise InvalidArgument(f"network mode {go_quote(network)} not supported")
    return Run(req.command(), not req.node.json, req.node.heredocs, mounts=mounts,
               mount_specs=specs, network=network, **req.loc)


def _shell_form(kind: type[Cmd | Entrypoint]) -> Callable[[_Req], Instruction]:
    def parse_command(req: _Req) -> Instruction:
        req.flags()
        return kind(req.command(), not req.node.json, req.node.heredocs, **req.loc)
    return parse_command


def _healthcheck(req: _Req) -> Healthcheck:
    _at_least_one(req, "HEALTHCHECK")
    kind, rest = req.args[0].upper(), req.args[1:]
    if kind == "NONE":
        if rest:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(("NONE",), **req.loc)
    flags = req.flags({name: STRING for name in
                       ("interval", "timeout", "start-period", "start-interval", "retries")})
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    command = rest if req.node.json or not rest else (" ".join(rest),)
    if not command:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    test = ("CMD" if req.node.json else "CMD-SHELL",) + command
    return Healthcheck(test, interval=flag_interval(flags, "interval"),
                       timeout=flag_interval(flags, "timeout"),
                       start_period=flag_interval(flags, "start-period"),
                       start_interval=flag_interval(flags, "start-interval"),
                       retries=flag_retries(flags.get("retries")), **req.loc)


def _onbuild(req: _Req) -> Onbuild:
    _at_least_one(req, "ONBUILD")
    req.flags()
    trigger = req.args[0].strip(SPACE).upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    for doc in req.node.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(expression, **req.loc)


def _expose(req: _Req) -> Expose:
    _at_least_one(req, "EXPOSE")
    req.flags()
    return Expose(tuple(sorted(req.args)), **req.loc)


def _volume(req: _Req) -> Volume:
    _at_least_one(req, "VOLUME")
    req.flags()
    paths = tuple(path.strip(SPACE) for path in req.args)
    if "" in paths:
        raise InvalidArgument("VOLUME specified can not be an empty string")
    return Volume(paths, **req.loc)


def _shell(req: _Req) -> Shell:
    req.flags()
    command = req.command()
    if not command:
        raise InvalidArgument("SHELL requires at least one argument")
    if not req.node.json:
        raise InvalidArgument("SHELL requires the arguments to be in JSON form")
    return Shell(command, **req.loc)


def _one_value(kind: type[Workdir | User | Maintainer],
               keyword: str) -> Callable[[_Req], Instruction]:
    def parse_one(req: _Req) -> Instruction:
        value = _exactly_one(req, keyword)
        req.flags()
        return kind(value, **req.loc)
    return parse_one


def _stopsignal(req: _Req) -> StopSignal:
    return StopSignal(_exactly_one(req, "STOPSIGNAL"), **req.loc)   # flags are not checked


def _unknown(req: _Req) -> Instruction:
    keyword = req.node.value.upper()
    raise InvalidArgument(with_suggestion(f"unknown instruction: {keyword}", keyword,
                                          [name.upper() for name in _PARSERS]))


_PARSERS: dict[str, Callable[[_Req], Instruction | tuple[Instruction, ...]]] = {
    "add": _add,
    "arg": _arg,
    "cmd": _shell_form(Cmd),
    "copy": _copy,
    "entrypoint": _shell_form(Entrypoint),
    "env": lambda req: Env(_pairs(req, "ENV"), **req.loc),
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": lambda req: Label(_pairs(req, "LABEL"), **req.loc),
    "maintainer": _one_value(Maintainer, "MAINTAINER"),
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _one_value(User, "USER"),
    "volume": _volume,
    "workdir": _one_value(Workdir, "WORKDIR"),
}
