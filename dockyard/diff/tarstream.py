"""Tar framing for layers: a strict streaming reader (the writer is in ``tarwrite``).

Own framing rather than :mod:`tarfile` because layers need things tarfile does not give in
stream mode: strict end-of-archive checking (a tar cut at a header boundary must be an
error, tarfile takes it for the end), raw-bytes PAX values (binary xattrs), nanosecond PAX
mtimes, 1 MiB buffers end to end, and the sha256 of the uncompressed bytes computed while
reading (the diffID). Formats read: ustar, GNU (long names/links, base-256 numbers), PAX
(``path``, ``linkpath``, ``size``, ``uid``, ``gid``, ``mtime``, ``SCHILY.xattr.*``), v7.
Written: ustar headers, plus a PAX header only when a field does not fit (long names,
xattrs, big numbers), records sorted, uname/gname empty — byte-identical for equal input.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.errors import InvalidArgument

CHUNK = 1 << 20
BLOCK = 512
MAX_SPECIAL = 1 << 20  # largest PAX / GNU long-name payload accepted (Go's limit too)
_ZERO_BLOCK = bytes(BLOCK)

REG, LINK, SYMLINK, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_HEADER_ONLY = frozenset({LINK, SYMLINK, CHR, BLK, DIR, FIFO})
XATTR_PREFIX = "SCHILY.xattr."


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One archive member; ``name`` and ``linkname`` are raw (uncleaned) paths."""

    name: str
    kind: str  # one of REG, LINK, SYMLINK, CHR, BLK, DIR, FIFO
    mode: int = 0o644  # permission bits incl. setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _invalid(why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid tar stream: {why}")


# -- decompression + hashing ----------------------------------------------------------------
class _Prefixed:
    """A reader that first returns ``head`` (the sniffed magic), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(data):]
            return data
        return self._raw.read(n if n >= 0 else CHUNK)

    def readable(self) -> bool:
        return True


def _zstd_reader(raw: Any) -> Any:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InvalidArgument("zstd-compressed layers need the zstandard package") from None
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                      read_size=CHUNK)


class HashingSource:
    """The uncompressed bytes of a (plain, gzip, bzip2, xz or zstd) stream, sha256-hashed."""

    def __init__(self, stream: BinaryIO) -> None:
        head = b""
        while len(head) < 6:
            more = stream.read(6 - len(head))
            if not more:
                break
            head += more
        raw: Any = _Prefixed(head, stream)
        self.compression = "none"
        if head.startswith(b"\x1f\x8b"):
            self.compression, raw = "gzip", gzip.GzipFile(fileobj=raw, mode="rb")
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            self.compression, raw = "zstd", _zstd_reader(raw)
        elif head.startswith(b"BZh"):
            self.compression, raw = "bzip2", bz2.BZ2File(raw)
        elif head.startswith(b"\xfd7zXZ\x00"):
            self.compression, raw = "xz", lzma.LZMAFile(raw)
        self._raw = raw
        self._hash = hashlib.sha256()
        self.total = 0

    def read(self, n: int = CHUNK) -> bytes:
        try:
            data: bytes = self._raw.read(n)
        except Exception as err:  # noqa: BLE001 - gzip/bz2/lzma/zstd each raise their own
            what = "data" if self.compression == "none" else f"{self.compression} data"
            raise _invalid(f"cannot read {what}: {err}") from None
        if data:
            self._hash.update(data)
            self.total += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


# -- reading ----------------------------------------------------------------------------------
def _number(raw: bytes, what: str) -> int:
    if raw and raw[0] & 0x80:  # GNU base-256
        if raw[0] == 0xFF:
            return int.from_bytes(raw, "big", signed=True)
        return int.from_bytes(bytes([raw[0] & 0x7F]) + raw[1:], "big")
    text = raw.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _invalid(f"bad {what} field {raw!r}") from None


def _cstr(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    if not (whole or frac) or not (whole + frac).isdigit():
        raise _invalid(f"bad PAX mtime {text!r}")
    ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9])
    return -ns if negative else ns


def _parse_pax(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if not data[pos:].strip(b"\0"):
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1:end] != b"\n":
            raise _invalid("malformed PAX record")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq:
            raise _invalid("malformed PAX record")
        records[_decode(key)] = value
        pos = end
    return records


class TarReader:
    """Iterates the members of a tar stream; call :meth:`copy_data` or just move on."""

    def __init__(self, source: HashingSource, *, lenient_end: bool = False) -> None:
        self.source = source
        # Go's archive/tar (and so Docker) ends an archive at EOF on a header boundary or
        # right after a member's data: the docker CLI sends such tars (``build -f -``).
        self.lenient_end = lenient_end
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current member not yet consumed
        self._pad = 0
        self._done = False

    def _fill(self) -> bool:
        data = self.source.read(CHUNK)
        if not data:
            return False
        rest = self._buf[self._pos:]
        self._buf = rest + data if rest else data
        self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise _invalid("unexpected end of data (truncated archive)")
        data = self._buf[self._pos:self._pos + n]
        self._pos += n
        return data

    def _consume(self, n: int, fd: int | None) -> None:
        while n:
            if self._pos >= len(self._buf) and not self._fill():
                raise _invalid("unexpected end of data (truncated archive)")
            step = min(n, len(self._buf) - self._pos)
            if fd is not None:
                view = memoryview(self._buf)[self._pos:self._pos + step]
                while view:
                    view = view[os.write(fd, view):]
            self._pos += step
            n -= step

    def _at_eof(self) -> bool:
        return self._pos >= len(self._buf) and not self._fill()

    def copy_data(self, fd: int) -> None:
        """Write the current member's data to ``fd`` (exactly ``size`` bytes)."""
        left, self._left = self._left, 0
        self._consume(left, fd)

    def _special(self, size: int) -> bytes:
        if size > MAX_SPECIAL:
            raise _invalid("extended header too large")
        data = self._take(size)
        self._take(-size % BLOCK)
        return data

    def next(self) -> TarEntry | None:
        """The next member, or None at the end-of-archive marker (required)."""
        if self._done:
            return None
        self._consume(self._left, None)
        if self.lenient_end and self._at_eof():
            self._done = True
            return None
        self._consume(self._pad, None)
        self._left = self._pad = 0
        pax: dict[str, bytes] = {}
        long_name = long_link = None
        while True:
            while len(self._buf) - self._pos < BLOCK and self._fill():
                pass
            pending = bool(pax) or long_name is not None or long_link is not None
            if self._pos == len(self._buf) and (
                    self.source.total == 0 or (self.lenient_end and not pending)):
                self._done = True  # a zero-byte stream is an empty layer, as for Docker
                return None
            block = self._take(BLOCK)
            if block == _ZERO_BLOCK:
                if pax or long_name is not None or long_link is not None:
                    raise _invalid("extended header without a member")
                self._done = True
                return None
            self._check_sum(block)
            kind = chr(block[156]) if block[156] else REG
            size = _number(block[124:136], "size")
            if kind == "x":
                pax.update(_parse_pax(self._special(size)))
            elif kind == "g":
                self._special(size)  # global PAX headers are ignored, as Docker does
            elif kind == "L":
                long_name = _cstr(self._special(size))
            elif kind == "K":
                long_link = _cstr(self._special(size))
            else:
                return self._entry(block, kind, size, pax, long_name, long_link)

    @staticmethod
    def _check_sum(block: bytes) -> None:
        stored = _number(block[148:156], "checksum")
        unsigned = sum(block) - sum(block[148:156]) + 256
        if stored != unsigned:
            high = sum(1 for b in block[:148] + block[156:] if b > 127)
            if stored != unsigned - 256 * high:  # old tars summed signed chars
                raise _invalid("bad header checksum (not a tar archive?)")

    def _entry(self, block: bytes, kind: str, size: int, pax: dict[str, bytes],
               long_name: bytes | None, long_link: bytes | None) -> TarEntry:
        name = _cstr(block[0:100])
        if block[257:263] == b"ustar\0" and block[345] and long_name is None:
            name = _cstr(block[345:500]) + b"/" + name
        name = long_name if long_name is not None else name
        link = long_link if long_link is not None else _cstr(block[157:257])
        uid = _number(block[108:116], "uid")
        gid = _number(block[116:124], "gid")
        mtime_ns = _number(block[136:148], "mtime") * 1_000_000_000
        xattrs: dict[str, bytes] = {}
        for key, value in pax.items():
            if key.startswith("GNU.sparse."):
                raise InvalidArgument(f'invalid tar entry "{_decode(name)}": '
                                      "sparse files are not supported")
            if key.startswith(XATTR_PREFIX):
                xattrs[key[len(XATTR_PREFIX):]] = value
            elif not value:
                continue  # an empty record unsets the keyword
            elif key == "path":
                name = value
            elif key == "linkpath":
                link = value
            elif key in ("size", "uid", "gid"):
                if not value.isdigit():
                    raise _invalid(f"bad PAX {key} {value!r}")
                if key == "size":
                    size = int(value)
                elif key == "uid":
                    uid = int(value)
                else:
                    gid = int(value)
            elif key == "mtime":
                mtime_ns = _pax_time_ns(value)
        text = _decode(name)
        if kind == "7" or (kind == REG and not block[156]):
            kind = DIR if text.endswith("/") and not block[156] else REG
        if kind not in (REG, *_HEADER_ONLY):
            raise InvalidArgument(f'invalid tar entry "{text}": unsupported type {kind!r}')
        if size < 0:
            raise _invalid(f'negative size for "{text}"')
        if kind in _HEADER_ONLY:
            size = 0  # as Go's archive/tar: these types carry no data whatever size says
        self._left, self._pad = size, -size % BLOCK
        return TarEntry(text, kind, _number(block[100:108], "mode") & 0o7777, uid, gid, size,
                        mtime_ns, _decode(link), _number(block[329:337], "devmajor"),
                        _number(block[337:345], "devminor"), xattrs)
