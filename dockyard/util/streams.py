"""Byte-stream helpers: transparent decompression, tee-while-reading, chunked copying."""
from __future__ import annotations

import gzip
import io
from typing import BinaryIO, Protocol

from dockyard.errors import InvalidArgument

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class TeeReader(io.RawIOBase):
    """Reads from ``source`` and copies every byte read into ``sink``."""

    def __init__(self, source: BinaryIO, sink: Sink) -> None:
        self._source = source
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        if not data:
            return 0
        self._sink.write(data)
        n = len(data)
        buffer[:n] = data
        return n

    def drain(self) -> None:
        """Read the rest of the source (e.g. tar padding a parser did not consume)."""
        while self.read(CHUNK):
            pass


def decompressed(stream: BinaryIO) -> BinaryIO:
    """``stream`` itself if plain, else a decompressing reader (gzip, zstd when available)."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(
        _Raw(stream), CHUNK)
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise InvalidArgument("zstd-compressed layers need the zstandard package") from None
        return zstandard.ZstdDecompressor().stream_reader(buffered)  # type: ignore[no-any-return]
    return buffered


class _Raw(io.RawIOBase):
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def copy(source: BinaryIO, sink: Sink) -> int:
    total = 0
    while chunk := source.read(CHUNK):
        sink.write(chunk)
        total += len(chunk)
    return total
