"""Waiting for a service to converge (``service create``/``update``/``scale`` without ``-d``).

docker polls the service, its up-to-date tasks and the nodes, and writes progress messages
rendered like its JSON progress streams: on a terminal one line per id updated in place
(``1/3: running   [=====>]``), elsewhere only the lines without a bar (``overall progress: 1
out of 3 tasks``, ``verify: …``). Once every task runs it watches for the update monitor
period (5s unless ``UpdateConfig.Monitor``) before saying the service converged.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from dockyard.cli.format import truncate_id
from dockyard.client.swarm import SwarmAPI

NUMBERED = {"new": 1, "allocated": 2, "pending": 3, "assigned": 4, "accepted": 5,
            "preparing": 6, "ready": 7, "starting": 8, "running": 9, "complete": 10,
            "shutdown": 11, "failed": 12, "rejected": 13}
LONGEST_STATE = 9  # len("preparing")
MAX_BARS = 20
SECOND = 1_000_000_000
Task = Mapping[str, Any]


class ProgressError(Exception):
    """The wait ended badly (an update paused); printed as is."""


def terminal_state(state: str) -> bool:
    return NUMBERED.get(state, 0) > NUMBERED["running"]


def bar(current: int, total: int, width: int) -> str:
    """JSONProgress.String with HideCounts: a 50-column bar, only on wide terminals."""
    if total <= 0 or current <= 0:
        return ""
    filled = min(50, int(current / total * 100) // 2)
    return f"[{'=' * filled}>{' ' * (50 - filled)}] " if width > 110 else ""


class Display:
    """jsonmessage's DisplayJSONMessagesStream for messages that all carry an id."""

    def __init__(self, out: TextIO, terminal: bool, width: int = 200) -> None:
        self.out, self.terminal, self.width = out, terminal, width
        self.lines: dict[str, int] = {}

    def progress(self, ident: str, action: str, current: int = 0, total: int = 0) -> None:
        shown = bar(current, total, self.width)
        if not self.terminal:
            if not shown:
                self.out.write(f"{ident}: {action}\n")
        else:
            if ident not in self.lines:
                self.lines[ident] = len(self.lines)
                self.out.write("\n")
            diff = len(self.lines) - self.lines[ident]
            self.out.write(f"\x1b[{diff}A" if diff else "")
            self.out.write(f"\x1b[2K\r{ident}: {action} {shown}\r")
            self.out.write(f"\x1b[{diff}B" if diff else "")
        self.out.flush()

    def message(self, text: str) -> None:
        self.lines = {}
        self.out.write(text + "\n")
        self.out.flush()


def _rank(task: Task, key: str) -> int:
    value = task.get("Status", {}).get("State") if key == "state" else task.get("DesiredState")
    return NUMBERED.get(str(value or ""), 0)


def _pick(tasks: Sequence[Task], key: Callable[[Task], Any],
          active: set[str] | None) -> dict[Any, Task]:
    """Per slot (or node) the task with the lowest desired, then observed, state."""
    chosen: dict[Any, Task] = {}
    for task in tasks:
        if not _rank(task, "desired") or not _rank(task, "state"):
            continue
        old = chosen.get(key(task))
        if old is not None and (_rank(old, "desired"), _rank(old, "state")) <= \
                (_rank(task, "desired"), _rank(task, "state")):
            continue
        if active is not None and task.get("NodeID") and task["NodeID"] not in active:
            continue
        chosen[key(task)] = task
    return chosen


def _running(task: Task) -> bool:
    return not terminal_state(str(task.get("DesiredState", ""))) and \
        (task.get("Status") or {}).get("State") == "running"


class Updater:
    """replicated/globalProgressUpdater: per-task bars and the overall line."""

    def __init__(self, display: Display, global_mode: bool) -> None:
        self.display, self.global_mode = display, global_mode
        self.initialized = self.done = False
        self.slots: dict[Any, int] = {}

    def overall(self, running: int, total: int, rollback: bool) -> None:
        text = f"{running} out of {total} tasks"
        self.display.progress("overall progress", f"rolling back update: {text}" if rollback
                              else text)

    def task_line(self, ident: str, task: Task, count: int) -> None:
        if self.done or count > MAX_BARS:
            return
        status = task.get("Status") or {}
        if status.get("Err"):
            err = str(status["Err"]).replace("\n", " ")
            self.display.progress(ident, err if len(err) <= 75 else err[:74] + "…")
        elif not terminal_state(str(task.get("DesiredState", ""))) and \
                not terminal_state(str(status.get("State", ""))):
            state = str(status.get("State", ""))
            self.display.progress(ident, state.ljust(LONGEST_STATE), NUMBERED.get(state, 0),
                                  NUMBERED["running"])

    def update(self, service: Mapping[str, Any], tasks: Sequence[Task], active: set[str],
               rollback: bool) -> bool:
        if self.global_mode:
            chosen = _pick(tasks, lambda t: t.get("NodeID", ""), None)
            total = len(chosen)
            if not self.initialized and total == 0:
                self.display.progress("overall progress", "waiting for new tasks")
                return False
        else:
            mode = (service.get("Spec") or {}).get("Mode") or {}
            total = int((mode.get("Replicated") or {}).get("Replicas", 1))
            chosen = _pick(tasks, lambda t: t.get("Slot", 0), active)
        if not self.initialized:
            self.overall(0, total, rollback)
            if not self.global_mode and total <= MAX_BARS:
                for i in range(1, total + 1):
                    self.display.progress(f"{i}/{total}", " ")
            self.initialized = True
        if self.done and any((t.get("Status") or {}).get("State") != "running"
                             for t in chosen.values()):
            self.done = False
        running = 0
        for key, task in chosen.items():
            if self.global_mode and task.get("NodeID") not in active:
                continue
            running += _running(task)
            if self.global_mode:
                self.task_line(truncate_id(str(task.get("NodeID", ""))), task, total)
            elif self.slots.setdefault(key, len(self.slots) + 1) <= total:
                self.task_line(f"{self.slots[key]}/{total}", task, total)
        if not self.done:
            self.overall(running, total, rollback)
            self.done = running == total
        return running == total


def wait_on_service(api: SwarmAPI, service_id: str, display: Display,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep, interval: float = 0.3) -> None:
    """docker's ServiceProgress loop; Ctrl-C leaves the operation running."""
    updater: Updater | None = None
    converged, converged_at, rollback = False, None, False
    message: str | None = None
    try:
        while True:
            service = api.service(service_id)
            spec = service.get("Spec") or {}
            monitor = int((spec.get("UpdateConfig") or {}).get("Monitor") or 5 * SECOND)
            mode = spec.get("Mode") or {}
            if updater is None:
                if "ReplicatedJob" in mode or "GlobalJob" in mode:
                    return  # jobs: nothing to verify here
                updater = Updater(display, "Global" in mode)
            state = (service.get("UpdateStatus") or {}).get("State", "")
            text = (service.get("UpdateStatus") or {}).get("Message", "")
            if state == "updating":
                rollback = False
            elif state == "completed" and not converged:
                return
            elif state == "paused":
                raise ProgressError(f"service update paused: {text}")
            elif state == "rollback_started":
                if not rollback and text:
                    display.progress("rollback", text)
                rollback = True
            elif state == "rollback_paused":
                raise ProgressError(f"service rollback paused: {text}")
            elif state == "rollback_completed":
                message = message if converged else text
                rollback = True
            if converged and converged_at is not None and \
                    (clock() - converged_at) * SECOND >= monitor:
                display.progress("verify", f"Service {service_id} converged")
                if message:
                    display.message(f"rollback: {message}")
                return
            tasks = api.tasks({"service": {str(service.get("ID", service_id)): True},
                               "_up-to-date": {"true": True}})
            active = {str(n.get("ID")) for n in api.nodes()
                      if (n.get("Status") or {}).get("State") != "down"}
            converged = updater.update(service, tasks, active, rollback)
            if converged:
                converged_at = clock() if converged_at is None else converged_at
                wait = monitor - (clock() - converged_at) * SECOND
                if wait >= 0:
                    display.progress("verify", f"Waiting {int(wait // SECOND) + 1} seconds to "
                                     "verify that tasks are stable...")
            else:
                if converged_at is not None:
                    display.progress("verify", "Detected task failure")
                converged_at = None
            sleep(interval)
    except KeyboardInterrupt:
        if not converged:
            display.message("Operation continuing in background.")
            display.message(f"Use `docker service ps {service_id}` to check progress.")
