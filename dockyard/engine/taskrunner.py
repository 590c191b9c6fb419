"""Runs a container record as a runtime task: rootfs, bundle, shim, start, exits, restarts.

The engine-facing half of the runtime: it turns a record into an OCI bundle (through
``specopts``), launches the shim, connects waiting attach sessions before the process starts,
and turns shim exits into ``on_exit`` calls (with OOM read from the cgroup).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.engine import createconfig, rootfs, specopts
from dockyard.engine.attach import AttachHub
from dockyard.engine.paths import Paths
from dockyard.errors import Conflict, Unavailable
from dockyard.host import cgroups, cgwarm
from dockyard.image.store import ImageStore
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime import oci
from dockyard.runtime.seccomp_bpf import with_precompiled_seccomp
from dockyard.runtime.shim import client as shim
from dockyard.runtime.watcher import Watcher
from dockyard.util.atomic import write_bytes
from dockyard.util.timefmt import now_rfc3339

if TYPE_CHECKING:
    from dockyard.engine.networks import Networks
    from dockyard.engine.volumes import Volumes

log = logging.getLogger("dockyard.engine")

ExitHandler = Callable[[ContainerRecord, int, str, bool], None]


@dataclass(frozen=True)
class RuntimeSettings:
    shim_binary: Path
    default_runtime: str
    runtimes: dict[str, str]
    cgroup_parent: str = "dockyard"


class TaskRunner:
    def __init__(self, paths: Paths, images: ImageStore, settings: RuntimeSettings,
                 attach: AttachHub, watcher: Watcher) -> None:
        self.paths = paths
        self.images = images
        self.settings = settings
        self.attach = attach
        self.watcher = watcher
        self.cgroup_mode = cgroups.detect()
        self.hide_cgroup2 = cgroups.needs_hiding()
        self.on_exit: ExitHandler = lambda *a: None
        self.lock_for: Callable[[str], threading.RLock] = lambda cid: threading.RLock()
        self._timers: dict[str, threading.Timer] = {}
        self.resolve_namespace: specopts.NamespaceResolver | None = None
        self.lookup: Callable[[str], ContainerRecord] | None = None
        self.volumes: Volumes | None = None
        self.networks: Networks | None = None
        self._runtimes: dict[str, oci.Runtime] = {}

    # -- helpers ------------------------------------------------------------------------
    def runtime_for(self, rec: ContainerRecord) -> oci.Runtime:
        name = rec.host_config.get("Runtime") or self.settings.default_runtime
        runtime = self._runtimes.get(name)
        if runtime is None or not runtime.binary.exists():  # found once, checked cheaply after
            runtime = oci.resolve(name, self.paths.runtime_root, self.settings.runtimes)
            self._runtimes[name] = runtime
        return runtime

    def cgroup_path(self, rec: ContainerRecord) -> str:
        parent = rec.host_config.get("CgroupParent") or self.settings.cgroup_parent
        return f"/{parent.strip('/')}/{rec.id}"

    def cgroup(self, rec: ContainerRecord) -> cgroups.ContainerCgroup:
        return cgroups.ContainerCgroup(self.cgroup_path(rec), self.cgroup_mode)

    # -- start --------------------------------------------------------------------------
    def start(self, rec: ContainerRecord) -> int:
        cgwarm.prewarm()  # the runtime's cgroup migration, moments from now, finds the lock warm
        runtime = self.runtime_for(rec)
        runtime.delete(rec.id)  # a stale task from an earlier run
        if self.volumes is not None:
            self.volumes.make_mountpoints(rec)
        root = rootfs.mount(self.paths, self.images, rec)
        mounts, tmpfs = self.volumes.attach(rec, root) if self.volumes is not None else ([], None)
        try:
            # setup undoes its own half-done work; the volumes attached above are undone here
            sandbox = self.networks.setup(rec) if self.networks is not None else None
            return self._launch(rec, runtime, root, mounts, tmpfs, sandbox)
        except BaseException:
            if self.networks is not None:
                self.networks.teardown(rec)
            if self.volumes is not None:
                self.volumes.detach(rec)
            raise

    def _launch(self, rec: ContainerRecord, runtime: oci.Runtime, root: Path,
                mounts: list[Any], tmpfs: dict[str, str] | None, sandbox: Any) -> int:
        address = sandbox.endpoints[0].ip if sandbox and sandbox.endpoints else ""
        etc = self._peer_etc(rec) or rootfs.write_etc_files(
            self.paths, rec, address=address, extra_lines=sandbox.hosts if sandbox else None,
            nameservers=sandbox.nameservers if sandbox else None)
        spec = specopts.build(rec, root, etc, self.cgroup_path(rec), mounts, tmpfs=tmpfs,
                              network=sandbox.path if sandbox else None,
                              resolve=self.resolve_namespace,
                              cgroupns="private" if self.cgroup_mode is cgroups.Mode.V2
                              else "host",
                              extra_opts=[with_precompiled_seccomp(
                                  self.paths.data_root / "seccomp-cache", runtime.binary)])
        specopts.check_executable(root, spec)
        bundle = self.paths.container(rec.id)
        write_bytes(bundle / "config.json", json.dumps(spec).encode(), sync=False)
        state = self.paths.task_state(rec.id)
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        size, files = createconfig.log_options(rec.host_config)
        log_path = self.paths.log(rec.id)
        if rec.host_config.get("LogConfig", {}).get("Type") == "none":
            log_path = Path("/dev/null")
        config = shim.ShimConfig(
            runtime=runtime.binary, runtime_root=runtime.root, container_id=rec.id,
            bundle=bundle, state_dir=state, log_path=log_path, log_max_size=size,
            log_max_files=files, tty=bool(rec.config.get("Tty")),
            stdin=bool(rec.config.get("OpenStdin")), hide_cgroup2=self.hide_cgroup2)
        launched = shim.launch(self.settings.shim_binary, config)
        rec.state.shim_pid = launched.shim_pid
        self.attach.connect_pending(rec.id, state)
        # The exit watcher's own connection sends the start (a W connection may start): one
        # connection and one accept fewer on the start path.
        waiter = shim.AttachConnection.connect(state, "W")
        try:
            pid = waiter.start()
        except BaseException:
            waiter.close()
            raise
        self._watch(rec, waiter)
        return pid

    def _peer_etc(self, rec: ContainerRecord) -> dict[str, Path] | None:
        """``--network container:X`` shares X's hostname, hosts and resolv.conf, as Docker."""
        mode = rec.host_config.get("NetworkMode") or ""
        if not mode.startswith("container:") or self.lookup is None:
            return None
        peer = self.lookup(mode[len("container:"):])
        rec.config["Hostname"] = peer.config.get("Hostname") or peer.id[:12]
        rec.config["Domainname"] = peer.config.get("Domainname") or ""
        files = {name: self.paths.container(peer.id) / name
                 for name in ("hostname", "hosts", "resolv.conf")}
        return files if all(p.exists() for p in files.values()) else None

    def _watch(self, rec: ContainerRecord, conn: shim.AttachConnection) -> None:
        def readable() -> bool:
            frames = conn.read_available()
            return conn.eof or any(f.type == shim.ShimFrame.EXIT for f in frames)

        def done() -> None:
            conn.close()
            self._finish(rec)

        conn.setblocking(False)
        self.watcher.watch(conn, readable, done)

    def _finish(self, rec: ContainerRecord) -> None:
        state = self.paths.task_state(rec.id)
        status = shim.read_exit(state)
        oom = self.cgroup(rec).oom_killed()
        if status is None:
            code, finished = 255, now_rfc3339()
        else:
            code, finished = status.exit_code, status.finished_at
        if self.volumes is not None:
            self.volumes.detach(rec)
        if self.networks is not None:
            self.networks.teardown(rec)
        self.on_exit(rec, code, finished, oom)
        # Off the critical path: waiters already have the exit. Under the container lock, and
        # only if no new task was started meanwhile (a start deletes stale state itself).
        with self.lock_for(rec.id):
            if rec.state.status not in ("running", "paused"):
                self.runtime_for(rec).delete(rec.id)
                shutil.rmtree(state, ignore_errors=True)

    def adopt(self, rec: ContainerRecord) -> bool:
        """Boot: re-attach to a live shim (True), or settle a task that ended meanwhile."""
        state = self.paths.task_state(rec.id)
        try:
            conn = shim.AttachConnection.connect(state, "W")
        except Unavailable:
            self._finish(rec)
            return False
        self._watch(rec, conn)
        return True

    # -- signals and cleanup ------------------------------------------------------------
    def kill(self, rec: ContainerRecord, signal: int) -> None:
        try:
            self.runtime_for(rec).kill(rec.id, signal)
        except Exception as exc:  # noqa: BLE001 - raced with the exit
            if rec.state.pid and _alive(rec.state.pid):
                raise Conflict(f"Cannot kill container {rec.id}: {exc}") from None

    def pause(self, rec: ContainerRecord) -> None:
        self.runtime_for(rec).pause(rec.id)

    def resume(self, rec: ContainerRecord) -> None:
        self.runtime_for(rec).resume(rec.id)

    def cleanup(self, rec: ContainerRecord) -> None:
        """Forget a removed container's task. The runtime's own cleanup runs in the background:
        no task can start again under this id, and nobody waits for it."""
        self.cancel_restart(rec)
        self.attach.cancel(rec.id)
        runtime = self.runtime_for(rec)
        state = self.paths.task_state(rec.id)

        def forget() -> None:
            with self.lock_for(rec.id):
                runtime.delete(rec.id)
                shutil.rmtree(state, ignore_errors=True)

        threading.Thread(target=forget, daemon=True).start()

    def schedule_restart(self, rec: ContainerRecord, delay: float,
                         fn: Callable[[ContainerRecord], None]) -> None:
        timer = threading.Timer(delay, fn, args=(rec,))
        timer.daemon = True
        self._timers[rec.id] = timer
        timer.start()

    def cancel_restart(self, rec: ContainerRecord) -> None:
        timer = self._timers.pop(rec.id, None)
        if timer is not None:
            timer.cancel()
        if rec.state.status == "restarting":
            rec.state.status = "exited"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
