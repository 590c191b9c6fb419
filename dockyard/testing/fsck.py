"""An offline consistency check of a daemon's data-root (for crash tests).

Reads the SQLite database read-only and the files beside it; never writes. Meant to run while
the daemon is idle (no request in flight), typically right after a (re)boot, when recovery
has already swept what a crash left. ``check(data_root)`` returns a :class:`Report`: the
problems found (empty when the store is consistent) and a fingerprint of what is stored, so
two checks around a clean restart can be compared.

Invariants:

* images: the config blob exists and hashes to the image id; the manifest blob exists, hashes
  to its digest and names that config and the config's diff ids as layers; every layer blob
  exists (and, with ``verify_layers``, hashes to its diff id); every chain id of the image
  has a snapshot row; a parent image, when set, exists; (``strict``) every blob and snapshot
  is needed by some image;
* tags point at existing images;
* snapshot rows: their directory exists and their parent row exists; no snapshot directory
  without a row, no ``tmp-*`` unpack left;
* containers: their image exists and is fully unpacked (its top chain's snapshots exist);
  ``containers/<id>`` has ``upper`` and ``work``; no container directory without a row;
* volumes: each row has ``volumes/<name>/_data``; no volume directory without a row, nothing
  left in ``volumes/.tmp`` or ``volumes/.trash``;
* endpoints point at existing networks and containers;
* nothing left in ``content/ingest``, ``tmp`` or ``trash``.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.types.digest import chain_ids


@dataclass(frozen=True)
class Report:
    problems: tuple[str, ...]
    fingerprint: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return "\n".join(self.problems) or "consistent"


@contextmanager
def _readonly(db: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        yield conn


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


class _Checker:
    def __init__(self, root: Path, conn: sqlite3.Connection, verify_layers: bool,
                 strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.conn = conn
        self.verify_layers = verify_layers
        self.blobs = root / "content" / "blobs" / "sha256"
        self.problems: list[str] = []
        self.snapshots = {c: (p, Path(d)) for c, p, d in
                          self._rows("SELECT chain_id, parent, dir FROM snapshots")}
        self.images = {i: (m, p) for i, m, p in
                       self._rows("SELECT id, manifest_digest, parent FROM images")}
        self._verified: set[str] = set()

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    def bad(self, message: str) -> None:
        self.problems.append(message)

    def blob(self, digest: str) -> Path:
        return self.blobs / digest.split(":", 1)[-1]

    def _blob_ok(self, digest: str, what: str, verify: bool = True) -> bytes | None:
        path = self.blob(digest)
        if not path.is_file():
            self.bad(f"{what}: blob {digest} is missing")
            return None
        if verify and digest not in self._verified:
            if _sha256_file(path) != digest:
                self.bad(f"{what}: blob {digest} does not hash to its name")
                return None
            self._verified.add(digest)
        return path.read_bytes() if path.stat().st_size < (4 << 20) else b""

    # -- images, tags, snapshots ----------------------------------------------------------
    def image(self, iid: str, manifest_digest: str, parent: str) -> None:
        what = f"image {iid[7:19]}"
        raw = self._blob_ok(iid, what)
        if raw is None:
            return
        config = json.loads(raw)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        manifest_raw = self._blob_ok(manifest_digest, what + " manifest")
        if manifest_raw is not None:
            manifest = json.loads(manifest_raw)
            if (manifest.get("config") or {}).get("digest") != iid:
                self.bad(f"{what}: manifest names config {manifest.get('config')}")
            if [layer.get("digest") for layer in manifest.get("layers") or []] != diff_ids:
                self.bad(f"{what}: manifest layers differ from the config's diff ids")
        for diff_id in diff_ids:
            self._blob_ok(diff_id, f"{what} layer", verify=self.verify_layers)
        for chain in chain_ids(diff_ids):
            if chain not in self.snapshots:
                self.bad(f"{what}: layer chain {chain[7:19]} has no snapshot")
        if parent and parent not in self.images:
            self.bad(f"{what}: parent {parent[7:19]} does not exist")

    def unreferenced(self) -> None:
        """Blobs and snapshots no image needs (boot gc removes what a crash cut short)."""
        blobs: set[str] = set()
        chains: set[str] = set()
        for iid, (manifest_digest, _parent) in self.images.items():
            blobs.update({iid, manifest_digest})
            try:
                config = json.loads(self.blob(iid).read_bytes())
            except (OSError, ValueError):
                continue
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            blobs.update(diff_ids)
            chains.update(chain_ids(diff_ids))
        for entry in _entries(self.blobs):
            if "sha256:" + entry.name not in blobs:
                self.bad(f"blob sha256:{entry.name[:12]} is referenced by no image")
        for chain in sorted(set(self.snapshots) - chains):
            self.bad(f"snapshot {chain[7:19]} is used by no image")

    def tags(self) -> None:
        for ref, iid in self._rows("SELECT ref, image_id FROM tags"):
            if iid not in self.images:
                self.bad(f"tag {ref} points at missing image {iid[7:19]}")

    def snapshot_rows(self) -> None:
        for chain, (parent, directory) in self.snapshots.items():
            if not directory.is_dir():
                self.bad(f"snapshot {chain[7:19]}: directory {directory} is missing")
            if parent and parent not in self.snapshots:
                self.bad(f"snapshot {chain[7:19]}: parent {parent[7:19]} has no row")
        known = {directory.parent.name for _p, directory in self.snapshots.values()}
        for entry in _entries(self.root / "snapshots"):
            if entry.name != "empty" and entry.name not in known:
                self.bad(f"snapshot directory {entry.name} has no row")

    # -- containers, volumes, networks ----------------------------------------------------
    def containers(self) -> None:
        rows = self._rows("SELECT id, name, image_id FROM containers")
        for cid, name, image_id in rows:
            what = f"container {name} ({cid[:12]})"
            base = self.root / "containers" / cid
            for sub in ("upper", "work"):
                if not (base / sub).is_dir():
                    self.bad(f"{what}: {sub} directory is missing")
            if image_id not in self.images:
                self.bad(f"{what}: image {image_id[7:19]} does not exist")
        ids = {row[0] for row in rows}
        for entry in _entries(self.root / "containers"):
            if entry.name not in ids:
                self.bad(f"container directory {entry.name[:12]} has no row")

    def volumes(self) -> None:
        names = {row[0] for row in self._rows("SELECT name FROM volumes")}
        root = self.root / "volumes"
        for name in names:
            if not (root / name / "_data").is_dir():
                self.bad(f"volume {name}: _data is missing")
        for entry in _entries(root):
            if entry.name in (".tmp", ".trash"):
                for child in _entries(entry):
                    self.bad(f"volume leftover {entry.name}/{child.name}")
            elif entry.name not in names:
                self.bad(f"volume directory {entry.name} has no row")

    def endpoints(self) -> None:
        networks = {row[0] for row in self._rows("SELECT id FROM networks")}
        containers = {row[0] for row in self._rows("SELECT id FROM containers")}
        for nid, cid in self._rows("SELECT network_id, container_id FROM endpoints"):
            if nid not in networks:
                self.bad(f"endpoint of {cid[:12]} on missing network {nid[:12]}")
            if cid not in containers:
                self.bad(f"endpoint on {nid[:12]} of missing container {cid[:12]}")

    def leftovers(self) -> None:
        for sub in ("content/ingest", "tmp", "trash"):
            for entry in _entries(self.root / sub):
                self.bad(f"leftover {sub}/{entry.name}")

    def fingerprint(self) -> dict[str, Any]:
        return {
            "images": sorted(self.images),
            "tags": sorted(self._rows("SELECT ref, image_id FROM tags")),
            "snapshots": sorted(self.snapshots),
            "containers": sorted(self._rows("SELECT id, name, image_id FROM containers")),
            "volumes": sorted(r[0] for r in self._rows("SELECT name FROM volumes")),
            "networks": sorted(self._rows("SELECT id, name FROM networks")),
            "blobs": sorted(e.name for e in _entries(self.blobs)),
        }

    def run(self) -> Report:
        for iid, (manifest_digest, parent) in sorted(self.images.items()):
            self.image(iid, manifest_digest, parent)
        self.tags()
        if self.strict:
            self.unreferenced()
        self.snapshot_rows()
        self.containers()
        self.volumes()
        self.endpoints()
        self.leftovers()
        return Report(tuple(self.problems), self.fingerprint())


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except FileNotFoundError:
        return []


def check(data_root: Path, verify_layers: bool = True, strict: bool = True) -> Report:
    """Check the store under ``data_root`` (the daemon's ``--data-root``). ``strict`` also
    reports blobs and snapshots no image refers to (true right after a boot)."""
    with _readonly(data_root / "dockyard.db") as conn:
        return _Checker(data_root, conn, verify_layers, strict).run()
