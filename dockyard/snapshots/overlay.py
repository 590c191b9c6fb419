"""Layer snapshots: one directory per chain id, stacked by overlayfs for containers.

``snapshots/<first 16 hex of chain id>/fs`` holds one layer's files in overlay form (whiteouts
as 0:0 char devices, opaque dirs as xattrs). A layer is unpacked into ``snapshots/tmp-*/`` and
renamed into place before its row is committed; leftover tmp dirs are swept at boot.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import NotFound
from dockyard.metadata.db import Database
from dockyard.types.digest import hex_of
from dockyard.util.ids import new_id


@dataclass(frozen=True)
class Snapshot:
    chain_id: str
    parent: str
    diff_id: str
    dir: Path
    size: int


class Snapshotter:
    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db = db
        root.mkdir(parents=True, exist_ok=True)
        self.empty = root / "empty"
        self.empty.mkdir(exist_ok=True)

    def get(self, chain_id: str) -> Snapshot | None:
        rows = self.db.query("SELECT chain_id, parent, diff_id, dir, size FROM snapshots"
                             " WHERE chain_id=?", (chain_id,))
        if not rows:
            return None
        c, p, d, directory, size = rows[0]
        return Snapshot(c, p, d, Path(directory), size)

    def new_temp(self) -> Path:
        """A fresh directory to unpack a layer into, later passed to ``commit``."""
        temp = self.root / f"tmp-{new_id()[:16]}"
        (temp / "fs").mkdir(parents=True)
        return temp

    def commit(self, temp: Path, chain_id: str, parent: str, diff_id: str, size: int) -> Snapshot:
        final = self.root / hex_of(chain_id)[:16]
        existing = self.get(chain_id)
        if existing is not None:
            shutil.rmtree(temp, ignore_errors=True)
            return existing
        if final.exists():
            shutil.rmtree(final)
        temp.rename(final)
        with self.db.tx() as cur:
            cur.execute("INSERT INTO snapshots(chain_id, parent, diff_id, dir, size)"
                        " VALUES(?,?,?,?,?)", (chain_id, parent, diff_id, str(final / "fs"), size))
        return Snapshot(chain_id, parent, diff_id, final / "fs", size)

    def lowers(self, chain_id: str) -> list[Path]:
        """The layer directories of ``chain_id``, top first (overlay ``lowerdir`` order)."""
        dirs: list[Path] = []
        current = chain_id
        while current:
            snap = self.get(current)
            if snap is None:
                raise NotFound(f"layer {current} is not unpacked")
            dirs.append(snap.dir)
            current = snap.parent
        return dirs or [self.empty]

    def remove(self, chain_id: str) -> None:
        snap = self.get(chain_id)
        if snap is None:
            return
        with self.db.tx() as cur:
            cur.execute("DELETE FROM snapshots WHERE chain_id=?", (chain_id,))
        shutil.rmtree(snap.dir.parent, ignore_errors=True)

    def children(self, chain_id: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT chain_id FROM snapshots WHERE parent=?",
                                            (chain_id,))]

    def all(self) -> list[Snapshot]:
        rows = self.db.query("SELECT chain_id, parent, diff_id, dir, size FROM snapshots")
        return [Snapshot(c, p, d, Path(x), s) for c, p, d, x, s in rows]

    def sweep(self) -> None:
        """Boot-time recovery: unpacks that never committed, and dirs no row points to."""
        known = {s.dir.parent for s in self.all()}
        for entry in self.root.iterdir():
            if entry.name == "empty":
                continue
            if entry.name.startswith("tmp-") or entry not in known:
                shutil.rmtree(entry, ignore_errors=True)
