"""``docker save``: resolve names to images, then stream one tar that is both a docker-archive
and an OCI image layout (as Docker >= 25 writes it).

:func:`plan_save` resolves every name and opens every blob up front (so errors come before
any byte is sent, and a concurrent ``rmi`` cannot pull a blob from under the stream);
:meth:`SavePlan.chunks` then yields the tar piece by piece: headers from ``tarfile``, blob
contents read in chunks, never the whole archive in memory. Entry order and metadata are
fixed (sorted blobs, mtime 0, root-owned), so the same images always give the same bytes.
"""
from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Self

from dockyard.distribution import oci_layout
from dockyard.distribution.docker_archive import (
    MANIFEST_FILE,
    REPOSITORIES_FILE,
    SavedImage,
    manifest_json,
    repositories,
)
from dockyard.distribution.tarindex import blob_path
from dockyard.errors import Internal, InvalidArgument
from dockyard.image.model import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Image
from dockyard.image.store import ImageStore, canonical_json
from dockyard.types import reference
from dockyard.types.digest import sha256_bytes

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


@dataclass
class _Blob:
    size: int
    data: bytes | None = None
    file: BinaryIO | None = None


def _named(store: ImageStore, name: str) -> list[tuple[Image, reference.Reference | None]]:
    """What one name means to ``docker save``: ``repo`` = every tag of it; ``repo:tag``;
    an id or id prefix (saved without tags)."""
    if name.startswith("sha256:"):
        return [(store.resolve(name), None)]
    try:
        ref = reference.parse(name, default_tag=None)
    except InvalidArgument:
        return [(store.resolve(name), None)]
    if ref.tag is None and ref.digest is None:
        found = [(image, reference.parse(tag)) for image in store.list() for tag in image.tags
                 if _in_repository(tag, ref.repository)]
        return sorted(found, key=lambda pair: str(pair[1])) or [(store.resolve(name), None)]
    image = store.resolve(name)
    return [(image, ref if ref.tag and not ref.digest else None)]


def _in_repository(tag: str, repository: str) -> bool:
    ref = reference.parse(tag)
    return ref.repository == repository and bool(ref.tag) and not ref.digest


def resolve_names(store: ImageStore, names: list[str]) -> list[tuple[Image, list[reference.Reference]]]:
    """Images in order of first mention, each with the tags it is saved under."""
    order: dict[str, tuple[Image, list[reference.Reference]]] = {}
    for name in names:
        for image, ref in _named(store, name):
            _, refs = order.setdefault(image.id, (image, []))
            if ref is not None and ref not in refs:
                refs.append(ref)
    return list(order.values())


def _manifest_bytes(store: ImageStore, image: Image) -> bytes:
    """The stored manifest if it describes exactly this config and uncompressed layers,
    else the same OCI manifest ``ImageStore.create`` writes."""
    stored = store.content.read(image.manifest_digest)
    try:
        manifest = json.loads(stored)
        if manifest["config"]["digest"] == image.id and \
                [layer["digest"] for layer in manifest["layers"]] == image.diff_ids:
            return stored
    except (ValueError, KeyError, TypeError):
        pass
    config_size = store.content.size(image.id)
    return canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": store.content.size(d)}
                   for d in image.diff_ids],
    })


class SavePlan:
    """Everything one save writes, with every blob already open."""

    def __init__(self) -> None:
        self.images: list[SavedImage] = []
        self._blobs: dict[str, _Blob] = {}

    @property
    def image_ids(self) -> list[str]:
        return [image.image_id for image in self.images]

    def add(self, store: ImageStore, image: Image, tags: list[reference.Reference]) -> None:
        manifest = _manifest_bytes(store, image)
        manifest_digest = sha256_bytes(manifest)
        self._add_bytes(manifest_digest, manifest)
        self._add_bytes(image.id, store.content.read(image.id))
        for diff_id in image.diff_ids:
            if diff_id not in self._blobs:
                handle = store.content.open(diff_id)
                self._blobs[diff_id] = _Blob(os.fstat(handle.fileno()).st_size, file=handle)
        media_type = json.loads(manifest).get("mediaType") or OCI_MANIFEST
        self.images.append(SavedImage(image.id, manifest_digest, media_type,
                                      tuple(image.diff_ids), tuple(tags), image.parent))

    def _add_bytes(self, digest: str, data: bytes) -> None:
        self._blobs.setdefault(digest, _Blob(len(data), data=data))

    def close(self) -> None:
        for blob in self._blobs.values():
            if blob.file is not None:
                blob.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metadata(self) -> list[tuple[str, bytes]]:
        """The small top-level files, in archive order."""
        sizes = {digest: blob.size for digest, blob in self._blobs.items()}
        files = [(oci_layout.INDEX_FILE, oci_layout.index_json(self.images, sizes)),
                 (MANIFEST_FILE, manifest_json(self.images)),
                 (oci_layout.LAYOUT_FILE, oci_layout.layout_json())]
        repos = repositories(self.images)
        if repos:
            files.append((REPOSITORIES_FILE, repos))
        return [(name, json.dumps(value).encode() + b"\n") for name, value in files]

    def chunks(self) -> Generator[bytes, None, None]:
        """The archive, as a sequence of byte strings."""
        written = 0
        for part in self._parts():
            written += len(part)
            yield part
        yield bytes(RECORD - written % RECORD if written % RECORD else 0)

    def _parts(self) -> Iterator[bytes]:
        yield _header("blobs/", 0, tarfile.DIRTYPE)
        yield _header("blobs/sha256/", 0, tarfile.DIRTYPE)
        for digest in sorted(self._blobs):
            blob = self._blobs[digest]
            yield _header(blob_path(digest), blob.size, tarfile.REGTYPE)
            if blob.data is not None:
                yield blob.data
            else:
                assert blob.file is not None
                yield from _file_chunks(blob.file, blob.size, digest)
            yield _padding(blob.size)
        for name, data in self.metadata():
            yield _header(name, len(data), tarfile.REGTYPE) + data + _padding(len(data))
        yield bytes(2 * BLOCK)


def _header(name: str, size: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def _file_chunks(handle: BinaryIO, size: int, digest: str) -> Iterator[bytes]:
    handle.seek(0)
    left = size
    while left > 0:
        data = handle.read(min(CHUNK, left))
        if not data:
            raise Internal(f"blob {digest} is shorter than its recorded size")
        left -= len(data)
        yield data


def plan_save(store: ImageStore, names: list[str]) -> SavePlan:
    """Resolve ``names`` and open every blob to write (NotFound/Conflict raise here)."""
    plan = SavePlan()
    try:
        with store.lock:
            for image, tags in resolve_names(store, names):
                plan.add(store, image, tags)
    except BaseException:
        plan.close()
        raise
    return plan
