"""The directory fds of one extraction (see :mod:`dockyard.diff.extract`).

A root fd, the start directory's fd, and an LRU cache of open directory fds keyed by a
member's lexical parent path under the start, so a member costs one ``openat`` of its own
name rather than a walk. A symlink met on the way is resolved chrooted at the root. Fds the
cache lets go of are closed by :meth:`DirFds.close_stale`, once the member that dropped them
is done (its caller may still hold one).
"""
from __future__ import annotations

import errno
import os
from collections import OrderedDict
from contextlib import suppress
from pathlib import Path

from dockyard.diff.safepath import DIR_FLAGS, open_dir_in_root
from dockyard.errors import InvalidArgument, NotFound

_CACHE_MAX = 128


class DirFds:
    """Open directory fds under one extraction's start directory."""

    def __init__(self, root: Path, start: str) -> None:
        self._cache: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._stale: list[int] = []
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._base_fd, self._base = open_dir_in_root(self._root_fd, start)
        except FileNotFoundError:
            os.close(self._root_fd)
            raise NotFound(f"Could not find the file {start} in container") from None
        except NotADirectoryError:
            os.close(self._root_fd)
            raise InvalidArgument("extraction point is not a directory") from None

    def close(self) -> None:
        self.drop()
        self.close_stale()
        os.close(self._base_fd)
        os.close(self._root_fd)

    def get(self, rel: str, create: bool = True) -> tuple[int, str]:
        """Open fd and resolved path of directory ``rel`` (lexical, under the start)."""
        if not rel:
            return self._base_fd, self._base
        hit = self._cache.get(rel)
        if hit is not None:
            self._cache.move_to_end(rel)
            return hit
        parts = rel.split("/")
        i = len(parts) - 1
        current = (self._base_fd, self._base)
        while i > 0:
            key = "/".join(parts[:i])
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                current = hit
                break
            i -= 1
        for j in range(i, len(parts)):
            current = self._child_dir(*current, parts[j], create)
            self.remember("/".join(parts[:j + 1]), current)
        return current

    def cached(self, rel: str) -> tuple[int, str] | None:
        """The cached fd and resolved path of ``rel``, if it is open."""
        return self._cache.get(rel)

    def _child_dir(self, pfd: int, presolved: str, name: str, create: bool) -> tuple[int, str]:
        joined = f"{presolved}/{name}" if presolved else name
        try:
            return os.open(name, DIR_FLAGS, dir_fd=pfd), joined
        except FileNotFoundError:
            if not create:
                raise
            with suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=pfd)
                fd = os.open(name, DIR_FLAGS, dir_fd=pfd)
                os.fchmod(fd, 0o755)  # whatever the umask
                return fd, joined
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        return open_dir_in_root(self._root_fd, joined, create=create)  # symlink: chrooted

    def remember(self, rel: str, value: tuple[int, str]) -> None:
        old = self._cache.pop(rel, None)
        if old is not None:
            self._stale.append(old[0])
        self._cache[rel] = value
        while len(self._cache) > _CACHE_MAX:
            self._stale.append(self._cache.popitem(last=False)[1][0])

    def drop(self) -> None:
        """Forget every cached fd (closed after the current member: callers may hold one)."""
        self._stale.extend(fd for fd, _ in self._cache.values())
        self._cache.clear()

    def close_stale(self) -> None:
        while self._stale:
            os.close(self._stale.pop())

