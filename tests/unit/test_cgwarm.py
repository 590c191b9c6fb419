"""The cgroup-lock warm-up: which cgroup.procs it writes, and that it changes no membership."""
from __future__ import annotations

import os
import time
from pathlib import Path

from dockyard.host import cgwarm

HYBRID = "9:name=systemd:/\n8:pids:/svc\n4:cpu,cpuacct:/a/b\n0::/x\n"


def _make(root: Path, *dirs: str) -> None:
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "cgroup.procs").write_text("")


def test_picks_first_mounted_v1_hierarchy(tmp_path: Path) -> None:
    _make(tmp_path, "pids/svc", "unified/x")
    assert cgwarm.own_procs_file(tmp_path, HYBRID) == tmp_path / "pids/svc/cgroup.procs"


def test_named_hierarchy_and_controller_lists(tmp_path: Path) -> None:
    _make(tmp_path, "systemd", "cpu/a/b")
    assert cgwarm.own_procs_file(tmp_path, HYBRID) == tmp_path / "systemd/cgroup.procs"
    other = tmp_path / "o"
    _make(other, "cpu/a/b")
    assert cgwarm.own_procs_file(other, HYBRID) == other / "cpu/a/b/cgroup.procs"


def test_pure_v2_host(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    _make(tmp_path, "x")
    assert cgwarm.own_procs_file(tmp_path, "0::/x\n") == tmp_path / "x/cgroup.procs"


def test_nothing_mounted_means_no_target(tmp_path: Path) -> None:
    assert cgwarm.own_procs_file(tmp_path, HYBRID) is None


def test_prewarm_on_this_host_keeps_membership() -> None:
    before = Path("/proc/self/cgroup").read_text()
    target = cgwarm.own_procs_file(cgwarm.ROOT, before)
    assert target is not None and target.exists()
    cgwarm.prewarm()
    cgwarm.prewarm()  # a second call while one is in flight is a no-op
    deadline = time.time() + 5
    while cgwarm._busy.locked() and time.time() < deadline:
        time.sleep(0.01)
    assert not cgwarm._busy.locked()
    assert Path("/proc/self/cgroup").read_text() == before
    assert str(os.getpid()) in target.read_text().split()
