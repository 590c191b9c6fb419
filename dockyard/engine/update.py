"""``POST /containers/{id}/update``: change resource limits and the restart policy.

Docker's rules (daemon/update.go, container/container_unix.go): a zero field leaves the
setting alone; ``PidsLimit`` applies whenever present; the restart policy applies when it
names a policy. The merged HostConfig is validated as at create, written to the running
container's cgroup, then stored (and used by every later start).
"""
from __future__ import annotations

import copy
from typing import Any

from dockyard.engine import createconfig
from dockyard.errors import Conflict, InvalidArgument
from dockyard.host import cgstats
from dockyard.host.cgroups import ContainerCgroup
from dockyard.metadata.containers import ContainerRecord

# UpdateConfig fields that change when non-zero (the CLI sends every field, zeros unset).
NONZERO_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
                  "CpuQuota", "CpuPeriod", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                  "BlkioWeight", "CpusetCpus", "CpusetMems", "KernelMemory",
                  "KernelMemoryTCP")
CPU_PERIOD = 100_000


def merge(rec: ContainerRecord, body: dict[str, Any]) -> dict[str, Any]:
    """The container's HostConfig with ``body`` applied; raises Docker's errors."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    hc = copy.deepcopy(rec.host_config)
    old_swap = int(hc.get("MemorySwap") or 0)
    for key in NONZERO_FIELDS:
        if body.get(key):
            hc[key] = body[key]
    if "PidsLimit" in body and body["PidsLimit"] is not None:
        hc["PidsLimit"] = body["PidsLimit"]
    memory, swap = int(body.get("Memory") or 0), int(body.get("MemorySwap") or 0)
    if memory and not swap:
        if old_swap > 0 and memory > old_swap:
            raise Conflict(_cannot(rec, "Memory limit should be smaller than already set "
                                   "memoryswap limit, update the memoryswap at the same time"))
        if old_swap == 0:
            hc["MemorySwap"] = 2 * memory  # what create gives a memory limit without swap
    if body.get("NanoCpus") and (rec.host_config.get("CpuQuota")
                                 or rec.host_config.get("CpuPeriod")):
        raise Conflict(_cannot(rec, "Conflicting options: CPU Quota or CPU Period cannot be "
                               "updated as NanoCPUs has already been set"))
    if (body.get("CpuQuota") or body.get("CpuPeriod")) and rec.host_config.get("NanoCpus"):
        raise Conflict(_cannot(rec, "Conflicting options: Nano CPUs cannot be updated as CPU "
                               "Period has already been set"))
    policy = body.get("RestartPolicy") or {}
    if policy.get("Name"):
        if rec.host_config.get("AutoRemove") and policy["Name"] != "no":
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is "
                                  "enabled for the container")
        hc["RestartPolicy"] = policy
    try:
        return createconfig.normalise_host_config(hc)
    except InvalidArgument as err:
        raise InvalidArgument(_cannot(rec, str(err))) from None


def _cannot(rec: ContainerRecord, why: str) -> str:
    return f"Cannot update container {rec.id}: {why}"


def limits_of(hc: dict[str, Any], body: dict[str, Any]) -> cgstats.Limits:
    """What to write into the live cgroup for the fields ``body`` changed."""
    def changed(*keys: str) -> bool:
        return any(body.get(k) for k in keys)

    quota = period = None
    if changed("NanoCpus"):
        quota, period = int(hc["NanoCpus"]) * CPU_PERIOD // 1_000_000_000, CPU_PERIOD
    elif changed("CpuQuota", "CpuPeriod"):
        quota = int(hc.get("CpuQuota") or 0) or -1
        period = int(hc.get("CpuPeriod") or 0) or CPU_PERIOD
    memory = int(hc.get("Memory") or 0)
    swap = int(hc.get("MemorySwap") or 0)
    pids = body.get("PidsLimit")
    return cgstats.Limits(
        memory=memory if changed("Memory") else None,
        memory_swap=swap if changed("Memory", "MemorySwap") else None,
        memory_reservation=int(hc["MemoryReservation"]) if changed("MemoryReservation")
        else None,
        cpu_quota=quota, cpu_period=period,
        cpu_shares=int(hc["CpuShares"]) if changed("CpuShares") else None,
        cpuset_cpus=hc["CpusetCpus"] if changed("CpusetCpus") else None,
        cpuset_mems=hc["CpusetMems"] if changed("CpusetMems") else None,
        pids=int(pids) if pids is not None else None,
        blkio_weight=int(hc["BlkioWeight"]) if changed("BlkioWeight") else None)


def apply(rec: ContainerRecord, cg: ContainerCgroup, hc: dict[str, Any],
          body: dict[str, Any]) -> None:
    """Write the changed limits into the running container's cgroup."""
    try:
        cgstats.apply_limits(cg, limits_of(hc, body))
    except OSError as err:
        raise InvalidArgument(_cannot(rec, f"failed to write cgroup limit: "
                                      f"{err.strerror or err}")) from None
