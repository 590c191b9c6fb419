"""The container registry: records in memory and in SQLite, lookup, create, rename, list.

Lifecycle operations (start, stop, …) live in ``lifecycle``; this module owns identity and
the condition variable that waiters (``wait``, ``attach``) block on.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable
from typing import Any

from dockyard.engine import createconfig
from dockyard.engine.events import EventBus
from dockyard.engine.paths import Paths
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.host import cgwarm, mounts
from dockyard.image.store import ImageStore
from dockyard.metadata.containers import ContainerRecord, ContainerTable, State
from dockyard.util import ids
from dockyard.util.timefmt import now_rfc3339

HOST_AND_LINKS = ("conflicting options: host type networking can't be used with links. This "
                  "would result in undefined behavior")


class Containers:
    def __init__(self, table: ContainerTable, images: ImageStore, paths: Paths,
                 events: EventBus) -> None:
        self.table = table
        self.images = images
        self.paths = paths
        self.events = events
        self._records: dict[str, ContainerRecord] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self.changed = threading.Condition()
        # Set by the wiring: (host_config, image volume paths, container id) → mount specs
        # as dicts, with named and anonymous volumes created (see engine/volumes.py).
        self.resolve_mounts: Callable[[dict[str, Any], list[str], str], list[Any]] | None = None

    # -- identity -----------------------------------------------------------------------
    def load(self) -> None:
        for rec in self.table.all():
            self._records[rec.id] = rec
            self._locks[rec.id] = threading.RLock()

    def sweep_orphans(self) -> list[str]:
        """Boot, after ``load``: directories no record owns (a kill -9 between making them and
        inserting the record, or between deleting the record and moving them to the trash)
        are removed. Returns their names."""
        removed = []
        for entry in sorted(self.paths.containers.iterdir()):
            if entry.name in self._records:
                continue
            mounts.unmount(entry / "rootfs")
            trash = self.paths.trash / entry.name
            try:
                os.rename(entry, trash)
            except OSError:
                trash = entry
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(entry.name)
        return removed

    def all(self) -> list[ContainerRecord]:
        with self._guard:
            return sorted(self._records.values(), key=lambda r: r.created, reverse=True)

    def get(self, cid: str) -> ContainerRecord | None:
        return self._records.get(cid)

    def labels_of(self, cid: str) -> dict[str, str] | None:
        """The labels of container ``cid`` (None if unknown), for its events."""
        rec = self.get(cid)
        return None if rec is None else dict(rec.config.get("Labels") or {})

    def lookup(self, ref: str) -> ContainerRecord:
        """By full id, exact name (with or without '/'), or unique id prefix."""
        found = self.find(ref)
        if found is None:
            raise NotFound(f"No such container: {ref}")
        return found

    def find(self, ref: str) -> ContainerRecord | None:
        with self._guard:
            if ref in self._records:
                return self._records[ref]
            name = ref.lstrip("/")
            for rec in self._records.values():
                if rec.name == name:
                    return rec
            if not ref:
                return None
            matches = [r for r in self._records.values() if r.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        return matches[0] if matches else None

    def lock(self, cid: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(cid, threading.RLock())

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    # -- create / rename / forget -------------------------------------------------------
    def create(self, body: dict[str, Any], name: str | None) -> ContainerRecord:
        cgwarm.prewarm()  # `docker run` starts the container right after creating it
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON: expected an object")
        image_name = body.get("Image") or ""
        if not image_name:
            raise InvalidArgument("no image specified")
        host_config = createconfig.normalise_host_config(body.get("HostConfig"))
        self._check_links(host_config)
        if name:
            name = ids.validate_container_name(name)
        image = self.images.resolve(image_name)
        request = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        config = createconfig.merge_config(request, image)
        config["Image"] = image_name
        path, args = createconfig.command_of(config)
        createconfig.stop_signal_number(config.get("StopSignal"))
        createconfig.log_options(host_config)
        cid = ids.new_id()
        if not config.get("Hostname"):
            network = host_config.get("NetworkMode", "")
            config["Hostname"] = socket.gethostname() if network == "host" else cid[:12]
        with self._guard:
            taken = {r.name for r in self._records.values()}
            if name is None:
                name = ids.generate_name(taken)
        extra: dict[str, Any] = {"networking": body.get("NetworkingConfig") or {}}
        if self.resolve_mounts is not None:
            extra["mounts"] = [spec.to_dict() for spec in self.resolve_mounts(
                host_config, list((config.get("Volumes") or {}).keys()), cid)]
        rec = ContainerRecord(id=cid, name=name, image_id=image.id, image_name=image_name,
                              created=now_rfc3339(), path=path, args=args, config=config,
                              host_config=host_config, state=State(), extra=extra)
        self._make_dirs(cid)
        try:
            self.table.insert(rec)
        except BaseException:
            shutil.rmtree(self.paths.container(cid), ignore_errors=True)
            raise
        with self._guard:
            self._records[cid] = rec
            self._locks[cid] = threading.RLock()
        self.events.publish("container", "create", cid, image=image_name, name=name)
        return rec

    def _check_links(self, host_config: dict[str, Any]) -> None:
        """Docker's create-time check: every ``--link`` names an existing container (400, so
        the CLI does not take it for a missing image and pull)."""
        if host_config.get("Links") and host_config.get("NetworkMode") == "host":
            raise InvalidArgument(HOST_AND_LINKS)
        if not createconfig.uses_legacy_links(host_config):
            return
        for link in host_config.get("Links") or []:
            target, _ = createconfig.parse_link(link)
            other = self.find(target)
            if other is None:
                raise InvalidArgument(f"could not get container for {target}: "
                                      f"No such container: {target}")
            if (other.host_config.get("NetworkMode") or "") == "host":
                raise InvalidArgument(HOST_AND_LINKS)

    def _make_dirs(self, cid: str) -> None:
        base = self.paths.container(cid)
        for sub in ("upper", "work", "rootfs"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(base, 0o710)

    def rename(self, ref: str, new_name: str) -> None:
        rec = self.lookup(ref)
        new_name = ids.validate_container_name(new_name)
        if new_name == rec.name:
            raise InvalidArgument("Renaming a container with the same name as its current "
                                  "name")
        old = rec.name
        with self.lock(rec.id):
            with self._guard:
                for other in self._records.values():
                    if other.name == new_name:
                        raise Conflict(f'Conflict. The container name "/{new_name}" is already'
                                       f' in use by container "{other.id}". You have to remove'
                                       f' (or rename) that container to be able to reuse that'
                                       f' name.')
                self.table.rename(rec, new_name)
        self.events.publish("container", "rename", rec.id, name=new_name, oldName=f"/{old}")

    def forget(self, rec: ContainerRecord) -> None:
        """Delete the record and its directory (the container must be stopped)."""
        self.table.delete(rec.id)
        with self._guard:
            self._records.pop(rec.id, None)
            self._locks.pop(rec.id, None)
        self.notify()
        trash = self.paths.trash / rec.id
        try:
            os.rename(self.paths.container(rec.id), trash)
        except OSError:
            shutil.rmtree(self.paths.container(rec.id), ignore_errors=True)
            return
        threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True).start()

    def save_state(self, rec: ContainerRecord) -> None:
        self.table.save_state(rec)
        self.notify()
