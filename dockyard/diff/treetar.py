"""Writing a directory tree as tar members, walked with directory fds.

The walk never follows a symlink (``openat(O_NOFOLLOW)`` per component, ``fstat`` on what was
opened), so a container changing its tree meanwhile cannot make it read host files. Order
is depth first with names sorted, each directory before its content; hardlinks are found by
inode; uid/gid are kept, uname/gname left empty and mtimes truncated to seconds (optionally
clamped), so equal trees give byte-identical archives. Sockets are skipped, as by Docker.

In ``overlay`` mode the tree is an overlayfs upper directory: a 0:0 char device becomes a
``.wh.<name>`` member and an opaque directory gets a ``.wh..wh..opq`` member right after its
own header; ``trusted.overlay.*`` xattrs are never archived, and an upper that uses
``redirect_dir`` or ``metacopy`` is refused (its diff cannot be expressed as a tar).
"""
from __future__ import annotations

import errno
import os
import stat

from dockyard.diff import tarstream as ts
from dockyard.diff.safepath import DIR_FLAGS
from dockyard.diff.tarwrite import TarWriter
from dockyard.errors import Internal

OPAQUE_XATTR = "trusted.overlay.opaque"
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.")
_UNSUPPORTED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy",
                       "user.overlay.redirect", "user.overlay.metacopy")
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_xattrs(target: int | str) -> dict[str, bytes]:
    """All xattrs of an fd, or of a path without following a final symlink, sorted."""
    follow = not isinstance(target, str)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EPERM, errno.ENOENT):
            return {}
        raise
    values: dict[str, bytes] = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(target, name, follow_symlinks=follow)
        except OSError as err:
            if err.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return values


def is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


class TreeWriter:
    """Adds files, directories and whole trees to a :class:`~tarwrite.TarWriter`."""

    def __init__(self, writer: TarWriter, *, overlay: bool = False,
                 mtime_clamp: int | None = None) -> None:
        self._writer = writer
        self._overlay = overlay
        self._clamp = mtime_clamp
        self._links: dict[tuple[int, int], str] = {}

    # -- public -------------------------------------------------------------------------------
    def add_dir(self, fd: int, arcname: str) -> None:
        """The directory open at ``fd`` as ``arcname`` and everything below it.

        With ``arcname == ""`` only the content is written, with names relative to it (the
        shape of ``docker export`` and of layer tars).
        """
        if arcname:
            self._dir_header(fd, arcname)
        self._walk(fd, f"{arcname}/" if arcname else "")

    def add_item(self, dir_fd: int, name: str, arcname: str) -> None:
        """Entry ``name`` of the directory ``dir_fd`` as ``arcname`` (recursively)."""
        sub = self._item(dir_fd, name, arcname)
        if sub is not None:
            try:
                self._walk(sub, arcname + "/")
            finally:
                os.close(sub)

    # -- walking -------------------------------------------------------------------------------
    def _walk(self, top_fd: int, prefix: str) -> None:
        stack: list[tuple[int, str, list[str]]] = [(top_fd, prefix, _names(top_fd))]
        try:
            while stack:
                fd, pre, names = stack[-1]
                if not names:
                    stack.pop()
                    if fd != top_fd:
                        os.close(fd)
                    continue
                name = names.pop()
                sub = self._item(fd, name, pre + name)
                if sub is not None:
                    stack.append((sub, f"{pre}{name}/", _names(sub)))
        finally:
            for fd, _, _ in stack:
                if fd != top_fd:
                    os.close(fd)

    def _item(self, dir_fd: int, name: str, arc: str) -> int | None:
        """Write one member; returns an open fd when it is a directory to descend into."""
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self._dir_header(fd, arc)
                except BaseException:
                    os.close(fd)
                    raise
                return fd
            if stat.S_ISREG(mode):
                self._file(dir_fd, name, arc, info)
            elif stat.S_ISLNK(mode):
                target = os.readlink(name, dir_fd=dir_fd)
                self._add(arc, ts.SYMLINK, info, self._xattrs_at(dir_fd, name), linkname=target)
            elif self._overlay and is_whiteout(info):
                parent, _, base = arc.rpartition("/")
                self._writer.add(ts.TarEntry(f"{parent}/.wh.{base}" if parent else f".wh.{base}",
                                             ts.REG, mode=0))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                kind = ts.CHR if stat.S_ISCHR(mode) else ts.BLK if stat.S_ISBLK(mode) else ts.FIFO
                self._add(arc, kind, info, self._xattrs_at(dir_fd, name),
                          devmajor=os.major(info.st_rdev), devminor=os.minor(info.st_rdev))
        except (FileNotFoundError, NotADirectoryError):
            pass  # removed (or replaced) while we walked: as if we had come a moment later
        except OSError as err:
            if err.errno != errno.ELOOP:  # ELOOP: swapped for a symlink under us
                raise
        return None

    def _file(self, dir_fd: int, name: str, arc: str, info: os.stat_result) -> None:
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self._links:
            self._add(arc, ts.LINK, info, {}, linkname=self._links[key])
            return
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return
            self._add(arc, ts.REG, info, self._filter(read_xattrs(fd)), fd=fd)
        finally:
            os.close(fd)
        if info.st_nlink > 1:
            self._links[(info.st_dev, info.st_ino)] = arc

    def _dir_header(self, fd: int, arc: str) -> None:
        info = os.fstat(fd)
        xattrs = read_xattrs(fd)
        opaque = self._overlay and xattrs.get(OPAQUE_XATTR) == b"y"
        self._add(arc + "/", ts.DIR, info, self._filter(xattrs))
        if opaque:
            self._writer.add(ts.TarEntry(f"{arc}/.wh..wh..opq", ts.REG, mode=0))

    def _xattrs_at(self, dir_fd: int, name: str) -> dict[str, bytes]:
        return self._filter(read_xattrs(f"/proc/self/fd/{dir_fd}/{name}"))

    def _filter(self, xattrs: dict[str, bytes]) -> dict[str, bytes]:
        if not xattrs:
            return xattrs
        if self._overlay and any(k.startswith(_UNSUPPORTED_XATTRS) for k in xattrs):
            raise Internal("the overlay upper directory uses redirect_dir or metacopy; "
                           "mount overlayfs with redirect_dir=off,metacopy=off")
        return {k: v for k, v in xattrs.items() if not k.startswith(_SKIPPED_XATTRS)}

    def _add(self, arc: str, kind: str, info: os.stat_result, xattrs: dict[str, bytes], *,
             fd: int | None = None, linkname: str = "", devmajor: int = 0,
             devminor: int = 0) -> None:
        seconds = info.st_mtime_ns // 1_000_000_000
        if self._clamp is not None and seconds > self._clamp:
            seconds = self._clamp
        size = info.st_size if kind == ts.REG else 0
        entry = ts.TarEntry(arc, kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                            size, seconds * 1_000_000_000, linkname, devmajor, devminor, xattrs)
        self._writer.add(entry, fd)


def _names(fd: int) -> list[str]:
    """Names in the directory, sorted descending (the walk pops from the end)."""
    names = os.listdir(fd)
    names.sort(reverse=True)
    return names
