"""``docker push``: upload an image's layers, config and manifest to a registry.

Layers are stored uncompressed; for transfer each is gzip-compressed (level 1, mtime 0, so
the same layer compresses to the same blob again) into a temp file while its digest is
computed. Blobs the registry already has (``HEAD``) are skipped ("Layer already exists").
The manifest is Docker schema2 (``…distribution.manifest.v2+json``) with gzip layers, or
OCI with uncompressed layers when ``compress=False``; it is put by tag.
"""
from __future__ import annotations

import gzip
import zlib
from concurrent.futures import ThreadPoolExecutor
import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dockyard.distribution.registry_client import RegistryClient, Repository
from dockyard.distribution.registry_ops import blob_exists, put_manifest, upload_blob
from dockyard.errors import NotFound
from dockyard.image.model import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
)
from dockyard.image.store import ImageStore, canonical_json
from dockyard.types.reference import Reference

Progress = Callable[[dict[str, Any]], None]
CHUNK = 1 << 20
_STEP = 512 << 10  # report upload progress every 512 KiB

SAMPLE = 1 << 20  # bytes looked at to decide whether a layer is worth gzipping


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str
    size: int


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    path: Path | None  # a temp file with the (compressed) bytes, or None: the stored blob
    gzipped: bool = False


def push(store: ImageStore, ref: Reference, client: RegistryClient, progress: Progress,
         compress: bool = True, tmp_dir: Path | None = None) -> PushResult:
    """Push the image ``ref`` names to ``ref``'s registry under ``ref.tag``."""
    image = store.find(str(ref))
    if image is None:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar()}")
    tag = ref.tag or "latest"
    progress({"status": f"The push refers to repository [{ref.repository}]"})
    repo = client.repository(ref, push=True)
    diff_ids = image.diff_ids
    for diff_id in reversed(diff_ids):
        progress({"status": "Preparing", "progressDetail": {}, "id": _short(diff_id)})
    with tempfile.TemporaryDirectory(prefix="push-", dir=tmp_dir) as work:
        layers = _push_layers(store, repo, diff_ids, compress, Path(work), progress)
    config = _push_config(store, repo, image)
    manifest = _manifest(config, layers, compress)
    digest = put_manifest(repo, tag, manifest, DOCKER_MANIFEST if compress else OCI_MANIFEST)
    progress({"status": f"{tag}: digest: {digest} size: {len(manifest)}"})
    progress({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest,
                                            "Size": len(manifest)}})
    return PushResult(tag, digest, len(manifest))


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _push_layers(store: ImageStore, repo: Repository, diff_ids: list[str], compress: bool,
                 work: Path, progress: Progress) -> list[_Blob]:
    """Layers go up in parallel (compression releases the GIL), at most three at a time."""
    unique = list(dict.fromkeys(reversed(diff_ids)))
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="push") as pool:
        futures = {d: pool.submit(_push_layer, store, repo, d, compress, work, progress)
                   for d in unique}
        done = {d: future.result() for d, future in futures.items()}
    return [done[diff_id] for diff_id in diff_ids]


def _push_layer(store: ImageStore, repo: Repository, diff_id: str, compress: bool,
                work: Path, progress: Progress) -> _Blob:
    short = _short(diff_id)
    blob = _compressed(store, diff_id, work) if compress else _Blob(
        diff_id, store.content.size(diff_id), None)
    if blob_exists(repo, blob.digest):
        progress({"status": "Layer already exists", "progressDetail": {}, "id": short})
        return blob
    progress({"status": "Pushing", "progressDetail": {"current": 0, "total": blob.size},
              "id": short})
    with _open_blob(store, blob) as source:
        upload_blob(repo, _Counting(source, blob.size, short, progress),  # type: ignore[arg-type]
                    blob.digest, blob.size)
    progress({"status": "Pushed", "progressDetail": {}, "id": short})
    return blob


def _open_blob(store: ImageStore, blob: _Blob) -> IO[bytes]:
    return blob.path.open("rb") if blob.path else store.content.open(blob.digest)


def _compressible(store: ImageStore, diff_id: str) -> bool:
    """gzip only pays when the layer shrinks: a 1 MiB sample that gzips to over 90 % of its
    size (already compressed or random data) is pushed as an uncompressed tar instead."""
    with store.content.open(diff_id) as source:
        sample = source.read(SAMPLE)
    return len(sample) < 4096 or len(zlib.compress(sample, 1)) < 0.9 * len(sample)


def _compressed(store: ImageStore, diff_id: str, work: Path) -> _Blob:
    if not _compressible(store, diff_id):
        return _Blob(diff_id, store.content.size(diff_id), None)
    path = work / diff_id.split(":", 1)[1]
    with path.open("wb") as out, store.content.open(diff_id) as source:
        hasher = _HashingFile(out)
        with gzip.GzipFile(fileobj=hasher, mode="wb", compresslevel=1, mtime=0,  # type: ignore[arg-type]
                           filename="") as gz:
            while chunk := source.read(CHUNK):
                gz.write(chunk)
    return _Blob("sha256:" + hasher.hash.hexdigest(), hasher.size, path, gzipped=True)


class _HashingFile:
    """A write-only file that hashes and counts what is written through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


class _Counting(io.RawIOBase):
    """Reads from ``source`` and reports upload progress; seekable to 0 for auth retries."""

    def __init__(self, source: IO[bytes], total: int, short: str, progress: Progress) -> None:
        self._source = source
        self._total = total
        self._short = short
        self._progress = progress
        self._current = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size and size > 0 else CHUNK)
        before = self._current
        self._current += len(data)
        if data and (self._current // _STEP != before // _STEP or self._current == self._total):
            self._progress({"status": "Pushing", "id": self._short, "progressDetail": {
                "current": self._current, "total": self._total}})
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._current = 0
        return self._source.seek(offset, whence)


def _push_config(store: ImageStore, repo: Repository, image: Image) -> _Blob:
    raw = store.content.read(image.id)
    blob = _Blob(image.id, len(raw), None)
    if not blob_exists(repo, image.id):
        upload_blob(repo, raw, image.id, len(raw))
    return blob


def _manifest(config: _Blob, layers: list[_Blob], compress: bool) -> bytes:
    def layer_type(layer: _Blob) -> str:
        if not compress:
            return OCI_LAYER
        return DOCKER_LAYER_GZIP if layer.gzipped else DOCKER_LAYER

    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if compress else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if compress else OCI_CONFIG,
                   "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": layer_type(layer), "size": layer.size, "digest": layer.digest}
                   for layer in layers],
    }
    return canonical_json(doc)
