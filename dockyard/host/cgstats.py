"""Resource usage and live limits of one container cgroup, on cgroup v1 (and hybrid) or v2.

``sample`` reads what ``docker stats`` needs (CPU, memory, pids, block I/O) from either
layout into one typed value; ``apply_limits`` writes what ``docker update`` changes
(memory, swap, CPU quota/shares, cpuset, pids, block-I/O weight) into the running
container's cgroup. Missing files read as zero: a controller may not be mounted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.host.cgroups import ContainerCgroup, Mode

V1_UNLIMITED = 9223372036854771712  # what memory.limit_in_bytes reads when unlimited
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class BlkioEntry:
    major: int
    minor: int
    op: str
    value: int


@dataclass(frozen=True)
class Sample:
    """One reading; CPU times in nanoseconds, memory in bytes, ``*_limit`` 0 if unlimited."""

    cpu_total: int = 0
    cpu_user: int = 0
    cpu_kernel: int = 0
    percpu: tuple[int, ...] = ()
    throttling: dict[str, int] = field(default_factory=dict)
    mem_usage: int = 0
    mem_max_usage: int = 0
    mem_limit: int = 0
    mem_failcnt: int = 0
    mem_stat: dict[str, int] = field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int = 0
    blkio: tuple[BlkioEntry, ...] = ()


def cgroup_dir(cg: ContainerCgroup, controller: str) -> Path:
    rel = cg.path.lstrip("/")
    return cg.root / rel if cg.mode is Mode.V2 else cg.root / controller / rel


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    if text in ("", "max"):
        return 0
    try:
        return int(text)
    except ValueError:
        return 0


def _keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read(path).splitlines():
        name, _, value = line.partition(" ")
        try:
            out[name] = int(value)
        except ValueError:
            continue
    return out


def sample(cg: ContainerCgroup) -> Sample:
    return _sample_v2(cg) if cg.mode is Mode.V2 else _sample_v1(cg)


def _sample_v1(cg: ContainerCgroup) -> Sample:
    acct, mem = cgroup_dir(cg, "cpuacct"), cgroup_dir(cg, "memory")
    ticks = _keyed(acct / "cpuacct.stat")
    scale = 1_000_000_000 // USER_HZ
    percpu = tuple(int(x) for x in _read(acct / "cpuacct.usage_percpu").split() if x.isdigit())
    throttle = _keyed(cgroup_dir(cg, "cpu") / "cpu.stat")
    limit = _int(mem / "memory.limit_in_bytes")
    pids_max = _int(cgroup_dir(cg, "pids") / "pids.max")
    blk = cgroup_dir(cg, "blkio")
    blkio_text = (_read(blk / "blkio.throttle.io_service_bytes_recursive")
                  or _read(blk / "blkio.io_service_bytes_recursive"))
    return Sample(
        cpu_total=_int(acct / "cpuacct.usage"),
        cpu_user=ticks.get("user", 0) * scale, cpu_kernel=ticks.get("system", 0) * scale,
        percpu=percpu,
        throttling={"periods": throttle.get("nr_periods", 0),
                    "throttled_periods": throttle.get("nr_throttled", 0),
                    "throttled_time": throttle.get("throttled_time", 0)},
        mem_usage=_int(mem / "memory.usage_in_bytes"),
        mem_max_usage=_int(mem / "memory.max_usage_in_bytes"),
        mem_limit=0 if limit >= V1_UNLIMITED else limit,
        mem_failcnt=_int(mem / "memory.failcnt"),
        mem_stat=_keyed(mem / "memory.stat"),
        pids_current=_int(cgroup_dir(cg, "pids") / "pids.current"), pids_limit=pids_max,
        blkio=tuple(_blkio_v1(blkio_text)))


def _blkio_v1(text: str) -> list[BlkioEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        out.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return out


def _sample_v2(cg: ContainerCgroup) -> Sample:
    d = cgroup_dir(cg, "")
    cpu = _keyed(d / "cpu.stat")
    return Sample(
        cpu_total=cpu.get("usage_usec", 0) * 1000, cpu_user=cpu.get("user_usec", 0) * 1000,
        cpu_kernel=cpu.get("system_usec", 0) * 1000,
        throttling={"periods": cpu.get("nr_periods", 0),
                    "throttled_periods": cpu.get("nr_throttled", 0),
                    "throttled_time": cpu.get("throttled_usec", 0) * 1000},
        mem_usage=_int(d / "memory.current"), mem_max_usage=_int(d / "memory.peak"),
        mem_limit=_int(d / "memory.max"),
        mem_failcnt=_keyed(d / "memory.events").get("max", 0),
        mem_stat=_keyed(d / "memory.stat"),
        pids_current=_int(d / "pids.current"), pids_limit=_int(d / "pids.max"),
        blkio=tuple(_blkio_v2(_read(d / "io.stat"))))


def _blkio_v2(text: str) -> list[BlkioEntry]:
    out = []
    for line in text.splitlines():
        dev, *pairs = line.split()
        if ":" not in dev:
            continue
        major, _, minor = dev.partition(":")
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                out.append(BlkioEntry(int(major), int(minor), op, int(values[key])))
    return out


# -- limits -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """The values ``docker update`` may change; None leaves a setting alone.

    ``memory``/``memory_swap``: bytes, -1 unlimited (swap: memory+swap, as Docker counts
    it); ``cpu_quota``/``cpu_period`` in µs (quota -1 unlimited); ``pids``: -1 unlimited.
    """

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids: int | None = None
    blkio_weight: int | None = None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _write_if_present(path: Path, value: str) -> None:
    if path.exists():
        _write(path, value)


def apply_limits(cg: ContainerCgroup, limits: Limits) -> None:
    """Write ``limits`` into the live cgroup; OSError if the kernel refuses a value."""
    if cg.mode is Mode.V2:
        _apply_v2(cg, limits)
    else:
        _apply_v1(cg, limits)


def _v1_value(value: int) -> str:
    return "-1" if value < 0 else str(value)


def _apply_v1(cg: ContainerCgroup, lim: Limits) -> None:
    mem = cgroup_dir(cg, "memory")
    if lim.memory is not None or lim.memory_swap is not None:
        _apply_v1_memory(mem, lim)
    if lim.memory_reservation is not None:
        _write(mem / "memory.soft_limit_in_bytes", _v1_value(lim.memory_reservation))
    cpu = cgroup_dir(cg, "cpu")
    if lim.cpu_period is not None:
        _write(cpu / "cpu.cfs_period_us", str(lim.cpu_period))
    if lim.cpu_quota is not None:
        _write(cpu / "cpu.cfs_quota_us", _v1_value(lim.cpu_quota))
    if lim.cpu_shares is not None:
        _write(cpu / "cpu.shares", str(lim.cpu_shares))
    cpuset = cgroup_dir(cg, "cpuset")
    if lim.cpuset_cpus is not None:
        _write(cpuset / "cpuset.cpus", lim.cpuset_cpus)
    if lim.cpuset_mems is not None:
        _write(cpuset / "cpuset.mems", lim.cpuset_mems)
    if lim.pids is not None:
        _write(cgroup_dir(cg, "pids") / "pids.max", "max" if lim.pids <= 0 else str(lim.pids))
    if lim.blkio_weight is not None:
        blk = cgroup_dir(cg, "blkio")
        for name in ("blkio.weight", "blkio.bfq.weight"):
            _write_if_present(blk / name, str(lim.blkio_weight))


def _apply_v1_memory(mem: Path, lim: Limits) -> None:
    """memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes: order the writes."""
    memsw = mem / "memory.memsw.limit_in_bytes"
    new_mem = None if lim.memory is None else _v1_value(lim.memory)
    new_sw = None if lim.memory_swap is None else _v1_value(lim.memory_swap)
    current = _int(mem / "memory.limit_in_bytes")
    raising = lim.memory is not None and (lim.memory < 0 or lim.memory > current)
    if raising and new_sw is not None and memsw.exists():
        _write(memsw, new_sw)
        new_sw = None
    elif raising and memsw.exists():
        _write(memsw, "-1")  # Docker: swap follows memory unless set; raise the cap first
    if new_mem is not None:
        _write(mem / "memory.limit_in_bytes", new_mem)
    if new_sw is not None and memsw.exists():
        _write(memsw, new_sw)


def _apply_v2(cg: ContainerCgroup, lim: Limits) -> None:
    d = cgroup_dir(cg, "")
    if lim.memory is not None:
        _write(d / "memory.max", "max" if lim.memory <= 0 else str(lim.memory))
    if lim.memory_swap is not None:
        swap = -1 if lim.memory_swap < 0 else max(0, lim.memory_swap - (lim.memory or 0))
        _write_if_present(d / "memory.swap.max", "max" if swap < 0 else str(swap))
    if lim.memory_reservation is not None:
        _write(d / "memory.low", "0" if lim.memory_reservation <= 0
               else str(lim.memory_reservation))
    if lim.cpu_quota is not None or lim.cpu_period is not None:
        old_quota, _, old_period = _read(d / "cpu.max").strip().partition(" ")
        quota = old_quota or "max" if lim.cpu_quota is None else (
            "max" if lim.cpu_quota <= 0 else str(lim.cpu_quota))
        period = str(lim.cpu_period) if lim.cpu_period else (old_period or "100000")
        _write(d / "cpu.max", f"{quota} {period}")
    if lim.cpu_shares is not None:
        _write(d / "cpu.weight", str(1 + ((lim.cpu_shares - 2) * 9999) // 262142))
    if lim.cpuset_cpus is not None:
        _write(d / "cpuset.cpus", lim.cpuset_cpus)
    if lim.cpuset_mems is not None:
        _write(d / "cpuset.mems", lim.cpuset_mems)
    if lim.pids is not None:
        _write(d / "pids.max", "max" if lim.pids <= 0 else str(lim.pids))
    if lim.blkio_weight is not None:
        _write_if_present(d / "io.weight", f"default {lim.blkio_weight}")


# -- host-wide figures docker stats divides by ----------------------------------------------
def system_cpu_ns() -> int:
    """All CPU time of the host (the ``cpu`` line of /proc/stat) in nanoseconds."""
    for line in _read(Path("/proc/stat")).splitlines():
        if line.startswith("cpu "):
            return sum(int(x) for x in line.split()[1:8]) * (1_000_000_000 // USER_HZ)
    return 0


def online_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def host_memory() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def net_dev(pid: int) -> dict[str, dict[str, int]]:
    """Interface counters seen by process ``pid`` (its network namespace), without lo."""
    keys = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets",
            "tx_errors", "tx_dropped")
    out: dict[str, dict[str, int]] = {}
    for line in _read(Path(f"/proc/{pid}/net/dev")).splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        values = rest.split()
        if name == "lo" or len(values) < 16:
            continue
        nums = [int(v) for v in values]
        picked = nums[0:4] + nums[8:12]
        out[name] = dict(zip(keys, picked))
    return out
