"""Images: config + manifest blobs in the content store, rows in metadata, layers as snapshots.

An image id is the digest of its config blob. Layers are stored uncompressed (their blob
digest is their diffID) and unpacked once per chain id. ``gc`` removes blobs and snapshots no
remaining image refers to.
"""
from __future__ import annotations

import builtins
import json
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from dockyard.content.store import ContentStore
from dockyard.diff.apply import apply_layer
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.image.model import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Image
from dockyard.metadata.db import Database
from dockyard.snapshots.overlay import Snapshotter
from dockyard.types import reference
from dockyard.types.digest import chain_ids
from dockyard.util import streams
from dockyard.util.timefmt import parse_rfc3339


@dataclass(frozen=True)
class Layer:
    diff_id: str
    chain_id: str
    size: int


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode()


class ImageStore:
    def __init__(self, db: Database, content: ContentStore, snapshots: Snapshotter) -> None:
        self.db = db
        self.content = content
        self.snapshots = snapshots
        # Held across "add layers, then create the image" so gc never sees a half-made image.
        self.lock = threading.RLock()

    # -- layers -------------------------------------------------------------------------
    def add_layer(self, stream: BinaryIO, parent_chain: str) -> Layer:
        """Store a layer tar (plain or compressed) as a blob and unpack it on ``parent_chain``."""
        temp = self.snapshots.new_temp()
        writer = self.content.writer()
        try:
            tee = streams.TeeReader(streams.decompressed(stream), writer)
            result = apply_layer(tee, temp / "fs")  # type: ignore[arg-type]
            tee.drain()
            diff_id = writer.commit()
        except BaseException:
            writer.abort()
            shutil.rmtree(temp, ignore_errors=True)
            raise
        chain = chain_ids([parent_chain, diff_id])[-1] if parent_chain else diff_id
        snap = self.snapshots.commit(temp, chain, parent_chain, diff_id, result.size)
        return Layer(diff_id, chain, snap.size)

    def ensure_unpacked(self, diff_ids: list[str]) -> None:
        """Unpack from stored blobs any layer of the chain that has no snapshot yet."""
        parent = ""
        for diff_id, chain in zip(diff_ids, chain_ids(diff_ids)):
            if self.snapshots.get(chain) is None:
                with self.content.open(diff_id) as blob:
                    temp = self.snapshots.new_temp()
                    result = apply_layer(blob, temp / "fs")
                    self.snapshots.commit(temp, chain, parent, diff_id, result.size)
            parent = chain

    # -- images -------------------------------------------------------------------------
    def create(self, config: dict[str, Any], parent: str = "", raw: bytes | None = None) -> Image:
        """Write config + manifest blobs and the image row; layers must already be stored.

        ``raw``: the config exactly as another tool serialised it (its digest is the image id
        there, so it must be kept byte for byte); it must decode to ``config``."""
        diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
        for diff_id in diff_ids:
            if not self.content.exists(diff_id):
                raise InvalidArgument(f"layer {diff_id} is not in the store")
        if raw is not None and json.loads(raw) != config:
            raise InvalidArgument("image config bytes do not match the parsed config")
        config_bytes = raw if raw is not None else canonical_json(config)
        config_digest = self.content.put(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": self.content.size(d)}
                       for d in diff_ids],
        }
        manifest_digest = self.content.put(canonical_json(manifest))
        size = self._size(diff_ids)
        created = parse_rfc3339(config.get("created", "")) or time.time()
        with self.db.tx() as cur:
            cur.execute("INSERT OR IGNORE INTO images(id, manifest_digest, created, size, parent)"
                        " VALUES(?,?,?,?,?)", (config_digest, manifest_digest, created, size, parent))
        image = self.get(config_digest)
        assert image is not None
        return image

    def _size(self, diff_ids: list[str]) -> int:
        total = 0
        for chain in chain_ids(diff_ids):
            snap = self.snapshots.get(chain)
            total += snap.size if snap else 0
        return total

    def get(self, image_id: str) -> Image | None:
        rows = self.db.query("SELECT id, manifest_digest, created, size, parent FROM images"
                             " WHERE id=?", (image_id,))
        if not rows:
            return None
        iid, manifest, created, size, parent = rows[0]
        config = json.loads(self.content.read(iid))
        tags = tuple(r[0] for r in self.db.query("SELECT ref FROM tags WHERE image_id=?"
                                                 " ORDER BY ref", (iid,)))
        return Image(iid, config, manifest, created, size, parent, tags)

    def resolve(self, name: str) -> Image:
        """By reference (``bb``, ``me/bb:1``), full id, or unique id prefix."""
        image = self.find(name)
        if image is None:
            raise NotFound(f"No such image: {name}")
        return image

    def find(self, name: str) -> Image | None:
        if name.startswith("sha256:") and len(name) == 71:
            return self.get(name)
        try:
            ref = reference.parse(name)
        except InvalidArgument:
            ref = None
        if ref is not None:
            rows = self.db.query("SELECT image_id FROM tags WHERE ref=?", (str(ref),))
            if rows:
                return self.get(rows[0][0])
        if reference.looks_like_id_prefix(name):
            prefix = name if name.startswith("sha256:") else "sha256:" + name
            rows = self.db.query("SELECT id FROM images WHERE id LIKE ?", (prefix + "%",))
            if len(rows) == 1:
                return self.get(rows[0][0])
            if len(rows) > 1:
                raise Conflict(f"multiple IDs found with provided prefix: {name}")
        return None

    def list(self) -> list[Image]:
        ids = [r[0] for r in self.db.query("SELECT id FROM images ORDER BY created DESC")]
        return [img for img in (self.get(i) for i in ids) if img is not None]

    def tag(self, image_id: str, ref: reference.Reference) -> None:
        with self.db.tx() as cur:
            cur.execute("INSERT OR REPLACE INTO tags(ref, image_id) VALUES(?,?)", (str(ref), image_id))

    def untag(self, ref: reference.Reference) -> str:
        rows = self.db.query("SELECT image_id FROM tags WHERE ref=?", (str(ref),))
        if not rows:
            raise NotFound(f"No such image: {ref.familiar()}")
        with self.db.tx() as cur:
            cur.execute("DELETE FROM tags WHERE ref=?", (str(ref),))
        return str(rows[0][0])

    def children(self, image_id: str) -> builtins.list[str]:
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE parent=?", (image_id,))]

    def delete(self, image_id: str) -> None:
        """Remove the image row (tags first); blobs and snapshots go in ``gc``."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
            cur.execute("DELETE FROM images WHERE id=?", (image_id,))
        self.gc()

    def gc(self) -> None:
        """Delete blobs and snapshots that no image refers to."""
        with self.lock:
            self._gc()

    def _gc(self) -> None:
        keep_blobs: set[str] = set()
        keep_chains: set[str] = set()
        for (iid, manifest) in self.db.query("SELECT id, manifest_digest FROM images"):
            keep_blobs.update({iid, manifest})
            diff_ids = json.loads(self.content.read(iid)).get("rootfs", {}).get("diff_ids") or []
            keep_blobs.update(diff_ids)
            keep_chains.update(chain_ids(diff_ids))
        for snap in self.snapshots.all():
            if snap.chain_id not in keep_chains:
                self.snapshots.remove(snap.chain_id)
        for blob in self.content.all():
            if blob not in keep_blobs:
                self.content.delete(blob)

