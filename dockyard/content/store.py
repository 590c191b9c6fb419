"""Content-addressed blob store: ``blobs/sha256/<hex>``; writes go through ``ingest/``.

A writer streams into an ingest file while hashing; ``commit`` checks the expected digest
(if any), fsyncs and renames into place. A blob path therefore either does not exist or holds
exactly the bytes its name promises.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.types import digest as digests
from dockyard.util.ids import new_id

CHUNK = 1 << 20


class Writer:
    """An open ingest: ``write`` bytes, then ``commit`` or ``abort``."""

    def __init__(self, store: "ContentStore") -> None:
        self._store = store
        self.path = store.ingest_dir / new_id()
        self._file = open(self.path, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        digest = self.digest
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if expected is not None and expected != digest:
            self.path.unlink(missing_ok=True)
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        os.replace(self.path, self._store.path(digest))
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blob_dir / digests.hex_of(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def writer(self) -> Writer:
        return Writer(self)

    def put(self, data: bytes, expected: str | None = None) -> str:
        digest = digests.sha256_bytes(data)
        if expected is not None and expected != digest:
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        if not self.exists(digest):
            writer = self.writer()
            writer.write(data)
            writer.commit()
        return digest

    def put_stream(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        writer = self.writer()
        try:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
            return writer.commit(expected), writer.size
        except BaseException:
            writer.abort()
            raise

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def all(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blob_dir.iterdir()]

    def sweep_ingest(self) -> None:
        """Boot-time recovery: unfinished ingests are garbage."""
        for leftover in self.ingest_dir.iterdir():
            leftover.unlink(missing_ok=True)
