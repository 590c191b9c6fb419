"""The swarm agent's executor on this daemon's engine: a task becomes a container.

The container is named ``<service>.<slot>.<task id>`` and labelled as Docker labels task
containers (``com.docker.swarm.service.id``, ``.task.id``, …), so ``docker ps`` shows them as
Docker does and the agent finds its containers again after a daemon restart. The container
spec maps onto a create body the way swarmkit's container adapter maps it: ``Command``
replaces the image's entrypoint, ``Args`` its command; resource limits become HostConfig.
A task on overlay networks joins them with the addresses the manager allocated (the first is
its ``NetworkMode``, though never ``ingress`` when it has another); the networks themselves
are ``network.overlay``'s, driven by the agent through :meth:`EngineExecutor.networks`, which
also keeps the routing mesh's listeners (``network.mesh``) equal to what the ingress network's
state asks for. Only ``host``-mode ports are published by the task's container itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import os
import shutil
import socket
from pathlib import Path

from dockyard import errors
from dockyard.cluster.agent import ContainerState, Run
from dockyard.cluster.agentnet import DEFAULT_DATA_PORT, NetState
from dockyard.engine import system
from dockyard.engine.engine import Engine
from dockyard.network.mesh import DEFAULT_PUBLISH_ADDR, Mesh, MeshListener
from dockyard.network.overlay import OverlayNet, Overlays

SERVICE_ID = "com.docker.swarm.service.id"
SERVICE_NAME = "com.docker.swarm.service.name"
TASK_ID = "com.docker.swarm.task.id"
TASK_NAME = "com.docker.swarm.task.name"
NODE_ID = "com.docker.swarm.node.id"


def create_body(run: Run) -> dict[str, Any]:
    spec: Mapping[str, Any] = run.task.spec.get("ContainerSpec") or {}
    labels = dict(spec.get("Labels") or {})
    labels.update({SERVICE_ID: run.task.service_id, SERVICE_NAME: run.service_name,
                   TASK_ID: run.task.id, TASK_NAME: run.name,
                   NODE_ID: run.node_id})
    body: dict[str, Any] = {"Image": spec.get("Image", ""), "Labels": labels}
    if spec.get("Command"):
        body["Entrypoint"] = list(spec["Command"])
        body["Cmd"] = list(spec.get("Args") or [])
    elif spec.get("Args"):
        body["Cmd"] = list(spec["Args"])
    for wire, key in (("Env", "Env"), ("WorkingDir", "Dir"), ("User", "User"),
                      ("Hostname", "Hostname"), ("StopSignal", "StopSignal"), ("Tty", "TTY"),
                      ("OpenStdin", "OpenStdin")):
        if spec.get(key):
            body[wire] = spec[key]
    if spec.get("Healthcheck"):
        body["Healthcheck"] = spec["Healthcheck"]
    if spec.get("StopGracePeriod") is not None:
        body["StopTimeout"] = int(spec["StopGracePeriod"]) // 1_000_000_000
    body["HostConfig"] = _host_config(run.task.spec, spec)
    if run.networks:
        primary = next((n for n in run.networks if not n.ingress), run.networks[0])
        body["HostConfig"]["NetworkMode"] = primary.name
        body["NetworkingConfig"] = {"EndpointsConfig": {
            n.name: {"IPAMConfig": {"IPv4Address": n.address}, "Aliases": list(n.aliases)}
            for n in run.networks}}
    for port in run.ports:  # host mode: the node running the task publishes the port
        if (port.get("PublishMode") or "ingress") != "host":
            continue  # the routing mesh's (every node listens, see network.mesh)
        key = f"{int(port.get('TargetPort') or 0)}/{port.get('Protocol') or 'tcp'}"
        body.setdefault("ExposedPorts", {})[key] = {}
        published = port.get("PublishedPort")
        body["HostConfig"].setdefault("PortBindings", {}).setdefault(key, []).append(
            {"HostIp": "", "HostPort": str(published) if published else ""})
    return body


def _host_config(task_spec: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    limits = ((task_spec.get("Resources") or {}).get("Limits") or {})
    hc: dict[str, Any] = {}
    if limits.get("NanoCPUs"):
        hc["NanoCpus"] = int(limits["NanoCPUs"])
    if limits.get("MemoryBytes"):
        hc["Memory"] = int(limits["MemoryBytes"])
    if limits.get("Pids"):
        hc["PidsLimit"] = int(limits["Pids"])
    binds = []
    for m in spec.get("Mounts") or []:
        if m.get("Type") in ("bind", "volume") and m.get("Target"):
            source = m.get("Source") or ""
            suffix = ":ro" if m.get("ReadOnly") else ""
            if source:
                binds.append(f"{source}:{m['Target']}{suffix}")
    if binds:
        hc["Binds"] = binds
    if spec.get("Init"):
        hc["Init"] = True
    if spec.get("ReadOnly"):
        hc["ReadonlyRootfs"] = True
    if spec.get("CapabilityAdd"):
        hc["CapAdd"] = list(spec["CapabilityAdd"])
    if spec.get("CapabilityDrop"):
        hc["CapDrop"] = list(spec["CapabilityDrop"])
    return hc


def overlay_net(state: NetState) -> OverlayNet:
    return OverlayNet(state.id, state.name, state.subnet, state.vni, state.address,
                      tuple((p.addr, p.port) for p in state.peers),
                      tuple((ip, p.addr, p.port) for ip, p in state.remote), state.names,
                      state.attachable)


class EngineExecutor:
    def __init__(self, engine: Engine, data_port: int = DEFAULT_DATA_PORT,
                 publish_addr: str = DEFAULT_PUBLISH_ADDR) -> None:
        self.engine = engine
        self.mesh = Mesh(publish_addr)
        manager = engine.networks.manager
        self.overlays = Overlays(manager, lambda: engine.networks.dns,
                                 engine.paths.exec_root / "overlay",
                                 str(engine.paths.exec_root), data_port)
        manager.overlay = self.overlays

    def networks(self, wanted: Sequence[NetState]) -> set[str]:
        ingress = next((n for n in wanted if n.ingress), None)
        if ingress is None:  # the listeners go before the namespace they reach into
            self.mesh.sync(None, ())
        ready = self.overlays.sync([overlay_net(n) for n in wanted])
        if ingress is not None:
            here = ingress.id in ready
            self.mesh.sync(self.overlays.path(ingress.id) if here else None,
                           [MeshListener(m.protocol, m.port, m.target, m.backends)
                            for m in ingress.mesh])
        return ready

    def release_networks(self, force: bool) -> None:
        self.mesh.close()
        self.overlays.close(force)

    def start(self, run: Run) -> tuple[str, int]:
        body = create_body(run)
        if run.files:
            body["HostConfig"].setdefault("Binds", []).extend(self._write_files(run))
        try:
            rec = self.engine.containers.create(body, run.name)
        except errors.DockyardError:
            self._drop_files(run.task.id)
            raise
        try:
            self.engine.lifecycle.start(rec.id)
        except errors.DockyardError:
            self._discard(rec.id)
            raise
        started = self.engine.containers.lookup(rec.id)
        return rec.id, int(started.state.pid or 0)

    def _write_files(self, run: Run) -> list[str]:
        """The task's secrets and configs as files under this daemon's exec root (a tmpfs
        on most hosts), each bind-mounted read-only at its target."""
        directory = self._files_dir(run.task.id)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, mode=0o700)
        binds = []
        for n, f in enumerate(run.files):
            path = directory / str(n)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, f.data)
                os.fchown(fd, f.uid, f.gid)
                os.fchmod(fd, f.mode)
            finally:
                os.close(fd)
            binds.append(f"{path}:{f.target}:ro")
        return binds

    def _files_dir(self, task_id: str) -> Path:
        return self.engine.paths.exec_root / "swarm-files" / task_id

    def _drop_files(self, task_id: str) -> None:
        if task_id:
            shutil.rmtree(self._files_dir(task_id), ignore_errors=True)

    def _discard(self, cid: str) -> None:
        try:
            self.remove(cid)
        except errors.DockyardError:
            pass

    def state(self, container_id: str) -> ContainerState | None:
        rec = self.engine.containers.get(container_id)
        if rec is None:
            return None
        return ContainerState(rec.state.running, int(rec.state.exit_code or 0),
                              rec.state.error or "")

    def stop(self, container_id: str, timeout: float) -> None:
        try:
            self.engine.lifecycle.stop(container_id, timeout=int(timeout))
        except errors.NotModified:
            pass

    def remove(self, container_id: str) -> None:
        rec = self.engine.containers.get(container_id)
        task_id = (rec.config.get("Labels") or {}).get(TASK_ID, "") if rec else ""
        self.engine.lifecycle.remove(container_id, force=True)
        self._drop_files(str(task_id))

    def containers(self) -> dict[str, str]:
        out = {}
        for rec in self.engine.containers.all():
            task_id = (rec.config.get("Labels") or {}).get(TASK_ID)
            if task_id:
                out[task_id] = rec.id
        return out


def swarm_description() -> dict[str, Any]:
    """A node's ``Description`` as this host reports it when it joins."""
    return {"Hostname": socket.gethostname(),
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": (os.cpu_count() or 1) * 1_000_000_000,
                          "MemoryBytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
            "Engine": {"EngineVersion": system.version()["Version"], "Plugins": [
                {"Type": "Log", "Name": "json-file"}, {"Type": "Network", "Name": "bridge"},
                {"Type": "Network", "Name": "host"}, {"Type": "Network", "Name": "null"},
                {"Type": "Volume", "Name": "local"}]},
            "TLSInfo": {}}
