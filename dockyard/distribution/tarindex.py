"""Reading an image archive: spool the input once (decompressed), index its members safely.

The input (an HTTP request body) is read exactly once into an anonymous temp file, gunzipped
(or bunzip2/unxz/unzstd) on the way, so the tar can then be read with random access. Member
names are cleaned and any name or link target that is absolute or climbs out with ``..`` is
refused: nothing is ever extracted, members are only read through the index.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import posixpath
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO, Self

from dockyard.errors import DockyardError, InvalidArgument
from dockyard.types import digest as digests
from dockyard.util import streams

CHUNK = 1 << 20
MAX_JSON = 32 << 20  # manifests, indexes and configs are small; refuse memory bombs
MAX_LINK_HOPS = 16
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def invalid(message: str) -> InvalidArgument:
    return InvalidArgument(f"invalid archive: {message}")


def is_data_error(exc: BaseException) -> bool:
    """True for errors caused by bad input bytes (not by the disk or a bug)."""
    if isinstance(exc, DockyardError):
        return False
    if isinstance(exc, OSError):
        return exc.errno is None  # BadGzipFile, bz2's "Invalid data stream"
    return isinstance(exc, (EOFError, ValueError, zlib.error, lzma.LZMAError, tarfile.TarError)) \
        or type(exc).__name__ == "ZstdError"


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            data, self._head = self._head[:len(buffer)], self._head[len(buffer):]
        else:
            data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, size: int) -> bytes:
    head = b""
    while len(head) < size:
        data = stream.read(size - len(head))
        if not data:
            break
        head += data
    return head


def decompressing(stream: BinaryIO) -> BinaryIO:
    """``stream`` decompressed according to its magic bytes (plain passes through)."""
    head = _read_head(stream, 6)
    raw = io.BufferedReader(_Prefixed(head, stream), CHUNK)
    if head.startswith(streams.GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(_BZIP2_MAGIC):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if head.startswith(streams.ZSTD_MAGIC):
        return streams.decompressed(raw)
    return raw


def spool(stream: BinaryIO, tmp_dir: Path | None = None) -> BinaryIO:
    """Read ``stream`` to its end into an anonymous temp file, decompressed; rewound."""
    spooled = tempfile.TemporaryFile(dir=tmp_dir)  # noqa: SIM115 - returned open
    try:
        streams.copy(decompressing(stream), spooled)
        spooled.seek(0)
        return spooled
    except BaseException as exc:
        spooled.close()
        if is_data_error(exc):
            raise invalid(f"cannot decompress: {exc}") from None
        raise


def clean_name(name: str) -> str:
    """A member name made canonical (``./a//b/`` → ``a/b``); absolute or ``..`` is refused."""
    if name.startswith("/") or "\0" in name:
        raise invalid(f"member name {name!r} is not a relative path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise invalid(f"member name {name!r} points outside the archive")
    return "/".join(parts)


def _link_target(name: str, member: tarfile.TarInfo) -> str:
    """Where a symlink or hard link member points, as a clean archive name."""
    if member.islnk():
        return clean_name(member.linkname)
    if member.linkname.startswith("/"):
        raise invalid(f"symlink {name!r} points outside the archive")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
    if joined == ".." or joined.startswith("../"):
        raise invalid(f"symlink {name!r} points outside the archive")
    return clean_name(joined)


class HashingReader:
    """Reads ``source`` while hashing (sha256) and counting the bytes read."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class TarIndex:
    """Random access to the members of a (spooled, uncompressed) tar, by clean name."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")  # noqa: SIM115 - kept open
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, UnicodeError) as exc:
            raise invalid(f"not a tar file ({exc})") from None
        self._files: dict[str, tarfile.TarInfo] = {}
        self._links: dict[str, str] = {}
        for member in members:
            self._add(member)

    def _add(self, member: tarfile.TarInfo) -> None:
        name = clean_name(member.name)
        if member.issym() or member.islnk():
            self._links[name] = _link_target(name, member)
            self._files.pop(name, None)
        elif member.isreg():
            self._files[name] = member
            self._links.pop(name, None)

    def close(self) -> None:
        self._tar.close()
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _member(self, name: str) -> tarfile.TarInfo | None:
        name = clean_name(name)
        for _ in range(MAX_LINK_HOPS):
            if name in self._files:
                return self._files[name]
            if name not in self._links:
                return None
            name = self._links[name]
        raise invalid(f"too many levels of links at {name!r}")

    def has(self, name: str) -> bool:
        return self._member(name) is not None

    def _require(self, name: str) -> tarfile.TarInfo:
        member = self._member(name)
        if member is None:
            raise invalid(f"{name} not found in the archive")
        return member

    def size(self, name: str) -> int:
        return self._require(name).size

    def open(self, name: str) -> BinaryIO:
        reader = self._tar.extractfile(self._require(name))
        assert reader is not None  # regular files always have a reader
        return reader  # type: ignore[return-value]

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        member = self._require(name)
        if member.size > limit:
            raise invalid(f"{name} is too large ({member.size} bytes)")
        with self.open(name) as reader:
            data = reader.read()
        if len(data) != member.size:
            raise invalid(f"{name} is truncated")
        return data

    def read_blob(self, digest: str, size: int | None = None, limit: int = MAX_JSON) -> bytes:
        """The bytes of ``blobs/sha256/<hex>``, checked against ``digest`` (and ``size``)."""
        data = self.read(blob_path(digest), limit)
        check_blob(digest, digests.sha256_bytes(data), size, len(data))
        return data


def blob_path(digest: str) -> str:
    """``blobs/sha256/<hex>`` for a sha256 digest; anything else is refused."""
    if not isinstance(digest, str) or not digests.is_digest(digest):
        raise invalid(f"unsupported or malformed digest {digest!r}")
    return "blobs/sha256/" + digests.hex_of(digest)


def check_blob(expected: str, actual: str, size: int | None, actual_size: int) -> None:
    if expected != actual:
        raise invalid(f"blob {expected} digest mismatch: content is {actual}")
    if size is not None and size != actual_size:
        raise invalid(f"blob {expected} size mismatch: {actual_size} bytes, expected {size}")
