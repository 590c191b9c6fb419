"""The composition root: build every service from the config, recover, and serve."""
from __future__ import annotations

import grp
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from dockyard.api.http import TCPServer, UnixServer, handler_class
from dockyard.api.router import Router
from dockyard.api.routes import register_all
from dockyard.builder.cache import BuildCache
from dockyard.content.store import ContentStore
from dockyard.cluster.node import SwarmNode
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.swarmexec import EngineExecutor, swarm_description
from dockyard.engine.attach import AttachHub
from dockyard.engine.containers import Containers
from dockyard.engine.engine import Engine
from dockyard.engine.events import EventBus
from dockyard.engine.health import HealthMonitor
from dockyard.engine.execs import Execs
from dockyard.engine.images import Images
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.paths import Paths
from dockyard.engine.taskrunner import RuntimeSettings, TaskRunner
from dockyard.engine.networks import Networks
from dockyard.engine.registry import Registries
from dockyard.engine.volumes import Volumes
from dockyard.errors import InvalidArgument, Unavailable
from dockyard.host import mounts
from dockyard.image.store import ImageStore
from dockyard.metadata.containers import ContainerTable
from dockyard.metadata.db import Database
from dockyard.network.bridge import BridgeConfig, NetworkManager
from dockyard.network.ipam import IpamConfig
from dockyard.runtime import oci
from dockyard.runtime.shim import client as shim
from dockyard.runtime.shim.build import shim_binary
from dockyard.runtime.watcher import Watcher
from dockyard.snapshots.overlay import Snapshotter
from dockyard.volume.store import VolumeStore
from dockyard.util import ids
from dockyard.util.atomic import write_bytes

log = logging.getLogger("dockyard.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.paths = Paths(config.data_root.resolve(), config.exec_root.resolve())
        self.paths.make()
        self.db = Database(self.paths.db)
        self.daemon_id = self._daemon_id()
        content = ContentStore(self.paths.content)
        snapshots = Snapshotter(self.paths.snapshots, self.db)
        content.sweep_ingest()
        snapshots.sweep()
        for leftover in [*self.paths.trash.iterdir(), *self.paths.tmp.iterdir()]:
            if (leftover / "merged").is_dir():  # a build step's layer view (buildsteps)
                mounts.unmount(leftover / "merged")
            shutil.rmtree(leftover, ignore_errors=True)
        store = ImageStore(self.db, content, snapshots)
        try:  # layers and blobs of imports/pulls/commits a crash cut short
            store.gc()
        except Exception as exc:  # noqa: BLE001 - a damaged image must not stop the boot
            log.warning("image store gc at boot failed: %s", exc)
        events = EventBus()
        containers = Containers(ContainerTable(self.db), store, self.paths, events)
        events.labels_of = containers.labels_of
        attach = AttachHub()
        self.watcher = Watcher()
        settings = RuntimeSettings(shim_binary(self.paths.bin), config.default_runtime,
                                   dict(config.runtimes), config.cgroup_parent)
        oci.resolve(config.default_runtime, self.paths.runtime_root, settings.runtimes)
        tasks = TaskRunner(self.paths, store, settings, attach, self.watcher)
        lifecycle = Lifecycle(containers, tasks, events)
        volume_store = VolumeStore(self.db, self.paths.data_root / "volumes")
        volume_store.sweep()
        volumes = Volumes(volume_store, containers, self.paths)
        tasks.volumes = volumes
        containers.resolve_mounts = volumes.resolve
        ipam_config = IpamConfig(default_bridge=config.bridge_subnet) if config.bridge_subnet \
            else IpamConfig()
        manager = NetworkManager.system(self.db, BridgeConfig(
            default_bridge=config.bridge, chain_prefix=config.chain_prefix,
            ip_forward=config.ip_forward, ipam=ipam_config))
        networks = Networks(manager, containers, self.paths, offline=config.offline)
        tasks.networks = networks
        self.engine = Engine(self.paths, events, containers, lifecycle, tasks,
                             Execs(containers, tasks),
                             Images(store, events, self.paths, containers.all), attach,
                             BuildCache(self.db), volumes, networks,
                             Registries(store, events, self.paths,
                                        tuple(config.insecure_registries), config.offline),
                             time.time())
        lifecycle.health = HealthMonitor(containers, self.engine.execs)
        self.swarm = SwarmNode(self.paths.data_root / "swarm",
                               EngineExecutor(self.engine, config.swarm_data_port,
                                              config.swarm_publish_addr),
                               swarm_description, data_port=config.swarm_data_port)
        self.servers: list[Any] = []

    def _daemon_id(self) -> str:
        path = self.paths.data_root / "engine-id"
        if path.exists():
            return path.read_text().strip()
        value = ids.new_id()
        write_bytes(path, value.encode())
        return value

    def runtime_paths(self) -> dict[str, str]:
        found = {}
        for name in ("crun", "runc", *self.config.runtimes):
            try:
                found[name] = str(oci.resolve(name, self.paths.runtime_root,
                                              self.config.runtimes).binary)
            except InvalidArgument:
                pass
        return found

    # -- boot recovery ------------------------------------------------------------------
    def recover(self) -> None:
        """Re-adopt live containers, settle those that exited while we were down, and apply
        restart policies (Docker's live-restore)."""
        containers = self.engine.containers
        containers.load()
        orphans = containers.sweep_orphans()
        if orphans:
            log.info("removed %d container directories without a record", len(orphans))
        self.engine.networks.boot()
        shutil.rmtree(self.paths.exec_root / "x", ignore_errors=True)
        (self.paths.exec_root / "x").mkdir(parents=True, exist_ok=True)
        self.watcher.start()
        restart: list[str] = []
        for rec in containers.all():
            if rec.state.status in ("running", "paused"):
                if self.engine.tasks.adopt(rec) and self.engine.lifecycle.health is not None:
                    self.engine.lifecycle.health.start(rec)
            elif rec.state.status == "removing":
                self.engine.lifecycle._remove_locked(rec)
            elif rec.state.status == "restarting":
                rec.state.status = "exited"
                containers.save_state(rec)
                restart.append(rec.id)
            else:
                mounts.unmount(self.paths.rootfs(rec.id))
            policy = (rec.host_config.get("RestartPolicy") or {}).get("Name")
            if rec.state.status in ("exited", "created") and rec.state.started_at[:4] != "0001":
                if policy == "always" or (policy == "unless-stopped" and
                                          not rec.state.manually_stopped):
                    restart.append(rec.id)
        self._sweep_tasks()
        self.engine.networks.release_stale()
        for cid in dict.fromkeys(restart):
            try:
                self.engine.lifecycle.start(cid)
            except Exception as exc:  # noqa: BLE001
                log.warning("restarting %s at boot failed: %s", cid[:12], exc)
        self.swarm.boot()

    def _sweep_tasks(self) -> None:
        """After adoption: the runtime state and task directories of containers that are not
        running or no longer exist (a kill -9 during a start, an exit or a removal). Deleting
        the runtime's container (forced) ends a shim still waiting in it."""
        running = {rec.id for rec in self.engine.containers.all() if rec.state.running}
        for name in ("crun", "runc", *self.config.runtimes):
            root = self.paths.runtime_root / name
            stale = [e.name for e in root.iterdir() if e.name not in running] \
                if root.is_dir() else []
            if not stale:
                continue
            try:
                runtime = oci.resolve(name, self.paths.runtime_root, self.config.runtimes)
            except InvalidArgument:
                continue
            for cid in stale:
                runtime.delete(cid)
        tasks = self.paths.exec_root / "t"
        live = {cid[:16] for cid in running}
        for entry in tasks.iterdir() if tasks.is_dir() else []:
            if entry.name not in live:
                _release_shim(entry)
                shutil.rmtree(entry, ignore_errors=True)

    # -- serving ------------------------------------------------------------------------
    def listen(self) -> None:
        router = Router()
        register_all(router, self)
        handler = handler_class(router.dispatch)
        for host in self.config.hosts:
            self.servers.append(self._server_for(host, handler))
        for server in self.servers:
            threading.Thread(target=server.serve_forever, name="http", daemon=True).start()

    def _server_for(self, host: str, handler: type) -> Any:
        if host.startswith("unix://"):
            path = Path(host[len("unix://"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                path.unlink()
            server = UnixServer(str(path), handler)
            os.chmod(path, 0o660)
            try:
                os.chown(path, 0, grp.getgrnam(self.config.group).gr_gid)
            except KeyError:
                log.warning("group %s not found; socket is root-only", self.config.group)
            return server
        if host.startswith("tcp://"):
            from dockyard.daemon.tls import wrap_server
            address, _, port = host[len("tcp://"):].rpartition(":")
            tcp = TCPServer((address or "127.0.0.1", int(port or 2375)), handler)
            wrap_server(tcp, self.config)
            return tcp
        raise InvalidArgument(f"invalid host: {host}")

    def disk_usage(self) -> dict[str, Any]:
        engine = self.engine
        counts: dict[str, int] = {}
        recs = engine.containers.all()
        for rec in recs:
            counts[rec.image_id] = counts.get(rec.image_id, 0) + 1
        from dockyard.api import views
        images = [views.image_summary(i, counts.get(i.id, 0)) for i in engine.images.store.list()]
        containers = []
        for rec in recs:
            row = views.container_summary(rec, rec.image_id)
            row["SizeRw"] = _du(self.paths.container(rec.id) / "upper")
            row["SizeRootFs"] = row["SizeRw"] + next(
                (i["Size"] for i in images if i["Id"] == rec.image_id), 0)
            containers.append(row)
        volumes = []
        for usage in engine.volumes.store.usage(engine.volumes.users):
            view = usage.volume.inspect()
            view["UsageData"] = {"Size": usage.size, "RefCount": usage.ref_count}
            volumes.append(view)
        return {"LayersSize": sum(i["Size"] for i in images), "Images": images,
                "Containers": containers, "Volumes": volumes, "BuildCache": []}

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for host in self.config.hosts:
            if host.startswith("unix://"):
                Path(host[len("unix://"):]).unlink(missing_ok=True)
        self.swarm.close()
        self.watcher.stop()
        if not any(rec.state.running for rec in self.engine.containers.all()):
            # Nothing needs the bridges and rules until the next boot restores them; with
            # containers still running (they outlive the daemon) everything stays.
            try:
                self.engine.networks.manager.teardown_all()
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log.warning("network teardown at exit: %s", exc)


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _release_shim(state: Path) -> None:
    """A shim launched but never started (the daemon died in between) waits for a start: a
    client that connects and leaves tells it nobody will (the shim then ends)."""
    try:
        shim.AttachConnection.connect(state, "W").close()
    except Unavailable:
        pass
