"""HEALTHCHECK: run the probe command in the container (as an exec) on its interval and keep
``State.Health`` (status, failing streak, last five results) up to date, like Docker."""
from __future__ import annotations

import logging
import threading
from typing import Any

from dockyard.engine.containers import Containers
from dockyard.engine.execs import Execs
from dockyard.metadata.containers import ContainerRecord
from dockyard.util.timefmt import now_rfc3339

log = logging.getLogger("dockyard.engine")
SECOND = 1_000_000_000
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "Retries": 3}


def probe_argv(test: list[str]) -> list[str] | None:
    """``["CMD", a, b]`` → [a, b]; ``["CMD-SHELL", s]`` → [/bin/sh, -c, s]; NONE → None."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return ["/bin/sh", "-c", " ".join(test)]


class HealthMonitor:
    def __init__(self, containers: Containers, execs: Execs) -> None:
        self.containers = containers
        self.execs = execs
        self._stops: dict[str, threading.Event] = {}

    def start(self, rec: ContainerRecord) -> None:
        check = rec.config.get("Healthcheck") or {}
        argv = probe_argv(list(check.get("Test") or []))
        if argv is None:
            return
        self.stop(rec.id)
        stop = threading.Event()
        self._stops[rec.id] = stop
        rec.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.containers.save_state(rec)
        threading.Thread(target=self._loop, args=(rec, argv, {**DEFAULTS, **{
            k: v for k, v in check.items() if v}}, stop), daemon=True,
            name=f"health-{rec.id[:12]}").start()

    def stop(self, cid: str) -> None:
        stop = self._stops.pop(cid, None)
        if stop is not None:
            stop.set()

    def _loop(self, rec: ContainerRecord, argv: list[str], check: dict[str, Any],
              stop: threading.Event) -> None:
        interval = check["Interval"] / SECOND
        while not stop.wait(interval):
            if rec.state.status != "running" or self.containers.get(rec.id) is None:
                return
            try:
                code, output = self._probe(rec, argv, check["Timeout"] / SECOND)
            except Exception as exc:  # noqa: BLE001 - a probe that cannot run fails
                code, output = -1, str(exc)
            self._record(rec, code, output, check)

    def _probe(self, rec: ContainerRecord, argv: list[str], timeout: float) -> tuple[int, str]:
        ex = self.execs.create(rec.id, {"Cmd": argv, "AttachStdout": False,
                                        "AttachStderr": False})
        self.execs.start(ex.id, None)
        if not ex.done.wait(timeout):
            return -1, f"Health check exceeded timeout ({timeout}s)"
        return int(ex.exit_code if ex.exit_code is not None else -1), ""

    def _record(self, rec: ContainerRecord, code: int, output: str,
                check: dict[str, Any]) -> None:
        health = dict(rec.state.health or {"Status": "starting", "FailingStreak": 0, "Log": []})
        entry = {"Start": now_rfc3339(), "End": now_rfc3339(), "ExitCode": code,
                 "Output": output}
        health["Log"] = [*health.get("Log", [])[-4:], entry]
        old = health.get("Status")
        if code == 0:
            health["Status"], health["FailingStreak"] = "healthy", 0
        else:
            health["FailingStreak"] = int(health.get("FailingStreak", 0)) + 1
            if health["FailingStreak"] >= int(check["Retries"]):
                health["Status"] = "unhealthy"
        rec.state.health = health
        self.containers.save_state(rec)
        if health["Status"] != old:
            self.containers.events.publish("container", f"health_status: {health['Status']}",
                                           rec.id, image=rec.image_name, name=rec.name)
