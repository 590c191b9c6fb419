"""Pure parts behind docker stats/update (cgroup v1 and v2 files), prune ``until`` and the
Go-style tar ending of the docker CLI's build contexts."""
from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from dockyard.api.prunefilters import matches, timestamp
from dockyard.diff.apply import apply_layer
from dockyard.errors import InvalidArgument
from dockyard.host import cgstats
from dockyard.host.cgroups import ContainerCgroup, Mode


def _files(base: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)


def test_sample_v2(tmp_path: Path) -> None:
    _files(tmp_path / "p" / "c", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                    "nr_throttled 1\nthrottled_usec 7\n",
        "memory.current": "4096\n", "memory.max": "max\n",
        "memory.stat": "anon 1024\ninactive_file 512\n", "pids.current": "3\n",
        "pids.max": "max\n", "io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n"})
    s = cgstats.sample(ContainerCgroup("/p/c", Mode.V2, tmp_path))
    assert (s.cpu_total, s.cpu_user, s.cpu_kernel) == (1_500_000, 1_000_000, 500_000)
    assert s.throttling == {"periods": 4, "throttled_periods": 1, "throttled_time": 7000}
    assert (s.mem_usage, s.mem_limit, s.mem_stat["inactive_file"]) == (4096, 0, 512)
    assert (s.pids_current, s.pids_limit) == (3, 0)
    assert [(e.op, e.value) for e in s.blkio] == [("read", 100), ("write", 200)]


def test_sample_v1(tmp_path: Path) -> None:
    _files(tmp_path, {
        "cpuacct/p/c/cpuacct.usage": "2000\n", "cpuacct/p/c/cpuacct.usage_percpu": "1500 500\n",
        "cpuacct/p/c/cpuacct.stat": "user 1\nsystem 2\n",
        "memory/p/c/memory.usage_in_bytes": "8192\n",
        "memory/p/c/memory.limit_in_bytes": f"{cgstats.V1_UNLIMITED}\n",
        "memory/p/c/memory.stat": "total_inactive_file 100\n",
        "pids/p/c/pids.current": "2\n", "pids/p/c/pids.max": "10\n",
        "blkio/p/c/blkio.throttle.io_service_bytes_recursive": "8:0 Read 5\n8:0 Write 6\n"
                                                              "Total 11\n"})
    s = cgstats.sample(ContainerCgroup("/p/c", Mode.HYBRID, tmp_path))
    assert (s.cpu_total, s.percpu, s.mem_usage, s.mem_limit) == (2000, (1500, 500), 8192, 0)
    assert s.cpu_kernel == 2 * (1_000_000_000 // cgstats.USER_HZ)
    assert (s.pids_current, s.pids_limit) == (2, 10)
    assert [(e.op, e.value) for e in s.blkio] == [("Read", 5), ("Write", 6)]


def test_apply_limits_v2(tmp_path: Path) -> None:
    _files(tmp_path / "p" / "c", {"cpu.max": "max 100000\n", "memory.swap.max": "max\n"})
    cg = ContainerCgroup("/p/c", Mode.V2, tmp_path)
    cgstats.apply_limits(cg, cgstats.Limits(memory=64 << 20, memory_swap=128 << 20,
                                            cpu_quota=50000, pids=-1, cpu_shares=1024))
    d = tmp_path / "p" / "c"
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "memory.swap.max").read_text() == str(64 << 20)
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "pids.max").read_text() == "max"
    assert (d / "cpu.weight").read_text() == "39"


def test_prune_until_and_labels() -> None:
    now = time.time()
    assert abs(timestamp("1h30m", now) - (now - 5400)) < 1e-6
    assert timestamp("1700000000") == 1700000000
    assert timestamp("2023-11-14T22:13:20Z") == 1700000000
    with pytest.raises(InvalidArgument):
        timestamp("yesterday")
    assert matches({"a": "1"}, now - 7200, {"until": ["1h"], "label": ["a"]})
    assert not matches({"a": "1"}, now, {"until": ["1h"]})
    assert not matches({"a": "1"}, now, {"label!": ["a=1"]})
    assert matches({"a": "2"}, now, {"label!": ["a=1"]})


def _cli_style_tar() -> bytes:
    """Like the docker CLI's ``build -f -`` context: the last member unpadded, no end."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"FROM scratch\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()[:512 + len(b"FROM scratch\n")]


def test_lenient_tar_end(tmp_path: Path) -> None:
    raw = _cli_style_tar()
    (tmp_path / "a").mkdir()
    apply_layer(io.BytesIO(raw), tmp_path / "a", overlay_whiteouts=False, lenient_end=True)
    assert (tmp_path / "a" / "Dockerfile").read_bytes() == b"FROM scratch\n"
    (tmp_path / "b").mkdir()
    with pytest.raises(InvalidArgument):  # layers stay strict
        apply_layer(io.BytesIO(raw), tmp_path / "b", overlay_whiteouts=False)
    (tmp_path / "c").mkdir()
    with pytest.raises(InvalidArgument):  # data cut short is an error either way
        apply_layer(io.BytesIO(raw[:-3]), tmp_path / "c", overlay_whiteouts=False,
                    lenient_end=True)
