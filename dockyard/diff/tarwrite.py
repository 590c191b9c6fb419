"""Writing reproducible tar streams: ustar headers, a PAX header only when needed.

A PAX header (records sorted) is added only for what ustar cannot hold: names or link
targets over 100 bytes, xattrs (``SCHILY.xattr.*``), numbers too big. uname/gname stay empty,
mtimes are whole seconds, the archive ends with two zero blocks and no record padding (as
Go's archive/tar): equal input gives byte-identical output.
"""
from __future__ import annotations

import hashlib
import os
import struct
from typing import Any, Protocol

from dockyard.diff.tarstream import BLOCK, CHUNK, REG, XATTR_PREFIX, TarEntry


class Sink(Protocol):
    """Where archives go: anything with ``write`` (a file, a socket writer, a spool)."""

    def write(self, data: bytes | bytearray, /) -> Any: ...


def _octal(value: int, width: int) -> bytes:
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    if value < 0:  # only reached for devices numbers; base-256 as GNU tar does
        return value.to_bytes(width, "big", signed=True)
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def _pax_record(key: str, value: bytes) -> bytes:
    body = key.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    length = len(body) + 1
    length += len(str(length))
    if len(str(length)) + 1 + len(body) != length:
        length += 1
    return str(length).encode() + b" " + body


# name mode uid gid size mtime chksum type linkname magic+version uname gname major minor
# prefix padding: the 512-byte ustar header
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12s")


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, kind: str,
           link: bytes, major: int, minor: int) -> bytes:
    block = _USTAR.pack(name, _octal(mode, 8), _octal(uid, 8), _octal(gid, 8),
                        _octal(size, 12), _octal(mtime, 12), b"        ", kind.encode(), link,
                        b"ustar\x0000", b"", b"", _octal(major, 8), _octal(minor, 8), b"", b"")
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def encode_header(entry: TarEntry) -> bytes:
    """The header block(s) of ``entry``: a PAX header first only when something needs it."""
    name = entry.name.encode("utf-8", "surrogateescape")
    link = entry.linkname.encode("utf-8", "surrogateescape")
    mtime = entry.mtime_ns // 1_000_000_000
    pax: dict[str, bytes] = {}
    if len(name) > 100:
        pax["path"] = name
    if len(link) > 100:
        pax["linkpath"] = link
    for key, value, width in (("uid", entry.uid, 8), ("gid", entry.gid, 8),
                              ("size", entry.size, 12), ("mtime", mtime, 12)):
        if not 0 <= value < 8 ** (width - 1):
            pax[key] = str(value).encode()
    for xattr, raw in entry.xattrs.items():
        pax[XATTR_PREFIX + xattr] = raw
    header = _ustar(name[:100], entry.mode & 0o7777, 0 if "uid" in pax else entry.uid,
                    0 if "gid" in pax else entry.gid, 0 if "size" in pax else entry.size,
                    0 if "mtime" in pax else mtime, entry.kind, link[:100],
                    entry.devmajor, entry.devminor)
    if not pax:
        return header
    data = b"".join(_pax_record(key, pax[key]) for key in sorted(pax))
    ext = _ustar(b"././@PaxHeader", 0, 0, 0, len(data), 0, "x", b"", 0, 0)
    return ext + data + bytes(-len(data) % BLOCK) + header


class TarWriter:
    """Writes a tar stream to ``out`` in large chunks, hashing every byte written."""

    def __init__(self, out: Sink) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self._pending = bytearray()
        self.size = 0

    def _write(self, data: bytes | bytearray) -> None:
        self._hash.update(data)
        self._out.write(data)
        self.size += len(data)

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, bytearray()
            self._write(pending)

    def _emit(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= CHUNK:
            self._flush()

    def add(self, entry: TarEntry, fd: int | None = None) -> None:
        """Write ``entry``; a regular file's ``size`` bytes are read from ``fd``.

        A file that shrank meanwhile is padded with zeros and one that grew is cut at
        ``size``, so the archive stays well-formed.
        """
        self._emit(encode_header(entry))
        if entry.kind != REG or not entry.size:
            return
        left = entry.size
        while left:
            chunk = os.read(fd, min(left, CHUNK)) if fd is not None else b""
            if not chunk:
                chunk = bytes(min(left, CHUNK))
            left -= len(chunk)
            if len(chunk) >= 1 << 16:
                self._flush()
                self._write(chunk)
            else:
                self._emit(chunk)
        self._emit(bytes(-entry.size % BLOCK))

    def close(self) -> tuple[str, int]:
        """Write the end-of-archive marker; returns (``sha256:…`` digest, bytes written)."""
        self._emit(bytes(2 * BLOCK))
        self._flush()
        return "sha256:" + self._hash.hexdigest(), self.size
