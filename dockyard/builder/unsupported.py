"""Dockerfile flags the parser accepts (buildkit's grammar, checked by the conformance cases)
but this builder — Docker's classic builder — does not carry out: refused, never ignored.

- ``COPY/ADD --exclude`` and ``COPY --parents`` are unknown flags to the classic builder's
  parser (buildkit's "labs" flags): refused before any step runs, with its parse error
  (``dockerfile parse error on line 3: unknown flag: --exclude``).
- ``RUN --mount`` is refused when the step is reached, with the classic builder's text
  (``the --mount option requires BuildKit. Refer to …``); ``COPY/ADD --link`` and
  ``ADD --checksum``/``--keep-git-dir`` (which the classic builder would silently ignore)
  get the same wording. ``RUN --network`` and ``--chmod`` are carried out, so they stay.
- ``FROM --platform`` other than this machine's (linux/amd64) is refused.
"""
from __future__ import annotations

from dockyard.builder import commands as c
from dockyard.builder.instructions import Dockerfile
from dockyard.builder.parser import DockerfileParseError
from dockyard.errors import InvalidArgument

_BUILDKIT = ("the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
             "to learn how to build images with BuildKit enabled")
_PLATFORMS = ("linux/amd64", "linux/x86_64", "linux", "amd64", "x86_64", "linux/amd64/v1")


def check_parsed(dockerfile: Dockerfile) -> None:
    """Every stage, as the classic builder's parser would (before anything runs)."""
    for stage in dockerfile.stages:
        for inst in stage.instructions:
            _unknown_flags(inst)


def check_step(inst: c.Instruction) -> None:
    """One instruction as it is dispatched (ONBUILD triggers included)."""
    _unknown_flags(inst)
    used: list[str] = []
    if isinstance(inst, c.Run) and inst.mount_specs:
        used.append("mount")
    if isinstance(inst, (c.Copy, c.Add)) and inst.link:
        used.append("link")
    if isinstance(inst, c.Add):
        used += [name for name, value in (("checksum", inst.checksum),
                                          ("keep-git-dir", inst.keep_git_dir)) if value]
    if used:
        raise InvalidArgument(_BUILDKIT.format(used[0]))


def check_platform(platform: str) -> None:
    """``FROM --platform=<expanded value>``: only this machine's platform can be built."""
    if platform and platform.lower() not in _PLATFORMS:
        raise InvalidArgument(f"failed to parse platform {platform}: only linux/amd64 images "
                              "can be built by this daemon")


def _unknown_flags(inst: c.Instruction) -> None:
    flag = ""
    if isinstance(inst, (c.Copy, c.Add)) and inst.excludes:
        flag = "--exclude"
    elif isinstance(inst, c.Copy) and inst.parents:
        flag = "--parents"
    if flag:
        raise DockerfileParseError(f"unknown flag: {flag}", inst.start_line, inst.end_line)
