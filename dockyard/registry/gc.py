"""Mark-and-sweep garbage collection that is safe while the registry serves.

Mark: every revision of every repository, its blobs (config, layers) and its children.
Sweep: blobs not marked whose mtime is older than the grace period. Finished uploads, mounts,
HEAD checks and manifest pushes check and touch the blobs they rely on inside
`RegistryStorage.in_use()`; the sweep re-reads each candidate's mtime and unlinks it inside
`RegistryStorage.sweeping()`. A manifest pushed after the mark therefore names only blobs that
are fresh (kept) or that it saw missing (refused with MANIFEST_BLOB_UNKNOWN, the client uploads
again). Readers are never cut short: an unlinked blob stays readable through open handles.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field

from dockyard.registry.manifests import ManifestStore, references
from dockyard.registry.names import RegistryError
from dockyard.registry.storage import RegistryStorage

DEFAULT_GRACE = 3600.0


@dataclass
class GcReport:
    marked: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    kept_young: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)


def mark(store: ManifestStore) -> set[str]:
    marked: set[str] = set()
    for repo in store.repositories():
        for digest in store.revisions(repo):
            marked.add(digest)
            try:
                m = store.get(repo, digest)
                blobs, children = references(m.media_type, json.loads(m.data))
            except (RegistryError, ValueError):
                continue
            marked.update(blobs)
            marked.update(children)
    return marked


def collect(storage: RegistryStorage, grace: float = DEFAULT_GRACE,
            dry_run: bool = False) -> GcReport:
    store = ManifestStore(storage)
    report = GcReport(marked=mark(store))
    for digest in list(storage.all_blobs()):
        if digest in report.marked:
            continue
        with storage.sweeping():
            try:
                young = storage.blob_path(digest).stat().st_mtime > time.time() - grace
            except FileNotFoundError:
                continue
            if not young and not dry_run:
                storage.remove_blob(digest)
        (report.kept_young if young else report.deleted).append(digest)
    for uid in storage.stale_uploads(grace):
        if not dry_run:
            shutil.rmtree(storage.root / "_uploads" / uid, ignore_errors=True)
        report.uploads_removed.append(uid)
    return report
