"""COPY/ADD placement (Docker's ``performCopyForInfo``): resolved sources written into a rootfs.

A directory's *contents* go into the destination; a file goes to ``dest/<name>`` when the
destination ends with ``/`` or is an existing directory, else to the destination path
itself; several sources need a destination ending with ``/``. Everything copied is owned by
``chown`` (default 0:0) and keeps its mode unless ``chmod`` is given (applied to files and
directories, not symlinks); mtimes are kept. Missing directories on the way are made 0755
and owned by ``chown``. For reproducible layers (the same inputs, the same layer digest), no
directory's mtime says when the build ran: one the copy creates gets the newest mtime of the
sources, and an existing one it writes into keeps its mtime. ADD extracts a local tar (plain, gzip, bzip2, xz, zstd) into the
destination directory, keeping the archive's owners unless ``chown`` is given (``chmod``
does not apply there). Pass the *merged* rootfs so symlinks and directories of lower layers
are honoured: the destination is resolved chrooted in it, then every write is an ``*at``
call under a directory opened without following symlinks, so nothing lands outside the
rootfs. Sources come from :func:`dockyard.builder.sources.resolve_sources`.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from dockyard.builder.context import is_archive_file
from dockyard.builder.ignore import go_clean
from dockyard.builder.sources import READ_FLAGS, Source
from dockyard.diff.apply import extract_tar_into
from dockyard.diff.safepath import DIR_FLAGS, resolve_in_root
from dockyard.diff.tarstream import CHUNK
from dockyard.errors import DockyardError, InvalidArgument

__all__ = ["copy_into", "normalize_dest"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def normalize_dest(dest: str, workdir: str = "/") -> str:
    """Docker's ``normalizeDest``: a relative destination is joined to the working dir,
    keeping a trailing ``/``; an absolute one is used as it is."""
    if dest.startswith("/"):
        return dest
    joined = go_clean("/" + workdir + "/" + dest)
    return joined + "/" if dest.endswith("/") and not joined.endswith("/") else joined


def _failed(cmd: str, what: str, err: OSError) -> InvalidArgument:
    return InvalidArgument(f"{cmd} failed: failed to copy files: {what}: "
                           f"{(err.strerror or str(err)).lower()}")


class _Copier:
    """One COPY/ADD into one rootfs: owner, mode override, hardlinks seen so far."""

    def __init__(self, root_fd: int, cmd: str, owner: tuple[int, int],
                 chmod: int | None) -> None:
        self.root_fd, self.cmd, self.owner, self.chmod = root_fd, cmd, owner, chmod
        self._token = secrets.token_hex(6)
        self._links: dict[tuple[int, int], tuple[int, str]] = {}
        self._made: list[str] = []          # directories this copy created, parents first
        self._kept: dict[str, int] = {}     # existing directories it writes into → mtime (ns)

    def mkdirs(self, rel: str) -> tuple[int, bool]:
        """Open directory ``rel`` of the rootfs (symlink-free, as resolved), making what is
        missing (0755, owned by the copy's owner); returns the fd and whether the last
        component was created."""
        fd, created, path = os.dup(self.root_fd), False, ""
        try:
            for part in rel.split("/") if rel else []:
                path = f"{path}/{part}" if path else part
                try:
                    child, created = os.open(part, DIR_FLAGS, dir_fd=fd), False
                except FileNotFoundError:
                    os.mkdir(part, 0o700, dir_fd=fd)
                    child, created = os.open(part, DIR_FLAGS, dir_fd=fd), True
                os.close(fd)
                fd = child
                if created:
                    os.fchown(fd, *self.owner)
                    os.fchmod(fd, 0o755)
                    self._made.append(path)
                elif path not in self._made and path not in self._kept:
                    self._kept[path] = os.fstat(fd).st_mtime_ns
        except OSError as err:
            os.close(fd)
            raise _failed(self.cmd, f"mkdir /{rel}", err) from None
        return fd, created

    def settle_times(self, stamp_ns: int) -> None:
        """After the copy: created directories get ``stamp_ns``, existing ones their mtime."""
        for rel, mtime in [*((r, stamp_ns) for r in self._made), *self._kept.items()]:
            fd = os.dup(self.root_fd)
            try:
                for part in rel.split("/"):
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = child
                os.utime(fd, ns=(mtime, mtime))
            except OSError:
                pass  # replaced by a later source of the same copy
            finally:
                os.close(fd)

    def _replace(self, pfd: int, temp: str, name: str) -> None:
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode):
                shutil.rmtree(name, dir_fd=pfd)
        except FileNotFoundError:
            pass
        os.rename(temp, name, src_dir_fd=pfd, dst_dir_fd=pfd)

    def _mode(self, info: os.stat_result) -> int:
        return self.chmod if self.chmod is not None else stat.S_IMODE(info.st_mode)

    def entry(self, src: Path, info: os.stat_result, pfd: int, name: str,
              top_fd: int = -1, rel: str = "") -> None:
        """Copy the non-directory ``src`` to ``name`` under ``pfd`` (replacing it)."""
        temp = f".dockyard-copy-{self._token}-{name}"[:255]
        ino = (info.st_dev, info.st_ino)
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1 and ino in self._links:
            first_fd, first = self._links[ino]
            os.link(first, temp, src_dir_fd=first_fd, dst_dir_fd=pfd, follow_symlinks=False)
        elif stat.S_ISREG(info.st_mode):
            self._file(src, info, pfd, temp)
            if info.st_nlink > 1 and top_fd >= 0:
                self._links[ino] = (top_fd, rel)
        elif stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(src), temp, dir_fd=pfd)
            os.chown(temp, *self.owner, dir_fd=pfd, follow_symlinks=False)
            os.utime(temp, ns=(info.st_mtime_ns,) * 2, dir_fd=pfd, follow_symlinks=False)
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) or \
                stat.S_ISFIFO(info.st_mode):
            os.mknod(temp, stat.S_IFMT(info.st_mode) | 0o600, info.st_rdev, dir_fd=pfd)
            os.chown(temp, *self.owner, dir_fd=pfd, follow_symlinks=False)
            os.chmod(temp, self._mode(info), dir_fd=pfd)
            os.utime(temp, ns=(info.st_mtime_ns,) * 2, dir_fd=pfd, follow_symlinks=False)
        else:
            return  # sockets are not copied, as Docker's tar skips them
        try:
            self._replace(pfd, temp, name)
        finally:
            try:
                os.unlink(temp, dir_fd=pfd)
            except FileNotFoundError:
                pass

    def _file(self, src: Path, info: os.stat_result, pfd: int, temp: str) -> None:
        out = os.open(temp, _CREATE, 0o600, dir_fd=pfd)
        try:
            source = os.open(src, READ_FLAGS)
            try:
                _copy_data(source, out)
            finally:
                os.close(source)
            os.fchown(out, *self.owner)
            os.fchmod(out, self._mode(info))  # after chown, which clears setuid bits
            os.utime(out, ns=(info.st_mtime_ns,) * 2)
        finally:
            os.close(out)

    def contents(self, src: Path, dfd: int) -> None:
        """Copy the contents of directory ``src`` into the open directory ``dfd``."""
        self._links.clear()
        self._tree(src, dfd, dfd)
        self._links.clear()

    def _tree(self, src: Path, dfd: int, top_fd: int, prefix: str = "") -> None:
        with os.scandir(src) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            host, rel = src / name, f"{prefix}{name}"
            info = os.lstat(host)
            if not stat.S_ISDIR(info.st_mode):
                self.entry(host, info, dfd, name, top_fd, rel)
                continue
            try:
                if not stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=dfd)
                    os.mkdir(name, 0o700, dir_fd=dfd)
            except FileNotFoundError:
                os.mkdir(name, 0o700, dir_fd=dfd)
            child = os.open(name, DIR_FLAGS, dir_fd=dfd)
            try:
                os.fchown(child, *self.owner)
                self._tree(host, child, top_fd, rel + "/")
                os.fchmod(child, self._mode(info))
                os.utime(child, ns=(info.st_mtime_ns,) * 2)
            finally:
                os.close(child)


def _copy_data(src: int, dst: int) -> None:
    try:
        while os.copy_file_range(src, dst, CHUNK):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while chunk := os.read(src, CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def _place(copier: _Copier, rootfs: Path, source: Source, dest: str, is_add: bool,
           chown: tuple[int, int] | None) -> None:
    resolved = resolve_in_root(rootfs, dest)
    rel = resolved.relative_to(rootfs).as_posix()
    rel = "" if rel == "." else rel
    if source.is_dir:
        fd, created = copier.mkdirs(rel)
        try:
            if created and copier.chmod is not None:
                os.fchmod(fd, copier.chmod)
            copier.contents(source.host_path, fd)
        finally:
            os.close(fd)
        return
    if is_add and is_archive_file(source.host_path):
        os.close(copier.mkdirs(rel)[0])
        with open(source.host_path, "rb") as archive:
            extract_tar_into(archive, rootfs, dest="/" + rel, owner=chown)
        return
    if dest.endswith("/") or resolved.is_dir():
        parent, name = rel, source.path.rsplit("/", 1)[-1]
    else:
        parent, _, name = rel.rpartition("/")
    fd = copier.mkdirs(parent)[0]
    try:
        copier.entry(source.host_path, os.stat(source.host_path), fd, name)
    finally:
        os.close(fd)


def copy_into(sources: Sequence[Source], dest: str | os.PathLike[str], rootfs: Path,
              chown: tuple[int, int] | None = None, chmod: int | None = None,
              is_add: bool = False, *, workdir: str = "/") -> None:
    """Place ``sources`` at ``dest`` in ``rootfs`` by Docker's COPY/ADD rules (module doc).

    ``dest`` is the instruction's container path as written: relative ones start at
    ``workdir``, and a trailing ``/`` matters — pass a ``str``, as a ``Path`` drops it.
    ``chown`` is numeric (the caller resolves names in the rootfs); None means 0:0 (and, for
    an archive ADD extracts, the archive's own owners). Raises InvalidArgument.
    """
    cmd = "ADD" if is_add else "COPY"
    if not sources:
        raise InvalidArgument(f"{cmd} failed: no source files were specified")
    target = normalize_dest(os.fspath(dest), workdir)
    if len(sources) > 1 and not target.endswith("/"):
        raise InvalidArgument(f"When using {cmd} with more than one source file, "
                              "the destination must be a directory and end with a /")
    root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    copier = _Copier(root_fd, cmd, chown or (0, 0), chmod)
    try:
        for source in sources:
            try:
                _place(copier, rootfs, source, target, is_add, chown)
            except DockyardError:
                raise
            except OSError as err:
                raise _failed(cmd, target, err) from None
        copier.settle_times(max(os.stat(s.host_path).st_mtime_ns for s in sources))
    finally:
        os.close(root_fd)
