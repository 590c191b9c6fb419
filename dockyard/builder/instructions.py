"""Typed Dockerfile instructions from the syntax tree, checked the way buildkit checks them.

The instruction types live in :mod:`dockyard.builder.commands` and are re-exported here,
as is :func:`parse_node` (from :mod:`dockyard.builder.node_parsers`), which turns one
:class:`~dockyard.builder.parser.Node` into instructions (one, or several for ``ARG a b``);
:func:`parse_stages` turns a whole Dockerfile into its meta args (the ``ARG``\\ s before
the first ``FROM``) and its stages. Errors are
:class:`~dockyard.builder.parser.DockerfileParseError` (an InvalidArgument) with Docker's
texts: ``dockerfile parse error on line 3: unknown instruction: FOO``.

Values stay as written: variables in ``ENV``/``LABEL``/``ARG`` values, paths, ``FROM``
images and so on are expanded by the builder while it runs the stage (it knows the
environment), with :mod:`dockyard.builder.shell`. :func:`expand_from` does that for
``FROM`` with the meta args and ``--build-arg`` values.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from dockyard.builder.bflags import Mount
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
from dockyard.builder.node_parsers import parse_node
from dockyard.builder.parser import (
    DockerfileParseError,
    Heredoc,
    ParseResult,
    ParseWarning,
    parse,
)
from dockyard.builder.shell import SPACE, Lexer, go_quote
from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class Stage:
    """A ``FROM`` and the instructions up to the next one."""

    name: str                              # lower-case ``AS`` name, "" when unnamed
    base: str                              # the image as written (may hold variables)
    platform: str = ""
    instructions: tuple[Instruction, ...] = ()
    original: str = ""
    start_line: int = 0


@dataclass(frozen=True)
class Dockerfile:
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    escape: str = "\\"
    directives: tuple[tuple[str, str], ...] = ()
    warnings: tuple[ParseWarning, ...] = ()

    def stage(self, target: str) -> Stage:
        """The stage named ``target`` (or by index), NotFound-like InvalidArgument if none."""
        for stage in self.stages:
            if stage.name and stage.name == target.lower():
                return stage
        if target.isdigit() and int(target) < len(self.stages):
            return self.stages[int(target)]
        raise InvalidArgument(f"target stage {go_quote(target)} could not be found")

    def expand_from(self, stage: Stage, build_args: Mapping[str, str | None]) -> str:
        return expand_from(stage, build_args, self.meta_args, self.escape)



def parse_stages(source: str | ParseResult) -> Dockerfile:
    """A Dockerfile (text or parsed tree) as meta args and stages."""
    tree = parse(source) if isinstance(source, str) else source
    meta_args: list[Arg] = []
    stages: list[Stage] = []
    steps: list[list[Instruction]] = []
    for node in tree.children:
        for item in parse_node(node):
            if isinstance(item, FromInstruction):
                stages.append(Stage(item.stage_name, item.image, item.platform,
                                    original=item.original.strip(SPACE),
                                    start_line=item.start_line))
                steps.append([])
            elif not stages and isinstance(item, Arg):
                meta_args.append(item)
            elif not stages:
                raise DockerfileParseError("no build stage in current context",
                                           node.start_line, node.end_line)
            else:
                steps[-1].append(item)
    return Dockerfile(tuple(meta_args),
                      tuple(replace(s, instructions=tuple(i)) for s, i in zip(stages, steps)),
                      tree.escape, tree.directives, tree.warnings)


def resolve_meta_args(meta_args: Sequence[Arg],
                      build_args: Mapping[str, str | None],
                      escape: str = "\\") -> dict[str, str]:
    """The values of the meta args: the ``--build-arg`` value, else the expanded default."""
    lexer = Lexer(escape)
    values: dict[str, str] = {}
    for arg in meta_args:
        given = build_args.get(arg.name)
        if given is not None:
            values[arg.name] = given
        elif arg.default is not None:
            values[arg.name] = lexer.process(arg.default, values).word
    return values


def expand_from(stage: Stage, build_args: Mapping[str, str | None],
                meta_args: Sequence[Arg] = (), escape: str = "\\") -> str:
    """The stage's base image with meta args (and ``--build-arg`` values) expanded."""
    env = resolve_meta_args(meta_args, build_args, escape)
    name = Lexer(escape).process(stage.base, env).word
    if not name:
        raise InvalidArgument(f"base name ({stage.base}) should not be blank")
    return name



__all__ = [
    "Add", "Arg", "Cmd", "Copy", "Dockerfile", "DockerfileParseError", "Entrypoint", "Env",
    "Expose", "FromInstruction", "Healthcheck", "Heredoc", "Instruction", "Label",
    "Maintainer", "Mount", "Onbuild", "Run", "Shell", "Stage", "StopSignal", "User", "Volume",
    "Workdir", "expand_from", "parse_node", "parse_stages", "resolve_meta_args",
]
