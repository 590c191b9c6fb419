"""Docker's multiplexed stdio framing and the duplex pump for hijacked connections.

Without a tty each frame is ``[stream u8, 0, 0, 0, size u32 BE]`` then ``size`` bytes
(stream 0 stdin, 1 stdout, 2 stderr, 3 system error); with a tty the stream is raw.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

STDOUT, STDERR, SYSTEMERR = 1, 2, 3
HEADER = struct.Struct(">BxxxL")


class Reader(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


def _read_exact(reader: Reader, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        data = reader.read1(size - len(out))
        if not data:
            break
        out += data
    return bytes(out)


def demux(reader: Reader) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) frames until the end of the stream."""
    while True:
        head = _read_exact(reader, HEADER.size)
        if len(head) < HEADER.size:
            return
        stream, size = HEADER.unpack(head)
        left = size
        while left:
            data = reader.read1(min(left, 64 * 1024))
            if not data:
                return
            left -= len(data)
            yield stream, data


def raw(reader: Reader) -> Iterator[tuple[int, bytes]]:
    while True:
        data = reader.read1(64 * 1024)
        if not data:
            return
        yield STDOUT, data


def frames(reader: Reader, tty: bool) -> Iterator[tuple[int, bytes]]:
    return raw(reader) if tty else demux(reader)


class SystemError_(Exception):
    """A stream-3 frame: the daemon reported an error in-band."""


def copy_output(reader: Reader, tty: bool, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """Write every frame to its destination, flushing as it goes."""
    for stream, data in frames(reader, tty):
        if stream == SYSTEMERR:
            raise SystemError_(data.decode("utf-8", "replace").strip())
        out = stderr if stream == STDERR else stdout
        out.write(data)
        out.flush()


def _read_input(fd: int) -> bytes:
    try:
        return os.read(fd, 32 * 1024)
    except OSError:
        return b""


CTRL_KEYS = ["ctrl-@"] + [f"ctrl-{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + [
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def detach_sequence(keys: str) -> bytes:
    """moby/term ToBytes: ``ctrl-p,ctrl-q`` → b"\\x10\\x11"."""
    out = bytearray()
    for key in (keys or "ctrl-p,ctrl-q").split(","):
        if len(key) == 1:
            out.append(ord(key))
        elif key in CTRL_KEYS:
            out.append(CTRL_KEYS.index(key))
        elif key == "DEL":
            out.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class EscapeFilter:
    """Holds back a partial detach sequence; reports when the whole sequence was typed."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            out += self.keys[:self.matched]
            self.matched = 0
            if byte == self.keys[0]:
                self.matched = 1
            else:
                out.append(byte)
        return bytes(out), False


def start_input_pump(sock: socket.socket, stdin_fd: int,
                     on_eof: Callable[[], None] | None = None,
                     escape: bytes | None = None,
                     on_detach: Callable[[], None] | None = None) -> threading.Thread:
    """Copy stdin to the socket in a daemon thread; half-close the socket on EOF.

    With ``escape`` (tty sessions), typing that sequence detaches: the connection is shut
    down and ``on_detach`` runs."""
    escaper = EscapeFilter(escape) if escape else None

    def pump() -> None:
        try:
            while True:
                data = _read_input(stdin_fd)
                if not data:
                    break
                if escaper is not None:
                    data, detached = escaper.feed(data)
                    if detached:
                        if data:
                            sock.sendall(data)
                        if on_detach:
                            on_detach()
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                if data:
                    sock.sendall(data)
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if on_eof:
            on_eof()
    thread = threading.Thread(target=pump, name="stdin-pump", daemon=True)
    thread.start()
    return thread
