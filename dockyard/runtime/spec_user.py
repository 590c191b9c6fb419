"""Resolve ``--user``/``--group-add`` against a rootfs's /etc/passwd and /etc/group.

A port of libcontainer's ``user.GetExecUser``/``GetAdditionalGroups`` (what Docker uses), with
its error texts. Files are looked up inside the rootfs, following symlinks without leaving it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dockyard.errors import InvalidArgument

MIN_ID = 0
MAX_ID = 2**31 - 1
_ERR_RANGE = f"uids and gids must be in range {MIN_ID}-{MAX_ID}"
_NO_PASSWD = "no matching entries in passwd file"
_NO_GROUP = "no matching entries in group file"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ExecUser:
    uid: int = 0
    gid: int = 0
    sgids: tuple[int, ...] = ()
    home: str = "/"
    name: str = ""


def scoped_path(rootfs: Path, path: str, max_links: int = 255) -> Path:
    """``path`` inside ``rootfs`` with symlinks resolved as if rootfs were ``/`` (never escapes)."""
    parts = list(PurePosixPath("/", path).parts[1:])
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > max_links:
                raise InvalidArgument(f"too many symlinks resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return rootfs.joinpath(*resolved)


def _read_lines(rootfs: Path, path: str) -> list[str] | None:
    try:
        text = scoped_path(rootfs, path).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` ignoring errors, as libcontainer's parseLine does."""
    try:
        return int(text, 10)
    except ValueError:
        return 0


def _field(cols: list[str], i: int) -> str:
    return cols[i] if i < len(cols) else ""


def parse_passwd(lines: Iterable[str]) -> list[PasswdEntry]:
    out = []
    for line in lines:
        c = line.split(":")
        out.append(PasswdEntry(_field(c, 0), _atoi(_field(c, 2)), _atoi(_field(c, 3)),
                               _field(c, 5)))
    return out


def parse_group(lines: Iterable[str]) -> list[GroupEntry]:
    out = []
    for line in lines:
        c = line.split(":")
        members = tuple(m for m in _field(c, 3).split(",") if m)
        out.append(GroupEntry(_field(c, 0), _atoi(_field(c, 2)), members))
    return out


def _numeric(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def _check_range(value: int) -> int:
    if value < MIN_ID or value > MAX_ID:
        raise InvalidArgument(_ERR_RANGE)
    return value


def resolve_exec_user(rootfs: Path, user: str) -> ExecUser:
    """uid, gid, supplementary gids and home for ``user`` (``""`` means root)."""
    user_arg, _, group_arg = user.partition(":")
    group_arg = group_arg.split(":", 1)[0]
    uid_arg, gid_arg = _numeric(user_arg), _numeric(group_arg)
    passwd_lines = _read_lines(rootfs, "/etc/passwd")
    group_lines = _read_lines(rootfs, "/etc/group")

    uid, gid, home, matched = 0, 0, "/", ""
    entries = parse_passwd(passwd_lines or [])
    if user_arg == "":
        hits = [e for e in entries if e.uid == 0]
    elif uid_arg is not None:
        hits = [e for e in entries if e.uid == uid_arg]
    else:
        hits = [e for e in entries if e.name == user_arg]
    if hits:
        matched, uid, gid, home = hits[0].name, hits[0].uid, hits[0].gid, hits[0].home
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: {_NO_PASSWD}")
        uid = _check_range(uid_arg)

    sgids: tuple[int, ...] = ()
    if group_arg or matched:
        groups = parse_group(group_lines or [])
        if not group_arg:
            ghits = [g for g in groups if matched in g.members]
        elif gid_arg is not None:
            ghits = [g for g in groups if g.gid == gid_arg]
        else:
            ghits = [g for g in groups if g.name == group_arg]
        if group_arg:
            if ghits:
                gid = ghits[0].gid
            elif gid_arg is None:
                raise InvalidArgument(f"unable to find group {group_arg}: {_NO_GROUP}")
            else:
                gid = _check_range(gid_arg)
        elif ghits:
            sgids = tuple(g.gid for g in ghits)
    return ExecUser(uid=uid, gid=gid, sgids=sgids, home=home or "/", name=matched)


def resolve_user(rootfs: Path, user: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids from /etc/group membership) for ``user``.

    Accepts ``uid``, ``uid:gid``, ``name``, ``name:group`` (and mixes). Docker's errors, e.g.
    ``unable to find user foo: no matching entries in passwd file``."""
    eu = resolve_exec_user(rootfs, user)
    return eu.uid, eu.gid, list(eu.sgids)


def resolve_group_add(rootfs: Path, groups: Iterable[str]) -> list[int]:
    """gids for ``--group-add`` names or numbers, first-seen order, duplicates dropped."""
    wanted = list(groups)
    if not wanted:
        return []
    entries = parse_group(_read_lines(rootfs, "/etc/group") or [])
    out: list[int] = []
    for ag in wanted:
        num = _numeric(ag)
        hits = [g.gid for g in entries if g.name == ag or (num is not None and g.gid == num)]
        if hits:
            gids = hits
        elif num is None:
            raise InvalidArgument(f"Unable to find group {ag}: {_NO_GROUP}")
        else:
            gids = [_check_range(num)]
        out.extend(g for g in gids if g not in out)
    return out


def process_user(rootfs: Path, user: str, group_add: Iterable[str] = ()) -> dict[str, object]:
    """The OCI ``process.user`` object Docker builds: the primary gid first in additionalGids
    (so setgroups keeps it), then /etc/group memberships, then ``--group-add``; no repeats."""
    eu = resolve_exec_user(rootfs, user)
    additional: list[int] = []
    for gid in (eu.gid, *eu.sgids, *resolve_group_add(rootfs, group_add)):
        if gid not in additional:
            additional.append(gid)
    return {"uid": eu.uid, "gid": eu.gid, "additionalGids": additional}
