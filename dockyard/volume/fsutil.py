"""File-system chores of the volume store: which paths are mount points, unmounting a tree,
removing one without crossing into a mount below it, and Docker's directory size.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from dockyard.errors import Internal
from dockyard.host import mounts


def mount_points() -> list[str]:
    """Every mount point of this mount namespace. (``os.path.ismount`` misses a bind mount
    from the same file system, such as a bind volume's host directory.)"""
    with open("/proc/self/mountinfo", "rb") as info:
        points = [line.split()[4] for line in info]
    return [re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), p).decode(
        errors="surrogateescape") for p in points]


def is_mounted(path: Path) -> bool:
    return os.path.realpath(path) in mount_points()


def unmount_all(path: Path) -> None:
    """Unmount every mount at or below ``path``, deepest first; Internal if one stays."""
    real = os.path.realpath(path)
    for _ in range(16):
        found = [p for p in mount_points() if p == real or p.startswith(real + "/")]
        if not found:
            return
        for point in sorted(found, key=len, reverse=True):
            mounts.unmount(Path(point))
    raise Internal(f"cannot unmount {path}")


def remove_tree(path: Path) -> None:
    """``rm -rf`` that never leaves the file system it starts on: a mount below (say a bind
    volume's host directory) stops it with an error instead of being emptied."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(path)
        return
    with os.scandir(path) as it:
        children = [Path(entry.path) for entry in it]
    for child in children:
        info = os.lstat(child)
        if stat.S_ISDIR(info.st_mode):
            if info.st_dev != top.st_dev:
                raise Internal(f"refusing to remove {child}: it is a mount point")
            remove_tree(child)
        else:
            os.unlink(child)
    os.rmdir(path)


def tree_size(path: Path) -> int:
    """Docker's directory.Size: apparent sizes of non-directories, hard links once; -1 if
    the tree cannot be read."""
    seen: set[tuple[int, int]] = set()
    total = 0
    try:
        for top, dirs, files in os.walk(path, onerror=_raise):
            for name in dirs + files:
                info = os.lstat(os.path.join(top, name))
                if stat.S_ISDIR(info.st_mode) or (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    except OSError:
        return -1
    return total


def _raise(err: OSError) -> None:
    raise err
