"""The one SQLite database (WAL mode) holding dockyard's metadata.

Layout (schema version 1)::

    meta(key PK, value)                       -- schema_version
    images(id PK, manifest_digest, created, size, parent)
                                              -- id = sha256 of the image config blob
    tags(ref PK, image_id → images.id)        -- ref = normalised "docker.io/library/bb:latest"
    snapshots(chain_id PK, parent, diff_id, dir, size)
                                              -- one unpacked layer directory per chain id
    containers(id PK, name UNIQUE, image_id, created, config JSON, state JSON)
    build_cache(key PK, image_id, created)    -- (v2) builder step key → resulting image
    build_sources(key PK, files JSON)         -- (v2) COPY/ADD step without sources → the
                                              --      file digests last copied (explains misses)
    networks(id PK, name UNIQUE, driver, data JSON, created)
                                              -- (v3) subnet, gateway, options, labels in data
    endpoints(network_id, container_id, data JSON, PK(network_id, container_id))
                                              -- (v3) address, mac, aliases, links in data
    ip_allocations(network_id, address, owner, PK(network_id, address))
                                              -- (v3) IPAM: an address is handed out once
    volumes(name PK, driver, data JSON, created)
                                              -- (v3) mountpoint, labels, options, anonymous

Every write is one transaction (``with db.tx() as cur``); files it refers to are made complete
*before* the row that points at them is committed, and orphans are swept at boot. Hence a
``kill -9`` at any instant leaves a consistent store.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS images(
        id TEXT PRIMARY KEY, manifest_digest TEXT NOT NULL, created REAL NOT NULL,
        size INTEGER NOT NULL, parent TEXT NOT NULL DEFAULT '');
    CREATE TABLE IF NOT EXISTS tags(
        ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id));
    CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
    CREATE TABLE IF NOT EXISTS snapshots(
        chain_id TEXT PRIMARY KEY, parent TEXT NOT NULL, diff_id TEXT NOT NULL,
        dir TEXT NOT NULL, size INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS containers(
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL,
        created TEXT NOT NULL, config TEXT NOT NULL, state TEXT NOT NULL);
    """,
    2: """
    CREATE TABLE IF NOT EXISTS build_cache(
        key TEXT PRIMARY KEY, image_id TEXT NOT NULL, created REAL NOT NULL);
    CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
    CREATE TABLE IF NOT EXISTS build_sources(key TEXT PRIMARY KEY, files TEXT NOT NULL);
    """,
    3: """
    CREATE TABLE IF NOT EXISTS networks(
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
        data TEXT NOT NULL, created TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS endpoints(
        network_id TEXT NOT NULL, container_id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY(network_id, container_id));
    CREATE TABLE IF NOT EXISTS ip_allocations(
        network_id TEXT NOT NULL, address TEXT NOT NULL, owner TEXT NOT NULL,
        PRIMARY KEY(network_id, address));
    CREATE TABLE IF NOT EXISTS volumes(
        name TEXT PRIMARY KEY, driver TEXT NOT NULL, data TEXT NOT NULL, created TEXT NOT NULL);
    """,
}


class Database:
    """A single shared connection serialised by a lock (SQLite writes are serial anyway)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                     timeout=30)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.tx() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = cur.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        cur.execute(statement)
            cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                        (str(SCHEMA_VERSION),))

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Cursor]:
        """One atomic transaction; rolled back if the block raises."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
