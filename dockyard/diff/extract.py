"""The extraction engine behind :mod:`dockyard.diff.apply` (see there for the contract).

One :class:`Extractor` per archive: its directory fds (:class:`~dockyard.diff.dirfds.DirFds`:
a root fd, a start directory fd and an LRU cache of open directories), and what the archive
created (its symlinks, for the "no writing through our own symlink" rule; in flat mode the
set of paths unpacked, for opaque markers).
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from dockyard.diff import tarstream as ts
from dockyard.diff.dirfds import DirFds
from dockyard.diff.safepath import DIR_FLAGS, clean_relative
from dockyard.errors import DockyardError, Internal, InvalidArgument

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_INPUT_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY,
                           errno.ELOOP, errno.EINVAL, errno.ENAMETOOLONG, errno.EMLINK,
                           errno.EPERM, errno.ENOENT})
T = TypeVar("T")


@dataclass(frozen=True)
class ApplyResult:
    diff_id: str  # sha256 of the uncompressed tar stream, ``sha256:<hex>``
    size: int  # bytes of regular-file content unpacked
    compression: str = "none"  # what the input was: none, gzip, zstd, bzip2 or xz


def _bad(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f'invalid tar entry "{name}": {why}')


class Extractor:
    """One extraction: a root fd, a cache of open directory fds, and what was created."""

    def __init__(self, root: Path, start: str, *, overlay: bool, atomic: bool,
                 owner: tuple[int, int] | None = None, no_overwrite: bool = False,
                 lenient_end: bool = False) -> None:
        self._lenient_end = lenient_end
        self._overlay = overlay
        self._atomic = atomic
        self._owner = owner
        self._no_overwrite = no_overwrite
        self._can_chown = os.geteuid() == 0
        self._token = secrets.token_hex(8)
        self._counter = 0
        self._size = 0
        self._symlinks: set[str] = set()  # symlinks this archive created (lexical paths)
        self._unpacked: set[str] | None = None if overlay else set()
        self._dir_times: dict[str, int] = {}
        self._reader: ts.TarReader | None = None
        self._dirs = DirFds(root, start)

    def close(self) -> None:
        self._dirs.close()

    # -- the run ------------------------------------------------------------------------------
    def run(self, stream: BinaryIO) -> ApplyResult:
        source = ts.HashingSource(stream)
        self._reader = reader = ts.TarReader(source, lenient_end=self._lenient_end)
        while (entry := reader.next()) is not None:
            try:
                self._apply(entry)
            except DockyardError:
                raise
            except OSError as err:
                if err.errno in _INPUT_ERRNOS:
                    raise _bad(entry.name, err.strerror or str(err)) from err
                raise Internal(f'extracting "{entry.name}": {err}') from err
            finally:
                self._dirs.close_stale()
        self._finish_dirs()
        source.drain()
        return ApplyResult(source.digest(), self._size, source.compression)

    def _apply(self, entry: ts.TarEntry) -> None:
        rel = clean_relative(entry.name)
        if rel is None:
            raise _bad(entry.name, "path escapes the destination")
        if not rel or (rel.startswith(WHITEOUT_META_PREFIX) and rel != WHITEOUT_OPAQUE):
            return  # the root's metadata belongs to the destination; AUFS metadata is skipped
        parent, _, name = rel.rpartition("/")
        self._check_symlinks(entry.name, parent)
        if name == WHITEOUT_OPAQUE:
            self._opaque(parent)
            return
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(entry, parent, name[len(WHITEOUT_PREFIX):])
            return
        pfd, presolved = self._dirs.get(parent)
        kind = entry.kind
        if kind == ts.DIR:
            self._mkdir(pfd, presolved, name, rel, entry)
        elif kind == ts.REG:
            self._file(pfd, name, rel, entry)
        elif kind == ts.SYMLINK:
            self._symlink(pfd, name, rel, entry)
        elif kind == ts.LINK:
            self._hardlink(pfd, name, rel, entry)
        else:
            self._special(pfd, name, rel, entry)
        if self._unpacked is not None:
            self._unpacked.add(rel)

    def _check_symlinks(self, name: str, parent: str) -> None:
        if not self._symlinks or not parent:
            return
        prefix = ""
        for part in parent.split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self._symlinks:
                raise _bad(name, f'it would be written through the symlink "{prefix}"')

    # -- replacing what is there -----------------------------------------------------------
    def _remove(self, pfd: int, name: str, rel: str, info: os.stat_result,
                new_is_dir: bool) -> bool:
        """Remove ``name`` to make room; True if it was an overlay whiteout."""
        is_dir = stat.S_ISDIR(info.st_mode)
        if self._no_overwrite and is_dir != new_is_dir:
            old, new = ("directory", "non-directory") if is_dir else ("non-directory", "directory")
            raise InvalidArgument(f'cannot overwrite {old} "/{rel}" with {new}')
        if is_dir:
            shutil.rmtree(name, dir_fd=pfd)
            self._dirs.drop()
            self._symlinks = {s for s in self._symlinks if not s.startswith(rel + "/")}
            return False
        os.unlink(name, dir_fd=pfd)
        if stat.S_ISLNK(info.st_mode):
            self._dirs.drop()
            self._symlinks.discard(rel)
        return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0

    def _create(self, pfd: int, name: str, rel: str, make: Callable[[], T]) -> T:
        """``make()`` a non-directory at ``name``, replacing a previous entry once."""
        try:
            return make()
        except FileExistsError:
            self._remove(pfd, name, rel, os.stat(name, dir_fd=pfd, follow_symlinks=False),
                         new_is_dir=False)
            return make()

    def _temp(self, name: str) -> str:
        if not self._atomic:
            return name
        self._counter += 1
        return f".dockyard-tmp-{self._token}-{self._counter}"

    def _commit(self, pfd: int, temp: str, name: str, rel: str) -> None:
        """Rename ``temp`` over ``name`` (atomic mode), replacing what was there."""
        if temp == name:
            return
        try:
            try:
                info = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(info.st_mode):
                    self._remove(pfd, name, rel, info, new_is_dir=False)
                elif stat.S_ISLNK(info.st_mode):
                    self._dirs.drop()
                    self._symlinks.discard(rel)
            os.rename(temp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
        finally:
            with suppress(FileNotFoundError):  # left when both names were one inode already
                os.unlink(temp, dir_fd=pfd)

    # -- metadata ---------------------------------------------------------------------------
    def _ids(self, entry: ts.TarEntry) -> tuple[int, int]:
        return self._owner if self._owner is not None else (entry.uid, entry.gid)

    def _xattrs(self, target: int | str, entry: ts.TarEntry) -> None:
        for key, value in entry.xattrs.items():
            if key.startswith(_OVERLAY_XATTRS):
                continue
            try:
                os.setxattr(target, key, value, follow_symlinks=not isinstance(target, str))
            except OSError as err:
                if err.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def _meta_fd(self, fd: int, entry: ts.TarEntry, times: bool = True) -> None:
        if self._can_chown:
            os.fchown(fd, *self._ids(entry))
        os.fchmod(fd, entry.mode)  # after chown, which clears setuid bits
        self._xattrs(fd, entry)
        if times:
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))

    def _meta_at(self, pfd: int, name: str, entry: ts.TarEntry, chmod: bool) -> None:
        if self._can_chown:
            os.chown(name, *self._ids(entry), dir_fd=pfd, follow_symlinks=False)
        if chmod:  # Linux has no lchmod: pin the inode with O_PATH, chmod through /proc
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                if stat.S_ISLNK(os.fstat(fd).st_mode):
                    raise _bad(entry.name, "replaced by a symlink while extracting")
                os.chmod(f"/proc/self/fd/{fd}", entry.mode)
            finally:
                os.close(fd)
        if entry.xattrs:
            self._xattrs(f"/proc/self/fd/{pfd}/{name}", entry)
        os.utime(name, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    # -- member kinds -----------------------------------------------------------------------
    def _mkdir(self, pfd: int, presolved: str, name: str, rel: str,
               entry: ts.TarEntry) -> None:
        was_whiteout = False
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            info = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                was_whiteout = self._remove(pfd, name, rel, info, new_is_dir=True)
                os.mkdir(name, 0o700, dir_fd=pfd)
        hit = self._dirs.cached(rel)
        if hit is None:
            hit = (os.open(name, DIR_FLAGS, dir_fd=pfd), f"{presolved}/{name}" if presolved
                   else name)
            self._dirs.remember(rel, hit)
        self._meta_fd(hit[0], entry, times=False)
        if was_whiteout and self._overlay:  # deleted, then made anew: hide the lower one
            os.setxattr(hit[0], OPAQUE_XATTR, b"y")
        self._dir_times[rel] = entry.mtime_ns

    def _file(self, pfd: int, name: str, rel: str, entry: ts.TarEntry) -> None:
        assert self._reader is not None
        temp = self._temp(name)
        fd = self._create(pfd, temp, rel, lambda: os.open(temp, _FILE_FLAGS, 0o600,
                                                           dir_fd=pfd))
        try:
            self._reader.copy_data(fd)
            self._meta_fd(fd, entry)
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                os.unlink(temp, dir_fd=pfd)
            raise
        os.close(fd)
        self._commit(pfd, temp, name, rel)
        self._size += entry.size

    def _place(self, pfd: int, name: str, rel: str, make: Callable[[str], object],
               finish: Callable[[str], object] | None = None) -> None:
        """Create a non-regular member via ``make(at)``, ``finish(at)`` it, put it in place."""
        temp = self._temp(name)
        self._create(pfd, temp, rel, lambda: make(temp))
        try:
            if finish is not None:
                finish(temp)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp, dir_fd=pfd)
            raise
        self._commit(pfd, temp, name, rel)

    def _symlink(self, pfd: int, name: str, rel: str, entry: ts.TarEntry) -> None:
        if not entry.linkname:
            raise _bad(entry.name, "empty symlink target")
        self._place(pfd, name, rel, lambda at: os.symlink(entry.linkname, at, dir_fd=pfd),
                    lambda at: self._meta_at(pfd, at, entry, chmod=False))
        self._symlinks.add(rel)

    def _hardlink(self, pfd: int, name: str, rel: str, entry: ts.TarEntry) -> None:
        target = clean_relative(entry.linkname)
        if target is None:
            raise _bad(entry.name, f'hardlink target "{entry.linkname}" escapes the destination')
        if not target or target == rel:
            raise _bad(entry.name, f'invalid hardlink target "{entry.linkname}"')
        tparent, _, tname = target.rpartition("/")
        self._check_symlinks(entry.name, tparent)
        try:
            tfd = self._dirs.get(tparent, create=False)[0]
            if stat.S_ISDIR(os.stat(tname, dir_fd=tfd, follow_symlinks=False).st_mode):
                raise _bad(entry.name, f'hardlink target "{entry.linkname}" is a directory')
        except (FileNotFoundError, NotADirectoryError):
            raise _bad(entry.name, f'hardlink target "{entry.linkname}" not found') from None
        self._place(pfd, name, rel, lambda at: os.link(tname, at, src_dir_fd=tfd, dst_dir_fd=pfd,
                                                       follow_symlinks=False))

    def _special(self, pfd: int, name: str, rel: str, entry: ts.TarEntry) -> None:
        kind = {ts.CHR: stat.S_IFCHR, ts.BLK: stat.S_IFBLK, ts.FIFO: stat.S_IFIFO}[entry.kind]
        device = os.makedev(entry.devmajor, entry.devminor)
        self._place(pfd, name, rel, lambda at: os.mknod(at, kind | 0o600, device, dir_fd=pfd),
                    lambda at: self._meta_at(pfd, at, entry, chmod=True))

    def _whiteout(self, entry: ts.TarEntry, parent: str, name: str) -> None:
        if name in ("", ".", ".."):
            raise _bad(entry.name, "invalid whiteout")
        rel = f"{parent}/{name}" if parent else name
        if self._overlay:
            pfd = self._dirs.get(parent)[0]
            self._create(pfd, name, rel, lambda: os.mknod(name, stat.S_IFCHR,
                                                          os.makedev(0, 0), dir_fd=pfd))
            if self._can_chown:
                os.chown(name, *self._ids(entry), dir_fd=pfd, follow_symlinks=False)
            return
        try:
            pfd = self._dirs.get(parent, create=False)[0]
            info = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        self._remove(pfd, name, rel, info, new_is_dir=stat.S_ISDIR(info.st_mode))

    def _opaque(self, parent: str) -> None:
        if self._overlay:
            os.setxattr(self._dirs.get(parent)[0], OPAQUE_XATTR, b"y")
            return
        try:
            fd = self._dirs.get(parent, create=False)[0]
        except (FileNotFoundError, NotADirectoryError):
            return
        keep = self._unpacked or set()
        with os.scandir(fd) as it:
            names = [e.name for e in it]
        for child in names:
            rel = f"{parent}/{child}" if parent else child
            if rel not in keep:
                info = os.stat(child, dir_fd=fd, follow_symlinks=False)
                self._remove(fd, child, rel, info, new_is_dir=stat.S_ISDIR(info.st_mode))

    def _finish_dirs(self) -> None:
        """Directory mtimes last: creating their content changed them."""
        for rel, ns in self._dir_times.items():
            parent, _, name = rel.rpartition("/")
            try:
                self._check_symlinks(rel, parent)  # never set times through our own symlink
                pfd = self._dirs.get(parent, create=False)[0]
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError, InvalidArgument):
                pass
            finally:
                self._dirs.close_stale()
