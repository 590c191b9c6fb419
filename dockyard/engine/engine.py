"""The engine: every use-case the API calls, wired from the services it is built from."""
from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.diff import archive
from dockyard.diff.changes import Change, overlay_changes
from dockyard.builder.cache import BuildCache
from dockyard.engine import rootfs
from dockyard.engine.attach import AttachHub, Session
from dockyard.engine.containers import Containers
from dockyard.engine.events import EventBus
from dockyard.engine.execs import Execs
from dockyard.engine.images import Images
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.paths import Paths
from dockyard.engine.taskrunner import TaskRunner
from dockyard.engine.networks import Networks
from dockyard.engine.registry import Registries
from dockyard.engine.volumes import Volumes
from dockyard.errors import Conflict, InvalidArgument
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime.shim import client as shim
from dockyard.volume.fsutil import tree_size


@dataclass
class Engine:
    paths: Paths
    events: EventBus
    containers: Containers
    lifecycle: Lifecycle
    tasks: TaskRunner
    execs: Execs
    images: Images
    attach: AttachHub
    build_cache: BuildCache
    volumes: Volumes
    networks: Networks
    registries: Registries
    started_at: float = 0.0

    # -- inspection ---------------------------------------------------------------------
    def lowers_of(self, rec: ContainerRecord) -> list[str]:
        image = self.images.store.get(rec.image_id)
        if image is None or not image.chain_id:
            return []
        try:
            return [str(p) for p in self.images.store.snapshots.lowers(image.chain_id)]
        except Exception:  # noqa: BLE001 - a layer being re-unpacked
            return []

    def changes(self, rec: ContainerRecord) -> list[Change]:
        from pathlib import Path
        lowers = [rootfs.init_layer(self.paths, rec), *(Path(p) for p in self.lowers_of(rec))]
        return overlay_changes(self.paths.container(rec.id) / "upper", lowers)

    def top(self, rec: ContainerRecord, ps_args: str) -> dict[str, Any]:
        if rec.state.status not in ("running", "paused"):
            raise Conflict(f"Container {rec.id} is not running")
        pids = set(self.tasks.cgroup(rec).pids()) or {rec.state.pid}
        proc = subprocess.run(["ps", *ps_args.split()], capture_output=True, text=True)
        if proc.returncode != 0:
            raise InvalidArgument(f"ps: {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument("Couldn't find PID field in ps output")
        index = titles.index("PID")
        processes = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > index and fields[index].isdigit() and int(fields[index]) in pids:
                processes.append(fields)
        return {"Titles": titles, "Processes": processes}

    # -- streams ------------------------------------------------------------------------
    def attach_session(self, rec: ContainerRecord, session: Session, *, stream: bool,
                       logs: bool, hijack: Callable[[], socket.socket]) -> None:
        """Bridge a client to the container's stdio; ``hijack`` answers the client.

        The session is registered (connected, or pending for the next start) *before* the
        client hears the upgrade: ``docker run`` sends ``start`` as soon as it does, and a
        short-lived process must not finish in between and take its output with it.
        """
        if not stream:
            hijack().close()
            return
        with self.containers.lock(rec.id):
            running = rec.state.status in ("running", "paused")
            if running:
                session.connect(self.paths.task_state(rec.id))
            else:
                self.attach.add_pending(rec.id, session)
        try:
            client = session.sock = hijack()
        except BaseException:
            self._abandon(rec.id, session)
            raise
        if not running:
            session.connected.wait()
        if session.cancelled:
            client.close()
        else:
            session.pump()

    def _abandon(self, cid: str, session: Session) -> None:
        """The client went away before it was answered: release what was set up for it."""
        self.attach.discard(cid, session)
        if session.conn is not None:
            session.conn.close()

    def resize(self, rec: ContainerRecord, height: int, width: int) -> None:
        if rec.state.status not in ("running", "paused"):
            raise Conflict(f"Container {rec.id} is not running")
        shim.resize(self.paths.task_state(rec.id), height, width)

    # -- files --------------------------------------------------------------------------
    def export(self, rec: ContainerRecord, out: Any) -> None:
        with self.containers.lock(rec.id):
            mounted_here = rec.state.status not in ("running", "paused")
            root = rootfs.mount(self.paths, self.images.store, rec)
            try:
                archive.tar_path(root, "/", out)
            finally:
                if mounted_here:
                    rootfs.unmount(self.paths, rec)
        self.events.publish("container", "export", rec.id, image=rec.image_name, name=rec.name)

    def prune_containers(self, selected: Callable[[ContainerRecord], bool]) -> dict[str, Any]:
        """Remove the stopped containers ``selected`` accepts (the prune filters)."""
        deleted = []
        reclaimed = 0
        for rec in self.containers.all():
            if rec.state.status in ("exited", "created", "dead") and selected(rec):
                size = tree_size(self.paths.container(rec.id) / "upper")
                self.lifecycle.remove(rec.id)
                deleted.append(rec.id)
                reclaimed += max(0, size)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
