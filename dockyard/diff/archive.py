"""``docker cp`` out of a container and ``docker export``: tar (and stat) a path of a rootfs.

Paths are resolved the way Docker's daemon does for ``/containers/{id}/archive``: the
directory part is resolved inside the root with symlinks chrooted, the final component is
not followed (copying a symlink copies the link) unless the path ends with ``/`` or ``/.``.
The tree is read with directory fds (:mod:`dockyard.diff.treetar`), never following a
symlink out of the root even if the container changes it meanwhile.
"""
from __future__ import annotations

import base64
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from dockyard.diff.safepath import open_dir_in_root, resolve_in_root
from dockyard.diff.tarwrite import Sink, TarWriter
from dockyard.diff.treetar import TreeWriter
from dockyard.errors import InvalidArgument, NotFound

# Go's os.FileMode type bits, as in the X-Docker-Container-Path-Stat JSON.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (what Docker puts in the path-stat header)."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: MODE_DIR, stat.S_IFLNK: MODE_SYMLINK, stat.S_IFBLK: MODE_DEVICE,
             stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE, stat.S_IFIFO: MODE_NAMED_PIPE,
             stat.S_IFSOCK: MODE_SOCKET}.get(kind, 0)
    for bit, flag in ((stat.S_ISUID, MODE_SETUID), (stat.S_ISGID, MODE_SETGID),
                      (stat.S_ISVTX, MODE_STICKY)):
        if st_mode & bit:
            mode |= flag
    return mode


def rfc3339_nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fraction without trailing zeros, none if zero."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


@dataclass(frozen=True)
class PathStat:
    """Docker's ``ContainerPathStat``."""

    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime: str  # RFC 3339 with nanoseconds
    link_target: str = ""  # for a symlink: the path it finally resolves to in the container

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}

    def to_header(self) -> str:
        """The value of the ``X-Docker-Container-Path-Stat`` header (base64 of the JSON)."""
        raw = json.dumps(self.to_json(), separators=(",", ":")).encode()
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_header(cls, value: str) -> PathStat:
        try:
            data = json.loads(base64.b64decode(value))
            return cls(str(data["name"]), int(data["size"]), int(data["mode"]),
                       str(data["mtime"]), str(data.get("linkTarget") or ""))
        except (ValueError, KeyError, TypeError) as err:
            raise InvalidArgument(f"invalid path stat header: {err}") from None


@dataclass(frozen=True)
class _Located:
    dir_fd: int  # the resolved parent directory (or the directory itself when name is "")
    name: str  # final component, not followed; "" when the path names dir_fd itself
    info: os.stat_result
    stat: PathStat


def _base(path: str) -> str:
    """Go's ``filepath.Base``: last element, trailing slashes ignored, ``/`` for the root."""
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


def _split(path: str) -> tuple[str, str, str]:
    """(directory part, final component, clean absolute path) as Docker's ResolvePath.

    ``..`` clamps at the root; a trailing ``/`` or ``/.`` is kept, as Docker's
    PreserveTrailingDotOrSeparator does, so that the final component is then followed.
    """
    if "\0" in path:
        raise InvalidArgument(f"invalid path {path!r}")
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    clean = "/" + "/".join(parts)
    full = clean
    if _base(path) == ".":
        full = clean.rstrip("/") + "/."
    elif path.endswith("/"):
        full = clean.rstrip("/") + "/"
    head, _, base = full.rpartition("/")
    return head or "/", base, clean


def _locate(root: Path, root_fd: int, path: str) -> _Located:
    head, base, clean = _split(path)
    missing = NotFound(f"Could not find the file {path} in container")
    try:
        dir_fd, _ = open_dir_in_root(root_fd, head)
    except (FileNotFoundError, NotADirectoryError):
        raise missing from None
    try:
        if base in ("", "."):
            info, name = os.fstat(dir_fd), ""
        else:
            info, name = os.stat(base, dir_fd=dir_fd, follow_symlinks=False), base
    except (FileNotFoundError, NotADirectoryError):
        os.close(dir_fd)
        raise missing from None
    link = ""
    if stat.S_ISLNK(info.st_mode):
        rel = os.path.relpath(resolve_in_root(root, clean), root)
        link = "/" if rel == "." else "/" + rel
    shown = _base(clean) if base != "." else "."
    return _Located(dir_fd, name, info, PathStat(shown, info.st_size, go_file_mode(info.st_mode),
                                                 rfc3339_nano(info.st_mtime_ns), link))


def _open_root(root: Path) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def stat_path(root: Path, path_in_root: str) -> PathStat:
    """The ``HEAD /containers/{id}/archive`` answer for ``path_in_root``; NotFound if none."""
    root_fd = _open_root(root)
    try:
        found = _locate(root, root_fd, path_in_root)
        os.close(found.dir_fd)
        return found.stat
    finally:
        os.close(root_fd)


def tar_path(root: Path, path_in_root: str, out: Sink, *,
             rename_to: str | None = None) -> PathStat:
    """Write a tar of ``path_in_root`` to ``out``; returns its stat (for the header).

    Members are named after the path's last component (or ``rename_to``): ``etc/``,
    ``etc/passwd``… for ``/etc``. The root itself (``/``) without ``rename_to`` gives the
    ``docker export`` shape: the content only, relative names, no member for the root.
    """
    root_fd = _open_root(root)
    try:
        found = _locate(root, root_fd, path_in_root)
        try:
            writer = TarWriter(out)
            tree = TreeWriter(writer)
            arc = rename_to or found.stat.name
            if found.name:
                tree.add_item(found.dir_fd, found.name, arc)
            else:
                tree.add_dir(found.dir_fd, "" if arc == "/" else arc)
            writer.close()
        finally:
            os.close(found.dir_fd)
        return found.stat
    finally:
        os.close(root_fd)
