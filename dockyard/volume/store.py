"""Docker's ``local`` volume driver: one directory per volume, one row per volume in SQLite.

``<root>/<name>/_data`` is the volume's Mountpoint (root = ``<data-root>/volumes``). A volume
made with options (``type=tmpfs,device=tmpfs,o=size=100m`` or ``type=none,o=bind,device=/p``)
has ``_data`` mounted on first use and unmounted when its last user lets go.

Crash safety: a new volume's directory is made under ``<root>/.tmp`` and renamed into place
before its row commits; removal deletes the row, then moves the directory to
``<root>/.trash``. ``sweep()`` (at boot, after running containers re-took their mounts)
deletes directories without a row and everything in ``.tmp``/``.trash``. Names never start
with ``.``, so these never collide with a volume.

Who uses a volume is the engine's knowledge (container records): calls that care take
``in_use_by(name) -> [container ids]``. Mounts taken with :meth:`VolumeStore.mount` count too.

Beside it: ``options`` (``--opt`` validation, mount(2) arguments), ``filters`` (list/prune
filters), ``fsutil`` (mount points, unmounting and removing trees, sizes).
"""
from __future__ import annotations

import builtins
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.metadata.db import Database
from dockyard.util.ids import new_id
from dockyard.volume.filters import (
    LIST_FILTERS,
    PRUNE_FILTERS,
    check_filters,
    filter_volumes,
    parse_bool,
)
from dockyard.volume.fsutil import is_mounted, remove_tree, tree_size, unmount_all
from dockyard.volume.options import mount_volume, parse_options

DEFAULT_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
InUseBy = Callable[[str], Sequence[str]]


def _nobody(_name: str) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    mountpoint: Path
    created: str  # RFC 3339, seconds
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def inspect(self) -> dict[str, Any]:
        """``GET /volumes/{name}``: Docker's fields; empty Labels/Options are null."""
        return {"CreatedAt": self.created, "Driver": self.driver,
                "Labels": dict(self.labels) or None, "Mountpoint": str(self.mountpoint),
                "Name": self.name, "Options": dict(self.options) or None, "Scope": "local"}


@dataclass(frozen=True)
class VolumeUsage:
    """One row of ``system df``: size in bytes (-1 if unknown), containers using it."""

    volume: Volume
    size: int
    ref_count: int


@dataclass(frozen=True)
class PruneReport:
    deleted: tuple[str, ...]
    reclaimed: int


def validate_name(name: str) -> None:
    """The local driver's name rule, with Docker's ``create <name>: …`` texts."""
    if len(name) == 1:
        raise InvalidArgument(f"create {name}: volume name is too short, names should be at "
                              "least two alphanumeric characters")
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            f'only "{_NAME_CHARS}" are allowed. If you intended to pass a host directory, '
            "use absolute path")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class VolumeStore:
    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = root
        self._lock = threading.RLock()
        self._active: dict[str, set[str]] = {}  # name -> refs holding it mounted
        root.mkdir(mode=0o701, parents=True, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------------
    def data_path(self, name: str) -> Path:
        return self.root / name / "_data"

    @property
    def _tmp(self) -> Path:
        return self.root / ".tmp"

    @property
    def _trash(self) -> Path:
        return self.root / ".trash"

    # -- records -------------------------------------------------------------------------------
    def _volume(self, row: tuple[Any, ...]) -> Volume:
        name, driver, data, created = row
        info = json.loads(data)
        return Volume(name, driver, self.data_path(name), created, info.get("labels") or {},
                      info.get("options") or {})

    def find(self, name: str) -> Volume | None:
        rows = self.db.query("SELECT name, driver, data, created FROM volumes WHERE name=?",
                             (name,))
        return self._volume(rows[0]) if rows else None

    def get(self, name: str) -> Volume:
        volume = self.find(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def all(self) -> list[Volume]:
        rows = self.db.query("SELECT name, driver, data, created FROM volumes ORDER BY name")
        return [self._volume(row) for row in rows]

    # -- create --------------------------------------------------------------------------------
    def create(self, name: str | None = None, driver: str = DEFAULT_DRIVER,
               labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None, anonymous: bool = False) -> Volume:
        """A new volume, or the existing one of that name (Docker ignores the new labels and
        options then). No name: a random 64-hex one, labelled anonymous like Docker 23+."""
        driver = driver or DEFAULT_DRIVER
        if not name:
            name, anonymous = new_id(), True
        with self._lock:
            existing = self.find(name)
            if existing is not None:
                return existing
            if driver != DEFAULT_DRIVER:
                raise NotFound(f"create {name}: error looking up volume plugin {driver}: "
                               f'plugin "{driver}" not found')
            validate_name(name)
            opts = dict(options or {})
            parse_options(name, opts)
            tags = dict(labels or {})
            if anonymous:
                tags[ANONYMOUS_LABEL] = ""
            self._make_dir(name)
            volume = Volume(name, driver, self.data_path(name), _now(), tags, opts)
            self._insert(volume)
            return volume

    def _make_dir(self, name: str) -> None:
        final = self.root / name
        if final.exists() or final.is_symlink():  # an orphan from a crash: not this volume's
            self._discard(final)
        self._tmp.mkdir(mode=0o700, exist_ok=True)
        temp = self._tmp / f"{name}-{new_id()[:12]}"
        (temp / "_data").mkdir(mode=0o755, parents=True)
        os.chmod(temp, 0o755)
        os.chmod(temp / "_data", 0o755)  # whatever the umask
        temp.rename(final)

    def _insert(self, volume: Volume) -> None:
        data = json.dumps({"mountpoint": str(volume.mountpoint), "labels": dict(volume.labels),
                           "options": dict(volume.options),
                           "anonymous": volume.anonymous})
        with self.db.tx() as cur:
            cur.execute("INSERT INTO volumes(name, driver, data, created) VALUES(?,?,?,?)",
                        (volume.name, volume.driver, data, volume.created))

    # -- list, remove, prune -------------------------------------------------------------------
    def _users(self, name: str, in_use_by: InUseBy) -> list[str]:
        users = list(in_use_by(name))
        return users + sorted(r for r in self._active.get(name, ()) if r not in users)

    def list(self, filters: Mapping[str, Sequence[str]] | None = None,
             in_use_by: InUseBy = _nobody) -> list[Volume]:
        """``GET /volumes``: filters ``dangling``, ``name`` (regexp), ``driver``, ``label``."""
        filters = dict(filters or {})
        check_filters(filters, LIST_FILTERS)
        return filter_volumes(self.all(), filters, lambda n: bool(self._users(n, in_use_by)))

    def remove(self, name: str, force: bool = False, in_use_by: InUseBy = _nobody) -> None:
        """``DELETE /volumes/{name}``; with ``force`` a missing volume is not an error."""
        with self._lock:
            if self.find(name) is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self._users(name, in_use_by)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            with self.db.tx() as cur:
                cur.execute("DELETE FROM volumes WHERE name=?", (name,))
            self._discard(self.root / name)

    def prune(self, filters: Mapping[str, Sequence[str]] | None = None,
              in_use_by: InUseBy = _nobody) -> PruneReport:
        """``POST /volumes/prune``: unused local volumes without mount options; only anonymous
        ones unless ``all=true`` (Docker 23+); filters ``label``, ``label!``, ``all``."""
        filters = {k: list(v) for k, v in (filters or {}).items()}
        check_filters(filters, PRUNE_FILTERS)
        every = filters.pop("all", [])
        if len(every) > 1:
            raise InvalidArgument(f"invalid filter 'all=[{' '.join(every)}]': only one value "
                                  "is expected")
        if not (every and parse_bool("all", every[0])):
            filters["label"] = [*filters.get("label", []), ANONYMOUS_LABEL]
        deleted: list[str] = []
        reclaimed = 0
        for volume in filter_volumes(self.all(), filters, lambda n: False):
            if volume.driver != DEFAULT_DRIVER or volume.options:
                continue
            size = tree_size(volume.mountpoint)
            try:
                self.remove(volume.name, in_use_by=in_use_by)
            except (Conflict, NotFound):
                continue
            deleted.append(volume.name)
            reclaimed += max(size, 0)
        return PruneReport(tuple(deleted), reclaimed)

    def usage(self, in_use_by: InUseBy = _nobody) -> builtins.list[VolumeUsage]:
        """``system df``: local volumes without mount options, with size and users."""
        return [VolumeUsage(v, tree_size(v.mountpoint), len(self._users(v.name, in_use_by)))
                for v in self.all() if v.driver == DEFAULT_DRIVER and not v.options]

    # -- mount / unmount -----------------------------------------------------------------------
    def mount(self, name: str, ref: str) -> Path:
        """Make the volume usable for ``ref`` (a container id, or any unique token) and
        return its ``_data``. Volumes with options are mounted by their first user; a mount
        already there (a daemon restart) is adopted."""
        with self._lock:
            volume = self.get(name)
            data = volume.mountpoint
            if not data.is_dir():
                data.mkdir(mode=0o755, parents=True)  # healed: someone removed it by hand
            opts = parse_options(name, dict(volume.options))
            if opts is not None and not is_mounted(data):
                mount_volume(opts, data)
            self._active.setdefault(name, set()).add(ref)
            return data

    def unmount(self, name: str, ref: str) -> None:
        """``ref`` lets go; the last one out unmounts a volume with options. Idempotent."""
        with self._lock:
            refs = self._active.get(name)
            if refs is None or ref not in refs:
                return
            refs.discard(ref)
            if refs:
                return
            del self._active[name]
            volume = self.find(name)
            if volume is not None and volume.options:
                unmount_all(volume.mountpoint)

    def active(self, name: str) -> frozenset[str]:
        """The refs holding ``name`` mounted right now."""
        with self._lock:
            return frozenset(self._active.get(name, ()))

    # -- boot ----------------------------------------------------------------------------------
    def sweep(self) -> builtins.list[str]:
        """Delete what a crash left: directories without a row, ``.tmp`` and ``.trash``
        contents; unmount volumes nobody holds mounted. Returns the orphan names removed."""
        with self._lock:
            known = {v.name: v for v in self.all()}
            removed: builtins.list[str] = []
            for entry in sorted(self.root.iterdir()):
                if entry.name in (".tmp", ".trash"):
                    for child in entry.iterdir():
                        unmount_all(child)
                        remove_tree(child)
                elif entry.name not in known:
                    self._discard(entry)
                    removed.append(entry.name)
            for name, volume in known.items():
                if volume.options and name not in self._active:
                    unmount_all(volume.mountpoint)
            return removed

    def _discard(self, path: Path) -> None:
        """Unmount everything below ``path``, move it to the trash, delete it."""
        unmount_all(path)
        self._trash.mkdir(mode=0o700, exist_ok=True)
        target = self._trash / f"{path.name}-{new_id()[:12]}"
        path.rename(target)
        remove_tree(target)
