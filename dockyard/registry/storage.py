"""Registry blobs, upload sessions and per-repository blob links on the filesystem.

Layout under the storage root::

    blobs/<alg>/<hex>                               content, only ever complete and verified
    _uploads/<uuid>/data                            an upload in progress (appended to)
    repositories/<name>/_layers/<alg>/<hex>         "this repository may serve that blob"
    repositories/<name>/_manifests/...              see `manifests.py`

Crash safety: bytes go to ``_uploads/<uuid>/data``; finishing re-hashes the file, fsyncs it and
renames it into ``blobs/`` only when the digest matches, so a killed upload leaves at most an
orphan upload directory (swept by `gc`), never a corrupt blob.

Running beside `gc` (another thread or another process): whoever relies on a blob being
there (a HEAD answering "present", a mount, a finished upload, a manifest naming its blobs)
checks it and refreshes its mtime inside `in_use()`, a shared ``flock`` on ``.gc.lock``; the
sweep re-reads a blob's mtime and unlinks it inside `sweeping()`, the exclusive lock. So a
blob is either gone before the check (the client sees it missing and uploads it) or fresh
after it, and then kept for the grace period.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.registry.names import RegistryError, check_digest, hasher

CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def _upload_unknown(uid: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": uid})


def copy_stream(src: Readable, dst: BinaryIO, length: int | None) -> int:
    """Copy ``length`` bytes (or to EOF when None) from ``src`` to ``dst``; return the count."""
    total = 0
    while length is None or total < length:
        want = CHUNK if length is None else min(CHUNK, length - total)
        data = src.read(want)
        if not data:
            if length is not None:
                raise RegistryError("BLOB_UPLOAD_INVALID", "request body ended early")
            break
        dst.write(data)
        total += len(data)
    return total


class RegistryStorage:
    """Blobs, uploads and repository links below one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def ensure(self) -> None:
        for sub in ("blobs", "_uploads", "repositories"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # --- running beside gc ---------------------------------------------------------------
    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        try:
            fd = os.open(self.root / ".gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only storage: nothing can sweep it either
            yield
            return
        try:
            fcntl.flock(fd, mode)  # one open file per holder: threads exclude each other too
            yield
        finally:
            os.close(fd)

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        """Shared: what is checked and touched inside survives a concurrent sweep."""
        return self._flock(fcntl.LOCK_SH)

    def sweeping(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive: gc's look at one blob's age and its removal."""
        return self._flock(fcntl.LOCK_EX)

    def claim_blob(self, name: str, digest: str) -> bool:
        """Whether ``name`` may serve the blob, refreshing it so gc keeps it a while."""
        with self.in_use():
            if not self.repo_has_blob(name, digest):
                return False
            self.touch_blob(digest)
            return True

    # --- blobs -------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        alg, hexpart = check_digest(digest).split(":", 1)
        return self.root / "blobs" / alg / hexpart

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise _blob_unknown(digest) from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise _blob_unknown(digest) from None

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def touch_blob(self, digest: str) -> None:
        """Mark a blob as freshly used so a concurrent `gc` grace period protects it."""
        try:
            os.utime(self.blob_path(digest))
        except OSError:  # gone, or a read-only storage
            pass

    def all_blobs(self) -> Iterator[str]:
        base = self.root / "blobs"
        if not base.is_dir():
            return
        for alg_dir in sorted(base.iterdir()):
            for f in sorted(alg_dir.iterdir()):
                if not f.name.startswith("."):
                    yield f"{alg_dir.name}:{f.name}"

    def remove_blob(self, digest: str) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (verifying ``digest`` when given) through an upload session."""
        uid = self.start_upload()
        with open(self._upload_data(uid), "ab") as f:
            f.write(data)
        return self.finish_upload(uid, digest or _sha256(data))  # beside gc: inside in_use()

    # --- repository links --------------------------------------------------------------
    def repo_dir(self, name: str) -> Path:
        return self.root / "repositories" / name

    def _link_path(self, name: str, digest: str) -> Path:
        alg, hexpart = check_digest(digest).split(":", 1)
        return self.repo_dir(name) / "_layers" / alg / hexpart

    def link_blob(self, name: str, digest: str) -> None:
        path = self._link_path(name, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def unlink_blob(self, name: str, digest: str) -> bool:
        path = self._link_path(name, digest)
        if not path.exists():
            return False
        path.unlink()
        return True

    def repo_has_blob(self, name: str, digest: str) -> bool:
        return self._link_path(name, digest).exists() and self.has_blob(digest)

    # --- uploads -----------------------------------------------------------------------
    def _upload_dir(self, uid: str) -> Path:
        try:
            parsed = str(uuidlib.UUID(uid))
        except ValueError:
            raise _upload_unknown(uid) from None
        return self.root / "_uploads" / parsed

    def _upload_data(self, uid: str) -> Path:
        return self._upload_dir(uid) / "data"

    def lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def start_upload(self) -> str:
        uid = str(uuidlib.uuid4())
        path = self._upload_dir(uid)
        path.mkdir(parents=True)
        (path / "data").touch()
        return uid

    def upload_size(self, uid: str) -> int:
        try:
            return self._upload_data(uid).stat().st_size
        except FileNotFoundError:
            raise _upload_unknown(uid) from None

    def append_upload(self, uid: str, stream: Readable, length: int | None,
                      start: int | None = None) -> int:
        """Append a chunk; ``start`` (from Content-Range) must equal the current size."""
        size = self.upload_size(uid)
        if start is not None and start != size:
            raise RegistryError("BLOB_UPLOAD_INVALID", "chunk out of order", {"expected": size},
                                status=416, headers={"Range": f"0-{max(size - 1, 0)}"})
        with open(self._upload_data(uid), "ab") as f:
            copy_stream(stream, f, length)
        return self.upload_size(uid)

    def finish_upload(self, uid: str, digest: str) -> str:
        """Verify the upload against ``digest`` and rename it into ``blobs/`` (callers hold
        `in_use()` around this and the link that follows)."""
        check_digest(digest)
        data = self._upload_data(uid)
        if not data.exists():
            raise _upload_unknown(uid)
        h = hasher(digest)
        with open(data, "rb") as f:
            for piece in iter(lambda: f.read(CHUNK), b""):
                h.update(piece)
            os.fsync(f.fileno())
        actual = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
        if actual != digest:
            self.cancel_upload(uid)
            raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                                {"expected": digest, "actual": actual})
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.utime(data)  # young from now, however long ago the last chunk came
        os.replace(data, target)  # same content if it existed: replacing is harmless
        self.cancel_upload(uid)
        return digest

    def cancel_upload(self, uid: str) -> None:
        path = self._upload_dir(uid)
        if not path.exists():
            raise _upload_unknown(uid)
        shutil.rmtree(path, ignore_errors=True)
        with self._guard:
            self._locks.pop(uid, None)

    def stale_uploads(self, older_than: float) -> list[str]:
        base = self.root / "_uploads"
        if not base.is_dir():
            return []
        cutoff = time.time() - older_than
        # a session finishing meanwhile (directory gone) is skipped; one killed before its
        # data file was made counts by the directory's age
        return [p.name for p in base.iterdir() if _mtime(p, float("inf")) < cutoff and
                _mtime(p / "data", float("-inf")) < cutoff]


def _mtime(path: Path, missing: float) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return missing


def _sha256(data: bytes) -> str:
    h = hasher("sha256:")
    h.update(data)
    return f"sha256:{h.hexdigest()}"
