"""The typed Dockerfile instructions (buildkit's ``commands.go``); values stay as written.

Every instruction carries the line it came from (``original``, ``start_line``,
``end_line``). Paths, ``ENV``/``LABEL``/``ARG`` values, images and so on are not expanded:
the builder expands them with :mod:`dockyard.builder.shell` while it runs a stage.
:mod:`dockyard.builder.instructions` builds these from the syntax tree.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from dockyard.builder.bflags import Mount, parse_mount
from dockyard.builder.parser import Heredoc


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """What every instruction carries: the line as written and where it was."""

    keyword: ClassVar[str] = ""
    original: str = ""
    start_line: int = 0
    end_line: int = 0


@dataclass(frozen=True)
class FromInstruction(Instruction):
    keyword: ClassVar[str] = "FROM"
    image: str
    stage_name: str = ""
    platform: str = ""


@dataclass(frozen=True)
class _Command(Instruction):
    """RUN, CMD and ENTRYPOINT: exec form (``prepend_shell=False``) or one shell string."""

    command: tuple[str, ...]
    prepend_shell: bool = True
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Run(_Command):
    keyword: ClassVar[str] = "RUN"
    mounts: tuple[Mount, ...] = ()        # values holding ``$`` are not expanded yet
    mount_specs: tuple[str, ...] = ()     # the ``--mount`` values as written
    network: str = "default"

    def expanded_mounts(self, expand: Callable[[str], str]) -> tuple[Mount, ...]:
        """The mounts again, every value expanded first (the builder's second pass)."""
        return tuple(parse_mount(spec, expand) for spec in self.mount_specs)


@dataclass(frozen=True)
class Cmd(_Command):
    keyword: ClassVar[str] = "CMD"


@dataclass(frozen=True)
class Entrypoint(_Command):
    keyword: ClassVar[str] = "ENTRYPOINT"   # ``ENTRYPOINT []`` (empty command) resets it


@dataclass(frozen=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]     # values unexpanded, quotes kept


@dataclass(frozen=True)
class Label(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arg(Instruction):
    keyword: ClassVar[str] = "ARG"
    name: str
    default: str | None = None             # unexpanded, quotes kept; None: no default


@dataclass(frozen=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


@dataclass(frozen=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str


@dataclass(frozen=True)
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]                 # sorted, as buildkit does


@dataclass(frozen=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]


@dataclass(frozen=True)
class _Transfer(Instruction):
    """COPY and ADD: source paths, inline files (heredocs, bodies chomped) and a destination."""

    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Copy(_Transfer):
    keyword: ClassVar[str] = "COPY"
    from_stage: str = ""
    parents: bool = False


@dataclass(frozen=True)
class Add(_Transfer):
    keyword: ClassVar[str] = "ADD"
    keep_git_dir: bool = False
    checksum: str = ""


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``test`` is ``("NONE",)``, ``("CMD", argv...)`` or ``("CMD-SHELL", script)``;
    durations are nanoseconds, 0 meaning the default."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@dataclass(frozen=True)
class Onbuild(Instruction):
    keyword: ClassVar[str] = "ONBUILD"
    expression: str                        # the trigger's text (heredoc bodies appended)


@dataclass(frozen=True)
class Maintainer(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str
