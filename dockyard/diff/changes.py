"""A container's filesystem changes, read from its overlayfs upper directory.

``overlay_changes`` is ``docker diff``; ``write_layer_tar`` is the layer ``docker commit``
(and the builder) stores. Both read the upper directory only, walked with fds so a running
container cannot redirect the walk, and look paths up in the lower layer directories the way
overlayfs does (top first, a whiteout hides what is below, an opaque directory stops the
search, a non-directory hides lower directories).
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dockyard.diff.safepath import DIR_FLAGS
from dockyard.diff.tarwrite import Sink, TarWriter
from dockyard.diff.treetar import OPAQUE_XATTR, TreeWriter, is_whiteout

ChangeKind = Literal["A", "C", "D"]
_API_KINDS = {"C": 0, "A": 1, "D": 2}  # the Engine API's ChangeModify/ChangeAdd/ChangeDelete


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    path: str  # absolute, as seen in the container: "/etc/passwd"

    @property
    def api_kind(self) -> int:
        return _API_KINDS[self.kind]

    def to_api(self) -> dict[str, object]:
        """The ``GET /containers/{id}/changes`` item: ``{"Path": ..., "Kind": 0|1|2}``."""
        return {"Path": self.path, "Kind": self.api_kind}


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str  # sha256 of the tar bytes written, ``sha256:<hex>``
    size: int  # bytes written


def write_layer_tar(upper: Path, out: Sink, *, mtime_clamp: int | None = None) -> LayerInfo:
    """Write the layer tar of an overlay upper dir to ``out`` (uncompressed, reproducible).

    Whiteouts become ``.wh.`` members, opaque dirs get ``.wh..wh..opq``; see
    :mod:`dockyard.diff.treetar` for the format. ``mtime_clamp`` (seconds) caps every mtime,
    as SOURCE_DATE_EPOCH does. The container should be paused or stopped meanwhile.
    """
    writer = TarWriter(out)
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        TreeWriter(writer, overlay=True, mtime_clamp=mtime_clamp).add_dir(fd, "")
    finally:
        os.close(fd)
    digest, size = writer.close()
    return LayerInfo(digest, size)


# -- docker diff ---------------------------------------------------------------------------------
@dataclass
class _Frame:
    fd: int
    path: str  # "" for the root, else "/a/b"
    lowers: list[str]  # this directory in each lower layer that shows through, top first
    names: list[str]
    reported: bool = False
    changed: bool = False  # something below is reported


def _is_opaque(target: int | str) -> bool:
    try:
        follow = not isinstance(target, str)
        return os.getxattr(target, OPAQUE_XATTR, follow_symlinks=follow) == b"y"
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return False
        raise


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _lookup(lowers: list[str], name: str) -> os.stat_result | None:
    """What the merged view showed at ``name`` before the container changed it."""
    for lower in lowers:
        info = _lstat(f"{lower}/{name}")
        if info is not None:
            return None if is_whiteout(info) else info
    return None


def _descend(lowers: list[str], name: str) -> list[str]:
    """The lower directories that merge into directory ``name``."""
    found: list[str] = []
    for lower in lowers:
        path = f"{lower}/{name}"
        info = _lstat(path)
        if info is None:
            continue
        if not stat.S_ISDIR(info.st_mode):
            break  # a whiteout or a non-directory hides everything below
        found.append(path)
        if _is_opaque(path):
            break
    return found


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    """Docker's test for a directory that was only copied up, not modified."""
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    ta, tb = a.st_mtime_ns, b.st_mtime_ns
    return ta == tb or (ta // 10**9 == tb // 10**9 and (ta % 10**9 == 0 or tb % 10**9 == 0))


def _sort_key(change: Change) -> tuple[bytes, ...]:
    return tuple(os.fsencode(part) for part in change.path.split("/"))


def overlay_changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """``docker diff``: what differs between the upper dir and the lower layers (top first).

    A whiteout is ``D``; a new path ``A``; a path that existed below ``C`` (an opaque dir
    ``C``, with all it now holds ``A``); every directory above a reported path is reported
    ``C`` as well. Sorted depth first by path component, as Docker's walk outputs them.
    """
    changes: list[Change] = []
    root = _Frame(os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), "",
                  [os.fspath(p) for p in lowers], [])
    root.names = sorted(os.listdir(root.fd), reverse=True)
    stack = [root]
    try:
        while stack:
            frame = stack[-1]
            if not frame.names:
                stack.pop()
                os.close(frame.fd)
                if frame.changed and not frame.reported and frame.path:
                    changes.append(Change("C", frame.path))
                if stack and (frame.changed or frame.reported):
                    stack[-1].changed = True
                continue
            child = _visit(frame, frame.names.pop(), changes)
            if child is not None:
                stack.append(child)
    finally:
        for frame in stack:
            os.close(frame.fd)
    changes.sort(key=_sort_key)
    return changes


def _visit(frame: _Frame, name: str, changes: list[Change]) -> _Frame | None:
    path = f"{frame.path}/{name}"
    try:
        info = os.stat(name, dir_fd=frame.fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    below = _lookup(frame.lowers, name)
    if is_whiteout(info):
        if below is not None:
            changes.append(Change("D", path))
            frame.changed = True
        return None
    if not stat.S_ISDIR(info.st_mode):
        changes.append(Change("C" if below is not None else "A", path))
        frame.changed = True
        return None
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=frame.fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None
        raise
    try:
        opaque = _is_opaque(fd)
        child = _Frame(fd, path, [] if opaque else _descend(frame.lowers, name),
                       sorted(os.listdir(fd), reverse=True))
    except BaseException:
        os.close(fd)
        raise
    kind: ChangeKind | None = None
    if below is None:
        kind = "A"
    elif opaque or not stat.S_ISDIR(below.st_mode) or not _same_dir(info, below):
        kind = "C"
    if kind is not None:
        changes.append(Change(kind, path))
        child.reported = True
    return child
