"""``GET /containers/{id}/stats``: the Engine API stats object from cgroup samples.

One ``Snapshot`` per reading (the container's cgroup, the host's CPU time, the network
counters of the container's namespace); ``stats_json`` pairs it with the previous reading
(``precpu_stats``) as Docker does, so clients compute CPU % from the two.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dockyard.host import cgstats
from dockyard.host.cgroups import ContainerCgroup, Mode
from dockyard.metadata.containers import ContainerRecord
from dockyard.util.timefmt import now_rfc3339

ZERO_TIME = "0001-01-01T00:00:00Z"
INTERVAL = 1.0


@dataclass(frozen=True)
class Snapshot:
    read: str
    cg: cgstats.Sample
    system_cpu: int
    online_cpus: int
    networks: dict[str, dict[str, int]]
    mode: Mode


def take(cg: ContainerCgroup, pid: int) -> Snapshot:
    return Snapshot(now_rfc3339(), cgstats.sample(cg), cgstats.system_cpu_ns(),
                    cgstats.online_cpus(), cgstats.net_dev(pid) if pid > 0 else {}, cg.mode)


def _cpu_json(snap: Snapshot | None) -> dict[str, Any]:
    if snap is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                              "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    s = snap.cg
    usage: dict[str, Any] = {"total_usage": s.cpu_total, "usage_in_kernelmode": s.cpu_kernel,
                             "usage_in_usermode": s.cpu_user}
    if snap.mode is not Mode.V2 and s.percpu:
        usage["percpu_usage"] = list(s.percpu)
    return {"cpu_usage": usage, "system_cpu_usage": snap.system_cpu,
            "online_cpus": snap.online_cpus,
            "throttling_data": dict(s.throttling) or {"periods": 0, "throttled_periods": 0,
                                                     "throttled_time": 0}}


def _memory_json(snap: Snapshot) -> dict[str, Any]:
    s = snap.cg
    host = cgstats.host_memory()
    limit = s.mem_limit if s.mem_limit and (not host or s.mem_limit < host) else host
    out: dict[str, Any] = {"usage": s.mem_usage, "stats": dict(s.mem_stat), "limit": limit}
    if snap.mode is not Mode.V2:
        out.update(max_usage=s.mem_max_usage, failcnt=s.mem_failcnt)
    return out


def _blkio_json(snap: Snapshot) -> dict[str, Any]:
    entries = [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}
               for e in snap.cg.blkio]
    keys = ("io_serviced_recursive", "io_queue_recursive", "io_service_time_recursive",
            "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
            "sectors_recursive")
    return {"io_service_bytes_recursive": entries or None, **{k: None for k in keys}}


def stats_json(rec: ContainerRecord, snap: Snapshot | None,
               pre: Snapshot | None) -> dict[str, Any]:
    """The stats object; ``snap`` None (not running) gives Docker's empty reading."""
    out: dict[str, Any] = {"name": "/" + rec.name, "id": rec.id}
    if snap is None:
        out.update(read=ZERO_TIME, preread=ZERO_TIME, pids_stats={},
                   blkio_stats={k: None for k in ("io_service_bytes_recursive",
                                                  "io_serviced_recursive")},
                   num_procs=0, storage_stats={}, cpu_stats=_cpu_json(None),
                   precpu_stats=_cpu_json(None), memory_stats={})
        return out
    pids: dict[str, Any] = {"current": snap.cg.pids_current}
    if snap.cg.pids_limit:
        pids["limit"] = snap.cg.pids_limit
    out.update(read=snap.read, preread=pre.read if pre else ZERO_TIME, pids_stats=pids,
               blkio_stats=_blkio_json(snap), num_procs=0, storage_stats={},
               cpu_stats=_cpu_json(snap), precpu_stats=_cpu_json(pre),
               memory_stats=_memory_json(snap))
    if snap.networks:
        out["networks"] = snap.networks
    return out


def readings(rec: ContainerRecord, cgroup: Callable[[], ContainerCgroup],
             current: Callable[[], ContainerRecord | None], *, stream: bool,
             one_shot: bool, sleep: Callable[[float], None] = time.sleep
             ) -> Iterator[dict[str, Any]]:
    """Stats objects: one (after a second reading unless ``one_shot``) or one a second.

    ``current`` returns the live record (None once removed), which ends a stream.
    """
    pre: Snapshot | None = None
    while True:
        live = current()
        if live is None:
            return
        running = live.state.status in ("running", "paused")
        host_net = live.host_config.get("NetworkMode") == "host"  # no counters of its own
        snap = take(cgroup(), 0 if host_net else live.state.pid) if running else None
        if not stream and running and pre is None and not one_shot:
            pre = snap
            sleep(INTERVAL)
            continue
        yield stats_json(live, snap, pre)
        if not stream:
            return
        pre = snap
        sleep(INTERVAL)
