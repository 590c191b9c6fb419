"""The layer cache: a step's key → the image that step produced.

A key is the digest of everything that decides a step's result: the parent image id, the
instruction as it will run (variables expanded, build args that it uses), and for COPY/ADD the
checksum of every source file. Same key, same result — so a hit reuses the image, and a miss
invalidates every later step (their parent changes).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from dockyard.metadata.db import Database


@dataclass(frozen=True)
class StepKey:
    parent: str
    instruction: str
    sources: str = ""
    extra: tuple[str, ...] = field(default=())

    @property
    def digest(self) -> str:
        blob = json.dumps([self.parent, self.instruction, self.sources, list(self.extra)])
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def explain(self) -> str:
        parts = [f"parent={self.parent[7:19] if self.parent else 'scratch'}",
                 f"instruction={self.instruction!r}"]
        if self.sources:
            parts.append(f"sources={self.sources[7:19]}")
        parts += list(self.extra)
        return " ".join(parts)


class BuildCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: StepKey) -> str | None:
        rows = self.db.query("SELECT image_id FROM build_cache WHERE key=?", (key.digest,))
        return str(rows[0][0]) if rows else None

    def put(self, key: StepKey, image_id: str) -> None:
        with self.db.tx() as cur:
            cur.execute("INSERT OR REPLACE INTO build_cache(key, image_id, created) VALUES(?,?,?)",
                        (key.digest, image_id, time.time()))

    def sources_for(self, key: StepKey) -> dict[str, str] | None:
        """The file digests the same step (same parent, same instruction) copied last time."""
        rows = self.db.query("SELECT files FROM build_sources WHERE key=?",
                             (_without_sources(key),))
        return dict(json.loads(rows[0][0])) if rows else None

    def remember_sources(self, key: StepKey, files: dict[str, str]) -> None:
        with self.db.tx() as cur:
            cur.execute("INSERT OR REPLACE INTO build_sources(key, files) VALUES(?,?)",
                        (_without_sources(key), json.dumps(files)))

    def forget_image(self, image_id: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))

    def size(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM build_cache")[0][0])

    def clear(self) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM build_cache")
            cur.execute("DELETE FROM build_sources")


def _without_sources(key: StepKey) -> str:
    return StepKey(key.parent, key.instruction, "", key.extra).digest
