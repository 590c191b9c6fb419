"""Reading container cgroups on v1 and v2 layouts (fake trees in a temp dir)."""
from __future__ import annotations

from pathlib import Path

from dockyard.host.cgroups import ContainerCgroup, Mode


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_reads_memory_events_and_procs(tmp_path: Path) -> None:
    cg = tmp_path / "dockyard" / "abc"
    _write(cg / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    _write(cg / "cgroup.procs", "10\n11\n")
    _write(cg / "memory.current", "4096\n")
    c = ContainerCgroup("/dockyard/abc", Mode.V2, tmp_path)
    assert c.oom_killed() and c.pids() == [10, 11] and c.memory_usage() == 4096


def test_v1_reads_oom_control_and_pids_controller(tmp_path: Path) -> None:
    _write(tmp_path / "memory/dockyard/abc/memory.oom_control",
           "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    _write(tmp_path / "pids/dockyard/abc/cgroup.procs", "7\n")
    c = ContainerCgroup("/dockyard/abc", Mode.V1, tmp_path)
    assert not c.oom_killed() and c.pids() == [7]


def test_missing_cgroup_is_harmless(tmp_path: Path) -> None:
    c = ContainerCgroup("/dockyard/gone", Mode.HYBRID, tmp_path)
    assert not c.oom_killed() and c.pids() == [] and c.memory_usage() == 0
