"""Resolve paths inside a root directory as if the process were chrooted into it.

Every symlink met on the way is followed the way the kernel would follow it *inside* the
container: an absolute target restarts at the root, ``..`` never climbs above the root, so the
result always lies inside the root, whatever the tree contains.

Two flavours:

* :func:`resolve_in_root` works on path strings (``lstat``/``readlink``) and returns a path.
  Good for ``docker cp`` stat, the builder's COPY destination, the working dir; it is a
  check-then-use API, so a tree that changes concurrently (a running container) can race it.
* :func:`open_dir_in_root` walks with directory file descriptors (``openat`` with
  ``O_NOFOLLOW`` one component at a time) and returns an open directory fd: nothing can be
  swapped under it. Extraction and archiving use it, then act with ``*at`` calls on names.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dockyard.errors import InvalidArgument

MAX_SYMLINKS = 40  # Linux's MAXSYMLINKS
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_path(path: str) -> list[str]:
    """The components of ``path``, without empty and ``.`` components (``..`` is kept)."""
    return [part for part in path.split("/") if part and part != "."]


def clean_relative(path: str) -> str | None:
    """``path`` made relative and lexically cleaned (Docker strips a leading ``/``).

    Returns ``""`` for the root itself and None when a ``..`` climbs above the start.
    """
    parts: list[str] = []
    for part in path.split("/"):
        if not part or part == ".":
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _loop_error(path: str) -> InvalidArgument:
    return InvalidArgument(f"{path}: too many levels of symbolic links")


def resolve_in_root(root: Path, path: str, follow_final: bool = True) -> Path:
    """The host path of ``path`` seen from inside ``root`` with every symlink chrooted.

    ``path`` may be absolute or relative (both start at ``root``). Components that do not
    exist are kept as they are, so the result may not exist. With ``follow_final=False`` a
    final symlink is returned itself rather than followed, unless ``path`` ends with ``/``
    or ``/.`` (which, as for the kernel, asks for the directory it points to). Raises
    InvalidArgument on a symlink loop.
    """
    if "\0" in path:
        raise InvalidArgument(f"invalid path {path!r}")
    if path.endswith("/") or path.endswith("/."):
        follow_final = True
    base = os.fspath(root)
    todo = split_path(path)
    todo.reverse()
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        if not todo and not follow_final:
            done.append(part)
            break
        candidate = os.path.join(base, *done, part)
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(info.st_mode):
            done.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise _loop_error(path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            done.clear()
        todo.extend(reversed(split_path(target)))
    return Path(base, *done)


def open_dir_in_root(root_fd: int, path: str, *, create: bool = False,
                     mode: int = 0o755) -> tuple[int, str]:
    """Open directory ``path`` (relative to the directory ``root_fd``), symlinks chrooted.

    Returns ``(fd, resolved)``: a new ``O_RDONLY|O_DIRECTORY`` fd the caller must close and
    the resolved path relative to the root (``""`` for the root). With ``create`` missing
    directories are made with ``mode`` (like ``mkdir -p`` inside the root). Raises
    FileNotFoundError / NotADirectoryError (plain OSErrors, for the caller to word) and
    InvalidArgument on a symlink loop.
    """
    todo = split_path(path)
    todo.reverse()
    fds: list[int] = []
    names: list[str] = []
    hops = 0
    try:
        while todo:
            part = todo.pop()
            if part == "..":
                if names:
                    names.pop()
                    os.close(fds.pop())
                continue
            parent = fds[-1] if fds else root_fd
            try:
                fds.append(os.open(part, DIR_FLAGS, dir_fd=parent))
                names.append(part)
                continue
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=parent)
                except FileExistsError:
                    pass
                hops += 1  # bounds a (malicious) create/replace race too
                if hops > MAX_SYMLINKS:
                    raise _loop_error(path) from None
                todo.append(part)
                continue
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
            info = os.stat(part, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         "/".join([*names, part]))
            hops += 1
            if hops > MAX_SYMLINKS:
                raise _loop_error(path)
            target = os.readlink(part, dir_fd=parent)
            if target.startswith("/"):
                while fds:
                    os.close(fds.pop())
                names.clear()
            todo.extend(reversed(split_path(target)))
        result = fds.pop() if fds else os.dup(root_fd)
        return result, "/".join(names)
    finally:
        for fd in fds:
            os.close(fd)
