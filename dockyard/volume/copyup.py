"""Image content meets volumes: Docker's copy-up, and mountpoints kept out of the upper dir.

:func:`copy_up` — when a new, empty volume is first mounted where the image has a directory,
Docker copies that directory (owners, modes, xattrs, times, symlinks, devices, hard links
within) into the volume, and gives the volume root the directory's owner and mode. The tree
is read and written through directory fds with ``O_NOFOLLOW``: a symlink in the rootfs is
copied as a symlink, never followed out of the rootfs.

:func:`prepare_mountpoints` — the runtime creates a missing mount destination in the rootfs,
which would land in the container's upper dir (``docker diff`` ``A /data``, and ``docker
commit`` would carry the empty directory). Made beforehand in the per-container init layer (an
overlay lower dir), they stay out of both. It reads the image layers as overlayfs would
(whiteouts, opaque directories, symlinks resolved inside the root) and must run before the
overlay is mounted: lower dirs must not change under a mounted overlay.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from dockyard.diff.safepath import DIR_FLAGS, MAX_SYMLINKS, open_dir_in_root, split_path
from dockyard.errors import InvalidArgument
from dockyard.volume.specs import MountSpec

_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
_OPAQUE = "trusted.overlay.opaque"
_IGNORED = (errno.ENOTSUP, errno.EPERM, errno.ENODATA, errno.EOPNOTSUPP)
_CHUNK = 1 << 20

Links = dict[tuple[int, int], str]  # (st_dev, st_ino) of a source file -> path in the volume


# -- copy-up ----------------------------------------------------------------------------------
def copy_up(rootfs: Path, destination: str, volume_data: Path) -> bool:
    """Copy the image's ``destination`` (seen inside ``rootfs``) into an empty volume.

    Returns True if it copied; False when the volume is not empty, or ``destination`` is
    missing or not a directory in the rootfs (then Docker copies nothing either).
    """
    root_fd = os.open(rootfs, DIR_FLAGS)
    try:
        try:
            src_fd, _ = open_dir_in_root(root_fd, destination)
        except (FileNotFoundError, NotADirectoryError):
            return False
    finally:
        os.close(root_fd)
    try:
        dst_fd = os.open(volume_data, DIR_FLAGS)
        try:
            if os.listdir(dst_fd):
                return False
            _copy_children(src_fd, dst_fd, dst_fd, "", {})
            _copy_attrs(src_fd, dst_fd, os.fstat(src_fd))
            return True
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_children(src: int, dst: int, dst_root: int, prefix: str, links: Links) -> None:
    with os.scandir(src) as it:
        entries = [(entry.name, entry.stat(follow_symlinks=False)) for entry in it]
    for name, info in entries:
        try:
            _copy_entry(src, dst, dst_root, prefix + name, name, info, links)
        except FileExistsError:
            continue  # someone else wrote it meanwhile (a shared volume): theirs wins


def _copy_entry(src: int, dst: int, dst_root: int, rel: str, name: str, info: os.stat_result,
                links: Links) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        os.mkdir(name, 0o700, dir_fd=dst)
        sub_src = os.open(name, DIR_FLAGS, dir_fd=src)
        try:
            sub_dst = os.open(name, DIR_FLAGS, dir_fd=dst)
            try:
                _copy_children(sub_src, sub_dst, dst_root, rel + "/", links)
                _copy_attrs(sub_src, sub_dst, info)
            finally:
                os.close(sub_dst)
        finally:
            os.close(sub_src)
    elif stat.S_ISREG(mode):
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in links:
            os.link(links[key], name, src_dir_fd=dst_root, dst_dir_fd=dst, follow_symlinks=False)
            return
        _copy_file(src, dst, name, info)
        if info.st_nlink > 1:
            links[key] = rel
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        os.chown(name, info.st_uid, info.st_gid, dir_fd=dst, follow_symlinks=False)
        os.utime(name, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=dst,
                 follow_symlinks=False)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(name, mode, info.st_rdev, dir_fd=dst)
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
        try:
            path = f"/proc/self/fd/{fd}"
            os.chown(path, info.st_uid, info.st_gid)
            os.chmod(path, stat.S_IMODE(mode))
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(fd)
    # sockets are not copied (as Docker)


def _copy_file(src: int, dst: int, name: str, info: os.stat_result) -> None:
    in_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        out_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dst)
        try:
            while chunk := os.read(in_fd, _CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out_fd, view):]
            _copy_attrs(in_fd, out_fd, info)
        finally:
            os.close(out_fd)
    finally:
        os.close(in_fd)


def _copy_attrs(src_fd: int, dst_fd: int, info: os.stat_result) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, times — on open fds."""
    os.fchown(dst_fd, info.st_uid, info.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(info.st_mode))
    try:
        names = os.listxattr(src_fd)
    except OSError as err:
        if err.errno not in _IGNORED:
            raise
        names = []
    for attr in names:
        if attr.startswith(_OVERLAY_XATTRS):
            continue
        try:
            os.setxattr(dst_fd, attr, os.getxattr(src_fd, attr))
        except OSError as err:
            if err.errno not in _IGNORED:
                raise
    os.utime(dst_fd, ns=(info.st_atime_ns, info.st_mtime_ns))


# -- the image as overlayfs shows it ----------------------------------------------------------
def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def union_lstat(layers: Sequence[Path], parts: Sequence[str]) -> tuple[os.stat_result, str] | None:
    """``lstat`` of ``/parts…`` in the overlay of ``layers`` (top first), without mounting:
    the stat and the layer path it comes from, or None if the merged view has nothing."""
    dirs: list[str] = []
    for layer in layers:
        dirs.append(os.fspath(layer))
        if _opaque(dirs[-1]):
            break
    found: tuple[os.stat_result, str] | None = None
    for part in parts:
        if not dirs:
            return None
        found, below = None, []
        for directory in dirs:
            path = f"{directory}/{part}"
            info = _lstat(path)
            if info is None:
                continue
            if found is None:
                if _is_whiteout(info):
                    return None
                found = (info, path)
            elif not stat.S_ISDIR(info.st_mode):
                break  # a whiteout or a file below a directory ends the merge
            if not stat.S_ISDIR(found[0].st_mode):
                break
            below.append(path)
            if _opaque(path):
                break
        if found is None:
            return None
        dirs = below
    return found


def union_resolve(layers: Sequence[Path], path: str) -> list[str]:
    """The components of ``path`` with every symlink in the merged view followed inside the
    root (what :func:`dockyard.diff.safepath.resolve_in_root` does on a mounted rootfs)."""
    todo = list(reversed(split_path(path)))
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        hit = union_lstat(layers, [*done, part])
        if hit is None or not stat.S_ISLNK(hit[0].st_mode):
            done.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise InvalidArgument(f"{path}: too many levels of symbolic links")
        target = os.readlink(hit[1])
        if target.startswith("/"):
            done.clear()
        todo.extend(reversed(split_path(target)))
    return done


# -- mountpoints in the init layer ------------------------------------------------------------
def _wants_file(spec: MountSpec) -> bool:
    return spec.type == "bind" and os.path.exists(spec.source) and not os.path.isdir(spec.source)


def prepare_mountpoints(init: Path, lowers: Sequence[Path], specs: Iterable[MountSpec]
                        ) -> list[str]:
    """Create each destination missing from the image in ``init`` (a directory, or an empty
    file for a bind of a file). Parents the image has are made with its owner, mode and times
    (an init-layer directory shadows the attributes of the directories below it). Returns the
    paths created. A volume or tmpfs over an existing non-directory is Docker's error."""
    layers = [init, *lowers]
    created: list[str] = []
    for spec in specs:
        parts = union_resolve(layers, spec.destination)
        hit = union_lstat(layers, parts)
        if hit is not None:
            if spec.type != "bind" and not stat.S_ISDIR(hit[0].st_mode):
                raise InvalidArgument("cannot mount volume over existing file, file exists "
                                      f"{spec.destination}")
            continue
        if _make_in_init(init, layers, parts, _wants_file(spec)):
            created.append("/" + "/".join(parts))
    return created


def _make_in_init(init: Path, layers: Sequence[Path], parts: list[str], is_file: bool) -> bool:
    made: list[tuple[Path, os.stat_result]] = []
    for depth in range(1, len(parts)):
        path = init.joinpath(*parts[:depth])
        if path.is_dir() and not path.is_symlink():
            continue
        hit = union_lstat(layers, parts[:depth])
        if hit is not None and not stat.S_ISDIR(hit[0].st_mode):
            return False  # a file in the way: the runtime reports it
        try:
            path.mkdir(mode=0o700)
        except (FileExistsError, NotADirectoryError):
            return False  # an init-layer file in the way (say /etc/hostname/x)
        os.chmod(path, 0o755)
        if hit is not None:
            made.append((path, hit[0]))
    target = init.joinpath(*parts)
    try:
        if is_file:
            target.touch(mode=0o600, exist_ok=False)
        else:
            target.mkdir(mode=0o700)
    except (FileExistsError, NotADirectoryError):
        return False
    os.chmod(target, 0o644 if is_file else 0o755)
    for path, info in reversed(made):  # deepest first: a child's mkdir changes its parent
        os.chown(path, info.st_uid, info.st_gid)
        os.chmod(path, stat.S_IMODE(info.st_mode))
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return True
