"""The layer cache: a step's key → the image that step produced.

A key is the digest of everything that decides a step's result: the parent image id, the
instruction as it will run (variables expanded, build args that it uses), and for COPY/ADD the
checksum of every source file. Same key, same result — so a hit reuses the image, and a miss
invalidates every later step (their parent changes).

Beside the keys, the cache notes which steps were built on top of each parent (instruction
and build args, no sources): one lookup then tells why a step missed — its instruction or
build args changed while its parent stayed the same (see :mod:`dockyard.builder.misses`).
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

    def steps_from(self, parent: str) -> list[tuple[str, tuple[str, ...]]]:
        """(instruction, build args) of the steps built on ``parent`` before, oldest first."""
        rows = self.db.query("SELECT files FROM build_sources WHERE key=?",
                             (_parent_note(parent),))
        if not rows:
            return []
        return [(str(inst), tuple(str(e) for e in extra))
                for inst, extra in json.loads(rows[0][0])]

    def remember_step(self, key: StepKey) -> None:
        """Note that ``key``'s instruction was built on its parent (the newest few are kept)."""
        entry = (key.instruction, key.extra)
        seen = [item for item in self.steps_from(key.parent) if item != entry]
        seen = [*seen, entry][-_NOTES_PER_PARENT:]
        with self.db.tx() as cur:
            cur.execute("INSERT OR REPLACE INTO build_sources(key, files) VALUES(?,?)",
                        (_parent_note(key.parent), json.dumps([list(i) for i in seen])))

    def forget_image(self, image_id: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))

    def size(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM build_cache")[0][0])

    def clear(self) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM build_cache")
            cur.execute("DELETE FROM build_sources")


_NOTES_PER_PARENT = 32


def _parent_note(parent: str) -> str:
    """Where the steps built on ``parent`` are noted (apart from every StepKey digest)."""
    return "parent:" + hashlib.sha256(parent.encode()).hexdigest()


def _without_sources(key: StepKey) -> str:
    return StepKey(key.parent, key.instruction, "", key.extra).digest
