"""``linux.resources`` (memory, cpu, pids, blkio) and rlimits with Docker's checks and defaults.

``resources_to_oci`` is also what a ``docker update`` path hands the runtime.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.runtime.spec_types import DEFAULT_NOFILE, Resources, Ulimit

MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000  # microseconds; --cpus N sets quota = N * period
_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
RLIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
_U64_MAX = 2**64 - 1


def _check_cpuset(value: str, what: str) -> None:
    if value and not _CPUSET_RE.match(value):
        raise InvalidArgument(f"Invalid value {value} for cpuset {what}")
    for part in value.split(",") if value else ():
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise InvalidArgument(f"Invalid value {value} for cpuset {what}")


def validate_resources(r: Resources) -> None:
    """Docker's ``verifyPlatformContainerResources`` checks that do not depend on the host."""
    if 0 < r.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if r.memory_swap > 0 and r.memory == 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, "
                              "see usage")
    if r.memory > 0 and 0 < r.memory_swap < r.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if r.memory_swappiness is not None and r.memory_swappiness != -1 \
            and not 0 <= r.memory_swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {r.memory_swappiness}, valid memory swappiness "
                              "range is 0-100")
    if r.memory > 0 and r.memory_reservation > r.memory:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit,"
                              " see usage")
    if 0 < r.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if r.cpu_shares < 0:
        raise InvalidArgument("shares: invalid argument")
    if r.cpus < 0:
        raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs available")
    if r.cpus > 0 and r.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r.cpus > 0 and r.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r.cpu_period and not 1000 <= r.cpu_period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than "
                              "1s (i.e. 1000000)")
    if 0 < r.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.blkio_weight and not 10 <= r.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    _check_cpuset(r.cpuset_cpus, "cpus")
    _check_cpuset(r.cpuset_mems, "mems")


def effective_swap(r: Resources, swap_limit: bool = True) -> int:
    """memory+swap limit Docker applies: 0 with memory set means twice the memory; -1 when
    the host has no swap accounting (Docker warns and drops the limit)."""
    if not swap_limit:
        return -1
    if r.memory > 0 and r.memory_swap == 0:
        return 2 * r.memory
    return r.memory_swap


def resources_to_oci(r: Resources, swap_limit: bool = True) -> dict[str, Any]:
    """``linux.resources`` without devices; empty sections are left out."""
    validate_resources(r)
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if r.memory > 0:
        memory["limit"] = r.memory
    if r.memory_reservation > 0:
        memory["reservation"] = r.memory_reservation
    swap = effective_swap(r, swap_limit)
    if swap > 0:  # -1 (unlimited) is the runtime's default: left out, as Docker does
        memory["swap"] = swap
    if r.memory_swappiness is not None and r.memory_swappiness != -1:
        memory["swappiness"] = r.memory_swappiness
    if r.oom_kill_disable is not None:
        memory["disableOOMKiller"] = r.oom_kill_disable
    if memory:
        out["memory"] = memory

    cpu: dict[str, Any] = {}
    if r.cpu_shares > 0:
        cpu["shares"] = r.cpu_shares
    if r.cpus > 0:
        cpu["quota"] = r.cpus * CPU_PERIOD // 1_000_000_000
        cpu["period"] = CPU_PERIOD
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        out["cpu"] = cpu

    if r.pids_limit is not None:
        out["pids"] = {"limit": r.pids_limit if r.pids_limit > 0 else -1}
    if r.blkio_weight:
        out["blockIO"] = {"weight": r.blkio_weight}
    return out


def parse_ulimit(text: str) -> Ulimit:
    """``nofile=1024:2048`` or ``nproc=512`` (soft = hard) as the docker CLI parses it."""
    name, sep, limits = text.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    soft_s, _, hard_s = limits.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from None
    return Ulimit(name, soft, hard)


def _limit(value: int) -> int:
    return _U64_MAX if value < 0 else value


def rlimits(ulimits: Iterable[Ulimit],
            default_nofile: int = DEFAULT_NOFILE) -> list[dict[str, Any]]:
    """``process.rlimits``: the container's ulimits, then defaults they do not override."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for u in ulimits:
        name = u.name.lower()
        if name not in RLIMIT_NAMES:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        if _limit(u.soft) > _limit(u.hard):
            raise InvalidArgument("ulimit soft limit must be less than or equal to hard "
                                  f"limit: {u.soft} > {u.hard}")
        if name in seen:
            out = [r for r in out if r["type"] != "RLIMIT_" + name.upper()]
        seen.add(name)
        out.append({"type": "RLIMIT_" + name.upper(), "hard": _limit(u.hard),
                    "soft": _limit(u.soft)})
    if "nofile" not in seen and default_nofile:
        out.append({"type": "RLIMIT_NOFILE", "hard": default_nofile, "soft": default_nofile})
    return out
