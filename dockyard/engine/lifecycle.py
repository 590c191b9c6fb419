"""Container lifecycle: start, stop, kill, restart, pause, remove, wait, and exits.

The per-container lock serialises operations on one container. Exits arrive from the runtime
watcher; restart policies are applied there, and again at boot (``recovery``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
import signal as signals
import threading
import time
from dataclasses import dataclass

from dockyard.engine import createconfig, rootfs
from dockyard.engine.containers import Containers
from dockyard.engine.events import EventBus
from dockyard.engine.health import HealthMonitor
from dockyard.engine.taskrunner import TaskRunner
from dockyard.errors import Conflict, InvalidArgument, NotModified
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime.shim import client as shim
from dockyard.util.timefmt import now_rfc3339, parse_rfc3339

log = logging.getLogger("dockyard.engine")


@dataclass(frozen=True)
class WaitResult:
    status_code: int
    error: str = ""


class Lifecycle:
    def __init__(self, containers: Containers, tasks: TaskRunner, events: EventBus) -> None:
        self.containers = containers
        self.tasks = tasks
        self.events = events
        tasks.on_exit = self.handle_exit
        self.health: HealthMonitor | None = None  # set by the wiring (needs execs)
        tasks.lock_for = containers.lock
        tasks.resolve_namespace = self.namespace_path
        tasks.lookup = self.containers.lookup

    def namespace_path(self, ref: str, kind: str) -> str:
        """``--network container:web`` and friends: the running container's namespace file."""
        other = self.containers.lookup(ref)
        if other.state.status not in ("running", "paused") or not other.state.pid:
            raise Conflict(f"cannot join namespace of a non running container: {ref}")
        name = {"network": "net", "net": "net"}.get(kind, kind)
        return f"/proc/{other.state.pid}/ns/{name}"

    # -- start --------------------------------------------------------------------------
    def start(self, ref: str) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if rec.state.status == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if rec.state.running:
                raise NotModified("container already started")
            if rec.state.status == "removing":
                raise Conflict("container is marked for removal and cannot be started")
            rec.state.manually_stopped = False
            try:
                self._start_locked(rec)
            except Exception:
                self.tasks.attach.cancel(rec.id)
                if rec.host_config.get("AutoRemove"):
                    self._remove_locked(rec, volumes=True)
                raise

    def _start_locked(self, rec: ContainerRecord) -> None:
        try:
            pid = self.tasks.start(rec)
        except Exception as exc:
            rec.state.error = str(exc)
            rec.state.exit_code = shim.exit_code_for_runtime_error(str(exc)) or 128
            self.containers.save_state(rec)
            rootfs.unmount(self.containers.paths, rec)
            raise
        rec.state.status = "running"
        rec.state.pid = pid
        rec.state.error = ""
        rec.state.exit_code = 0
        rec.state.oom_killed = False
        rec.state.started_at = now_rfc3339()
        rec.state.finished_at = rec.state.finished_at
        self.containers.save_state(rec)
        self.events.publish("container", "start", rec.id, image=rec.image_name, name=rec.name)
        if self.health is not None:
            self.health.start(rec)

    # -- signals ------------------------------------------------------------------------
    def kill(self, ref: str, signal: str | int | None = None) -> None:
        rec = self.containers.lookup(ref)
        number = createconfig.stop_signal_number(str(signal) if signal else "KILL")
        with self.containers.lock(rec.id):
            if not rec.state.running or rec.state.status == "restarting":
                raise Conflict(f"Cannot kill container: {ref}: Container {rec.id} is not running")
            if number in (signals.SIGKILL, signals.SIGTERM, signals.SIGINT):
                rec.state.manually_stopped = True
                self.containers.save_state(rec)
            self.events.publish("container", "kill", rec.id, image=rec.image_name,
                                name=rec.name, signal=str(number))
            self.tasks.kill(rec, number)

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if not rec.state.running:
                raise NotModified("container already stopped")
            rec.state.manually_stopped = True
            self.containers.save_state(rec)
            self._stop_locked(rec, timeout, signal)

    def _stop_locked(self, rec: ContainerRecord, timeout: int | None, signal: str | None) -> None:
        if rec.state.status == "restarting":
            self.tasks.cancel_restart(rec)
            return
        if timeout is None:
            timeout = rec.config.get("StopTimeout")
            timeout = 10 if timeout is None else int(timeout)
        number = createconfig.stop_signal_number(signal or rec.config.get("StopSignal"))
        if rec.state.status == "paused":
            self.tasks.resume(rec)
        exit_seen = rec.state.started_at  # changes when this run ends and another starts
        if timeout != 0:
            self.events.publish("container", "kill", rec.id, image=rec.image_name,
                                name=rec.name, signal=str(number))
            self.tasks.kill(rec, number)
            if timeout < 0 or self._wait_exit(rec, exit_seen, float(timeout)):
                self._wait_exit(rec, exit_seen, None)
                self.events.publish("container", "stop", rec.id, image=rec.image_name,
                                    name=rec.name)
                return
        self.events.publish("container", "kill", rec.id, image=rec.image_name, name=rec.name,
                            signal=str(int(signals.SIGKILL)))
        self.tasks.kill(rec, int(signals.SIGKILL))
        self._wait_exit(rec, exit_seen, None)
        self.events.publish("container", "stop", rec.id, image=rec.image_name, name=rec.name)

    def _wait_exit(self, rec: ContainerRecord, started: str, timeout: float | None) -> bool:
        def exited() -> bool:
            return rec.state.status not in ("running", "paused") or rec.state.started_at != started
        return self.containers.wait_until(exited, timeout)

    def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if rec.state.running:
                rec.state.manually_stopped = True
                self._stop_locked(rec, timeout, signal)
            rec.state.manually_stopped = False
            self._start_locked(rec)
        self.events.publish("container", "restart", rec.id, image=rec.image_name, name=rec.name)

    def pause(self, ref: str) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if not rec.state.running:
                raise Conflict(f"Container {rec.id} is not running")
            if rec.state.status == "paused":
                raise Conflict(f"Container {rec.id} is already paused")
            self.tasks.pause(rec)
            rec.state.status = "paused"
            self.containers.save_state(rec)
        self.events.publish("container", "pause", rec.id, image=rec.image_name, name=rec.name)

    def unpause(self, ref: str) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if rec.state.status != "paused":
                raise Conflict(f"Container {rec.id} is not paused")
            self.tasks.resume(rec)
            rec.state.status = "running"
            self.containers.save_state(rec)
        self.events.publish("container", "unpause", rec.id, image=rec.image_name, name=rec.name)

    # -- remove -------------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        rec = self.containers.lookup(ref)
        with self.containers.lock(rec.id):
            if rec.state.status == "removing":
                raise Conflict(f"removal of container {rec.id} is already in progress")
            if rec.state.running:
                if rec.state.status == "paused" and not force:
                    raise Conflict(f"cannot remove container \"/{rec.name}\": container is "
                                   f"paused and must be unpaused first")
                if not force:
                    raise Conflict(f"cannot remove container \"/{rec.name}\": container is "
                                   f"running: stop the container before removing or force "
                                   f"remove")
                rec.state.manually_stopped = True
                self._stop_locked(rec, 0, "KILL")
            self._remove_locked(rec, volumes)

    def _remove_locked(self, rec: ContainerRecord, volumes: bool = False) -> None:
        rec.state.status = "removing"
        self.containers.save_state(rec)
        self.tasks.cleanup(rec)
        rootfs.unmount(self.containers.paths, rec)
        self.containers.forget(rec)
        if volumes and self.tasks.volumes is not None:
            self.tasks.volumes.remove_anonymous(rec)
        self.events.publish("container", "destroy", rec.id, image=rec.image_name, name=rec.name)

    # -- wait ---------------------------------------------------------------------------
    def wait(self, ref: str, condition: str = "not-running") -> WaitResult:
        return self.waiter(ref, condition)()

    def waiter(self, ref: str, condition: str = "not-running") -> Callable[[], WaitResult]:
        """Snapshot the state *now* and return the blocking wait: an HTTP handler takes the
        snapshot before it answers, so an exit right after the answer is never missed."""
        rec = self.containers.lookup(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition}")
        started = rec.state.started_at
        finished = rec.state.finished_at

        def done() -> bool:
            gone = self.containers.get(rec.id) is None
            if condition == "removed":
                return gone
            if gone:
                return True
            if condition == "next-exit":
                return rec.state.finished_at != finished and rec.state.status != "running"
            return rec.state.status in ("created", "exited", "dead") or (
                rec.state.started_at != started and rec.state.status != "running")

        def block() -> WaitResult:
            self.containers.wait_until(done)
            return WaitResult(rec.state.exit_code, rec.state.error)

        return block

    # -- exits --------------------------------------------------------------------------
    def handle_exit(self, rec: ContainerRecord, exit_code: int, finished_at: str,
                    oom: bool) -> None:
        """Record an exit. Runs without the container lock (a ``stop`` holding it is waiting
        for exactly this); follow-ups that change the container take the lock themselves."""
        if self.containers.get(rec.id) is None:
            return
        if self.health is not None:
            self.health.stop(rec.id)
        rootfs.unmount(self.containers.paths, rec)
        ran = time.time() - parse_rfc3339(rec.state.started_at)
        rec.state.status = "exited"
        rec.state.pid = 0
        rec.state.shim_pid = 0
        rec.state.exit_code = exit_code
        rec.state.finished_at = finished_at
        rec.state.oom_killed = oom
        restart = self._should_restart(rec)
        if restart:
            rec.state.status = "restarting"
            rec.state.restart_count += 1
        self.containers.save_state(rec)
        if oom:
            self.events.publish("container", "oom", rec.id, image=rec.image_name, name=rec.name)
        self.events.publish("container", "die", rec.id, image=rec.image_name, name=rec.name,
                            exitCode=str(exit_code))
        if restart:
            delay = 0.1 if ran > 10 else min(60.0, 0.1 * (2 ** (rec.state.restart_count - 1)))
            self.tasks.schedule_restart(rec, delay, self._restart_after_backoff)
        elif rec.host_config.get("AutoRemove"):
            threading.Thread(target=self._auto_remove, args=(rec, finished_at),
                             daemon=True).start()

    def _auto_remove(self, rec: ContainerRecord, finished_at: str) -> None:
        with self.containers.lock(rec.id):
            if (self.containers.get(rec.id) is not None and rec.state.status == "exited"
                    and rec.state.finished_at == finished_at):
                self._remove_locked(rec, volumes=True)  # --rm also drops anonymous volumes

    def _should_restart(self, rec: ContainerRecord) -> bool:
        policy = rec.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if rec.state.manually_stopped or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return rec.state.exit_code != 0 and (limit == 0 or rec.state.restart_count < limit)
        return name in ("always", "unless-stopped")

    def _restart_after_backoff(self, rec: ContainerRecord) -> None:
        with self.containers.lock(rec.id):
            if rec.state.status != "restarting" or self.containers.get(rec.id) is None:
                return
            try:
                self._start_locked(rec)
            except Exception as exc:  # noqa: BLE001
                log.warning("restart of %s failed: %s", rec.id[:12], exc)
                rec.state.status = "exited"
                self.containers.save_state(rec)
