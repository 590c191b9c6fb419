"""Named network namespaces kept alive by a bind mount, and running code inside one.

A namespace is a file: ``create(path)`` starts a short-lived thread that unshares its own
network namespace (``unshare(CLONE_NEWNET)`` only affects the calling thread), brings ``lo``
up and bind-mounts ``/proc/thread-self/ns/net`` onto ``path``; the thread then ends, and the
mount keeps the namespace alive until ``delete(path)`` unmounts and unlinks it.

``run_in(path, fn)`` runs ``fn`` on a fresh thread that first ``setns``-es into the namespace.
Only that thread changes namespace and it is discarded afterwards, so callers on other threads
are never affected and there is no global state. Sockets and child processes created by ``fn``
belong to the namespace (``fork`` copies the calling thread's namespaces).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.host.mounts import MS_BIND, mount, unmount

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

T = TypeVar("T")


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise Internal(f"{what}: {os.strerror(err)}")


def _loopback_up() -> None:
    """Set IFF_UP on ``lo`` of the calling thread's namespace (one ioctl, no netlink)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def _on_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a new thread that is thrown away afterwards; re-raise what it raised."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=body, name="dy-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def is_netns(path: Path) -> bool:
    """True when ``path`` is a mounted namespace file."""
    return os.path.ismount(path)


def create(path: Path) -> None:
    """Create a new network namespace pinned at ``path`` with ``lo`` up.

    Conflict if ``path`` already holds one; a leftover empty file is reused.
    """
    if is_netns(path):
        raise Conflict(f"network namespace {path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o444, exist_ok=True)

    def pin() -> None:
        _check(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _loopback_up()
        mount("/proc/thread-self/ns/net", path, None, MS_BIND)

    try:
        _on_thread(pin)
    except BaseException:
        _remove_file(path)
        raise


def delete(path: Path) -> None:
    """Unmount and remove a namespace file; a missing one is not an error.

    The namespace itself ends when the last process in it exits (its links go with it).
    """
    unmount(path, detach=True)
    _remove_file(path)


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def run_in(path: Path, fn: Callable[[], T]) -> T:
    """Run ``fn()`` inside the network namespace at ``path`` and return its result.

    ``path`` may be a namespace file made by ``create`` or ``/proc/<pid>/ns/net``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} not found") from None

    def inside() -> T:
        try:
            if _libc().setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                if err == errno.EINVAL:
                    raise NotFound(f"{path} is not a network namespace")
                raise Internal(f"setns {path}: {os.strerror(err)}")
        finally:
            os.close(fd)
        return fn()

    return _on_thread(inside)


def open_fd(path: Path) -> int:
    """An O_RDONLY descriptor of the namespace (for netlink's IFLA_NET_NS_FD); caller closes."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} not found") from None
