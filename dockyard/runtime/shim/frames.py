"""The frames of a shim's attach socket: ``u8 type, u32 big-endian length, payload``.

The frame types each side sends are :class:`ShimFrame` and :class:`ClientFrame` (their
meaning is described in :mod:`dockyard.runtime.shim.client`, which re-exports this module's
names); :func:`encode_frame` builds one, :class:`FrameDecoder` splits a byte stream.
"""
from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from dockyard import errors

HEADER = struct.Struct(">BI")
MAX_PAYLOAD = 1 << 24  # far above anything the shim sends (16 KiB chunks, short texts)


class ShimFrame(IntEnum):
    """Frame types the shim sends."""

    STDOUT = 1
    STDERR = 2
    EXIT = 3
    STARTED = 4
    ERROR = 5


class ClientFrame(IntEnum):
    """Frame types a client sends."""

    STDIN = 0
    CLOSE_STDIN = 1
    RESIZE = 2
    START = 4


class Frame(NamedTuple):
    type: int
    payload: bytes


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    if not 0 <= frame_type <= 255:
        raise errors.InvalidArgument(f"frame type out of range: {frame_type}")
    if len(payload) > MAX_PAYLOAD:
        raise errors.InvalidArgument(f"frame payload too large: {len(payload)} bytes")
    return HEADER.pack(frame_type, len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: feed it whatever bytes arrived, get the complete frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        offset = 0
        while len(self._buf) - offset >= HEADER.size:
            frame_type, length = HEADER.unpack_from(self._buf, offset)
            if length > MAX_PAYLOAD:
                raise errors.Internal(f"shim protocol error: frame of {length} bytes")
            end = offset + HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append(Frame(frame_type, bytes(self._buf[offset + HEADER.size : end])))
            offset = end
        del self._buf[:offset]
        return frames
