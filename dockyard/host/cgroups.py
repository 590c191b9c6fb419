"""Reading container cgroups on cgroup v1, v2 and hybrid hosts.

The runtime (crun/runc) creates and limits the cgroups; on *hybrid* hosts, where crun refuses
to run while the cgroup2 mount carries controllers, the shim hides that mount from the runtime
(a private mount namespace for ``crun create`` only) so the runtime sees plain v1 and enforces
limits itself. This module answers the questions the engine asks afterwards: which mode, was
the container OOM-killed, which processes does it hold, what does it use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CGROUP2_MAGIC = 0x63677270


class Mode(Enum):
    V1 = "v1"
    V2 = "v2"
    HYBRID = "hybrid"


def _is_cgroup2(path: Path) -> bool:
    try:
        return os.path.ismount(path) and "cgroup2" in _fstype(path)
    except OSError:
        return False


def _fstype(path: Path) -> str:
    target = str(path)
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[1] == target:
                return fields[2]
    return ""


def detect(root: Path = ROOT) -> Mode:
    if _is_cgroup2(root):
        return Mode.V2
    if _is_cgroup2(root / "unified"):
        return Mode.HYBRID
    return Mode.V1


def needs_hiding(root: Path = ROOT) -> bool:
    """True when the runtime must not see the cgroup2 mount (hybrid with v2 controllers)."""
    if detect(root) is not Mode.HYBRID:
        return False
    try:
        return bool((root / "unified" / "cgroup.controllers").read_text().split())
    except OSError:
        return False


@dataclass(frozen=True)
class ContainerCgroup:
    """The cgroup(s) of one container: ``path`` is the runtime's cgroupsPath, e.g. /dockyard/ID."""

    path: str
    mode: Mode
    root: Path = ROOT

    def _dir(self, controller: str) -> Path:
        rel = self.path.lstrip("/")
        return self.root / rel if self.mode is Mode.V2 else self.root / controller / rel

    def oom_killed(self) -> bool:
        if self.mode is Mode.V2:
            return _read_key(self._dir("") / "memory.events", "oom_kill") > 0
        return _read_key(self._dir("memory") / "memory.oom_control", "oom_kill") > 0

    def pids(self) -> list[int]:
        controller = "" if self.mode is Mode.V2 else "pids"
        try:
            text = (self._dir(controller) / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def memory_usage(self) -> int:
        name = "memory.current" if self.mode is Mode.V2 else "memory.usage_in_bytes"
        try:
            return int((self._dir("memory") / name).read_text())
        except (OSError, ValueError):
            return 0


def _read_key(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def remove_parent(path: str, mode: Mode) -> None:
    """Remove an (empty) parent cgroup such as /dockyard-test-x left after its children."""
    rel = path.strip("/")
    dirs = [ROOT / rel] if mode is Mode.V2 else [d / rel for d in ROOT.iterdir() if d.is_dir()]
    for directory in dirs:
        try:
            directory.rmdir()
        except OSError:
            pass
