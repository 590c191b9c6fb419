"""``docker save`` / ``docker load``: docker-archive and OCI image-layout tarballs.

``save`` writes one tar that real Docker can ``docker load`` and that is also an OCI image
layout (see :mod:`dockyard.distribution.archive_save`). ``load`` reads a docker-archive (old
``<id>/layer.tar`` style or new ``blobs/sha256`` style), an OCI layout, or a gzip/bzip2/xz/
zstd-compressed one of those, and is all-or-nothing: every blob digest and every layer's
diffID is checked; on any error the images it created are removed again, nothing is tagged,
and unreferenced layers are garbage-collected.

Loading is two steps so an HTTP handler can answer 400 before it starts a 200 stream:
:func:`prepare_load` (read the input once, index the tar, parse manifests, check configs)
and :meth:`LoadPlan.apply` (unpack layers, create images, move tags).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Self

from dockyard.distribution import docker_archive, oci_layout
from dockyard.distribution.archive_save import SavePlan, plan_save
from dockyard.distribution.entries import ImageEntry, LayerSource
from dockyard.distribution.tarindex import (
    HashingReader,
    TarIndex,
    check_blob,
    decompressing,
    invalid,
    is_data_error,
    spool,
)
from dockyard.errors import InvalidArgument
from dockyard.image.store import ImageStore, canonical_json
from dockyard.types.digest import chain_ids, sha256_bytes

__all__ = ["LoadPlan", "SavePlan", "load", "plan_save", "prepare_load", "save"]

Progress = Callable[[str], None]
log = logging.getLogger("dockyard.distribution")


def save(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    """Write the images ``names`` refer to as one docker-archive/OCI-layout tar to ``out``."""
    with plan_save(store, names) as plan:
        out.writelines(plan.chunks())


def load(store: ImageStore, stream: BinaryIO, progress: Progress,
         tmp_dir: Path | None = None, platform: str | None = None) -> list[str]:
    """Load every image of the archive read from ``stream``; return their ids.

    ``progress`` gets Docker's messages (``Loaded image: bb:latest``, ``Loaded image ID:
    sha256:…``, ``The image … already exists, renaming the old one …``), without newline.
    Raises InvalidArgument for anything wrong with the archive.
    """
    with prepare_load(stream, tmp_dir, platform) as plan:
        return plan.apply(store, progress)


def prepare_load(stream: BinaryIO, tmp_dir: Path | None = None,
                 platform: str | None = None) -> LoadPlan:
    """Read ``stream`` once (spooled under ``tmp_dir``), index it and parse its manifests.

    ``platform`` (``linux/amd64``) picks the manifest out of an OCI index; the host's by
    default. Raises InvalidArgument for unreadable or inconsistent archives.
    """
    spooled = spool(stream, tmp_dir)
    try:
        tar = TarIndex(spooled)
    except BaseException:
        spooled.close()
        raise
    try:
        return LoadPlan(tar, _read_entries(tar, platform))
    except BaseException:
        tar.close()
        raise


def _read_entries(tar: TarIndex, platform: str | None) -> list[ImageEntry]:
    if tar.has(docker_archive.MANIFEST_FILE):
        return docker_archive.read_entries(tar)
    if tar.has(oci_layout.INDEX_FILE):
        return oci_layout.read_entries(tar, platform)
    raise invalid("no manifest.json (docker-archive) or index.json (OCI layout) found")


class LoadPlan:
    """A parsed archive, ready to be applied to a store."""

    def __init__(self, tar: TarIndex, entries: list[ImageEntry]) -> None:
        self.tar = tar
        self.entries = entries

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, store: ImageStore, progress: Progress) -> list[str]:
        """Store layers, create images, then tag them; all or nothing. Returns image ids."""
        created: list[str] = []
        ids: dict[int, str] = {}
        with store.lock:
            try:
                for n in _parents_first(self.entries):
                    ids[n] = self._create(store, self.entries[n], created)
            except BaseException:
                _undo(store, created)
                raise
            for n, entry in enumerate(self.entries):
                _tag(store, entry, ids[n], progress)
        return list(dict.fromkeys(ids[n] for n in range(len(self.entries))))

    def _create(self, store: ImageStore, entry: ImageEntry, created: list[str]) -> str:
        candidates = {entry.config_digest, sha256_bytes(canonical_json(entry.config))}
        existing = {c for c in candidates if store.get(c) is not None}
        self._store_layers(store, entry)
        image = store.create(entry.config, _parent(store, entry), raw=entry.config_raw)
        if image.id not in existing:
            created.append(image.id)
        return image.id

    def _store_layers(self, store: ImageStore, entry: ImageEntry) -> None:
        parent = ""
        for source, diff_id, chain in zip(entry.layers, entry.diff_ids,
                                          chain_ids(entry.diff_ids)):
            if store.content.exists(diff_id) and store.snapshots.get(chain) is not None:
                actual = self._verify_layer(source)
            else:
                actual = self._add_layer(store, source, parent)
            if actual != diff_id:
                raise invalid(f"layer {source.member} digest mismatch: the image config says "
                              f"{diff_id}, its content is {actual}")
            parent = chain

    def _add_layer(self, store: ImageStore, source: LayerSource, parent: str) -> str:
        with self.tar.open(source.member) as raw:
            hashed = HashingReader(raw)
            try:
                layer = store.add_layer(hashed, parent)  # type: ignore[arg-type]
                hashed.drain()
            except Exception as exc:
                if isinstance(exc, InvalidArgument) or is_data_error(exc):
                    _check_source(source, hashed, partial=True)
                    raise invalid(f"layer {source.member}: {exc}") from None
                raise
        _check_source(source, hashed)
        return layer.diff_id

    def _verify_layer(self, source: LayerSource) -> str:
        """Hash a layer that is already stored and unpacked (its uncompressed digest)."""
        with self.tar.open(source.member) as raw:
            hashed = HashingReader(raw)
            try:
                plain = HashingReader(decompressing(hashed))  # type: ignore[arg-type]
                plain.drain()
                hashed.drain()
            except Exception as exc:
                if is_data_error(exc):
                    _check_source(source, hashed, partial=True)
                    raise invalid(f"layer {source.member}: {exc}") from None
                raise
        _check_source(source, hashed)
        return plain.digest


def _check_source(source: LayerSource, hashed: HashingReader, partial: bool = False) -> None:
    """The archive bytes of a layer match the digest (and size) the manifest names."""
    if source.digest is None:
        return
    if partial:  # a failed read: report a digest mismatch rather than the parse error
        hashed.drain()
    check_blob(source.digest, hashed.digest, source.size, hashed.size)


def _parents_first(entries: list[ImageEntry]) -> list[int]:
    """Entry indexes in an order that creates a ``Parent`` in the archive before its child."""
    by_config = {entry.config_digest: n for n, entry in enumerate(entries)}
    order: list[int] = []

    def visit(n: int, depth: int) -> None:
        parent = by_config.get(entries[n].parent)
        if parent is not None and parent not in order and depth < len(entries):
            visit(parent, depth + 1)
        if n not in order:
            order.append(n)

    for n in range(len(entries)):
        visit(n, 0)
    return order


def _parent(store: ImageStore, entry: ImageEntry) -> str:
    """docker-archive ``Parent`` if that image is here and its layers are a prefix of ours."""
    if not entry.parent:
        return ""
    parent = store.get(entry.parent)
    if parent is None:
        return ""
    ours = entry.diff_ids
    return entry.parent if ours[:len(parent.diff_ids)] == parent.diff_ids else ""


def _tag(store: ImageStore, entry: ImageEntry, image_id: str, progress: Progress) -> None:
    for ref in entry.tags:
        old = store.find(str(ref))
        if old is not None and old.id != image_id:
            progress(f"The image {ref.familiar()} already exists, renaming the old one with "
                     f"ID {old.id} to empty string")
        store.tag(image_id, ref)
        progress(f"Loaded image: {ref.familiar()}")
    if not entry.tags:
        progress(f"Loaded image ID: {image_id}")


def _undo(store: ImageStore, created: list[str]) -> None:
    """Remove what a failed load made: its new images, then unreferenced blobs/layers."""
    try:
        for image_id in created:
            store.delete(image_id)
        store.gc()
    except Exception:  # never mask the error that made us undo
        log.exception("cleaning up after a failed load")
