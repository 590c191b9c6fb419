"""mount(2)/umount2(2) through libc, and overlayfs assembly. The only place that mounts."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import cache
from pathlib import Path

from dockyard.errors import Internal

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount(source: str, target: Path, fstype: str | None, flags: int = 0, data: str = "") -> None:
    result = _libc().mount(source.encode(), str(target).encode(),
                           fstype.encode() if fstype else None, flags,
                           data.encode() if data else None)
    if result != 0:
        err = ctypes.get_errno()
        raise Internal(f"mount {fstype or 'bind'} on {target}: {os.strerror(err)}")


def unmount(target: Path, *, detach: bool = True) -> None:
    """Unmount ``target``; not being mounted is not an error."""
    result = _libc().umount2(str(target).encode(), MNT_DETACH if detach else 0)
    if result != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise Internal(f"unmount {target}: {os.strerror(err)}")


def is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of ``lowers`` (top first) with ``upper`` on ``target``."""
    lower = ":".join(str(p) for p in lowers)
    # redirect_dir/metacopy off: upper dirs must stay plain trees that layer tars can express.
    data = f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,metacopy=off"
    if len(data) > 4000:
        raise Internal(f"too many layers to mount ({len(lowers)})")
    mount("overlay", target, "overlay", 0, data)


def overlay_supported() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False
