"""Inputs of the OCI spec builder: what ``docker run``/``create`` say, already parsed by the caller.

``SpecOptions`` mirrors the parts of Docker's Config/HostConfig that reach config.json.
``HostFacts`` holds the few facts about the host the spec depends on, so tests can pin them.
"""
from __future__ import annotations

import platform
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument

MiB = 1024 * 1024
DEFAULT_SHM_SIZE = 64 * MiB
DEFAULT_NOFILE = 1048576


@dataclass(frozen=True)
class Mount:
    """One OCI mount, already in final form (e.g. a volume: type bind, options rbind + ro)."""

    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()

    def to_oci(self) -> dict[str, Any]:
        return {"destination": self.destination, "type": self.type, "source": self.source,
                "options": list(self.options)}


@dataclass(frozen=True)
class Ulimit:
    """``--ulimit nofile=1024:2048``: name without RLIMIT_, soft and hard (-1 = unlimited)."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Resources:
    """HostConfig resources with Docker's units (bytes, NanoCPUs, microseconds)."""

    memory: int = 0
    memory_swap: int = 0  # -1 unlimited; 0 = 2 x memory when memory is set
    memory_reservation: int = 0
    memory_swappiness: int | None = None  # None or -1: kernel default
    oom_kill_disable: bool | None = None
    cpu_shares: int = 0
    cpus: int = 0  # NanoCPUs: --cpus 1.5 is 1_500_000_000
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None  # None: not set; 0 or negative: unlimited
    blkio_weight: int = 0


@dataclass(frozen=True)
class SpecOptions:
    """Everything ``build_spec`` needs. Namespace fields take Docker-ish mode strings:
    ``""``/``private``/``new`` (a new namespace), ``host``, or an absolute path to join
    (``/proc/<pid>/ns/net``, ``/var/run/netns/x``); network also ``none``/``bridge``, ipc also
    ``shareable``/``none``."""

    rootfs: Path
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    group_add: tuple[str, ...] = ()
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    masked_paths: tuple[str, ...] | None = None  # None: Docker's defaults
    readonly_paths: tuple[str, ...] | None = None  # None: Docker's defaults
    mounts: tuple[Mount, ...] = ()
    shm_size: int = DEFAULT_SHM_SIZE
    tmpfs: Mapping[str, str] = field(default_factory=dict)  # destination -> "size=64m,exec"
    devices: tuple[str, ...] = ()  # "/dev/fuse", "/dev/fuse:/dev/fuse:rwm", "/dev/sda:r"
    device_cgroup_rules: tuple[str, ...] = ()  # "c 42:* rmw"
    sysctls: Mapping[str, str] = field(default_factory=dict)
    ulimits: tuple[Ulimit, ...] = ()
    oom_score_adj: int = 0
    network: str = "new"
    ipc: str = "private"
    pid: str = "private"
    uts: str = "private"
    cgroupns: str = "private"  # Docker: private on cgroup v2, host on v1
    init_path: Path | None = None
    cgroups_path: str = ""
    resources: Resources = field(default_factory=Resources)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpecOptions:
        """Build from JSON-shaped data (lists for tuples, dicts for Mount/Ulimit/Resources)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(f"unknown spec option(s): {', '.join(unknown)}")
        kw: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("rootfs", "init_path"):
                kw[name] = None if value is None else Path(value)
            elif name == "mounts":
                kw[name] = tuple(Mount(m["destination"], m.get("type", "bind"), m.get("source", ""),
                                       tuple(m.get("options", ()))) for m in value)
            elif name == "ulimits":
                kw[name] = tuple(Ulimit(u["name"], int(u["soft"]), int(u["hard"])) for u in value)
            elif name == "resources":
                kw[name] = Resources(**value)
            elif name == "console_size":
                kw[name] = None if value is None else (int(value[0]), int(value[1]))
            elif name in ("tmpfs", "sysctls", "annotations"):
                kw[name] = dict(value)
            elif isinstance(value, list):
                kw[name] = tuple(value)
            else:
                kw[name] = value
        return cls(**kw)


_SECCOMP_ARCHES = {
    "x86_64": ("amd64", ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "amd64": ("amd64", ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "aarch64": ("arm64", ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")),
    "arm64": ("arm64", ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")),
}


@dataclass(frozen=True)
class HostFacts:
    """Host-dependent inputs. ``probe()`` reads the running host; tests construct fixed ones."""

    arch: str = "x86_64"  # uname -m
    last_cap: int = 40  # /proc/sys/kernel/cap_last_cap
    swap_limit: bool = True  # memory.memsw.* exists (Docker: sysinfo.SwapLimit)
    host_devices: tuple[Mapping[str, Any], ...] | None = None  # privileged /dev; None = scan
    default_nofile: int = DEFAULT_NOFILE  # RLIMIT_NOFILE when --ulimit does not set it
    cap_bounding: int | None = None  # the engine's CapBnd; None: every capability

    @classmethod
    def probe(cls) -> HostFacts:
        from dockyard.runtime.capabilities import kernel_last_cap, process_bounding_mask

        last_cap = kernel_last_cap()
        bounding = process_bounding_mask()
        full = (1 << (last_cap + 1)) - 1
        if bounding is not None and bounding & full == full:
            bounding = None  # the full set: nothing to filter
        return cls(arch=platform.machine(), last_cap=last_cap, swap_limit=_swap_limit(),
                   default_nofile=_default_nofile(), cap_bounding=bounding)

    @property
    def go_arch(self) -> str:
        """Docker profiles name arches as Go does (amd64, arm64)."""
        return _SECCOMP_ARCHES.get(self.arch, (self.arch, ()))[0]

    @property
    def seccomp_arches(self) -> list[str]:
        return list(_SECCOMP_ARCHES.get(self.arch, ("", ()))[1])


def _default_nofile() -> int:
    """Docker's 1048576, or our own hard limit when we cannot raise it (no CAP_SYS_RESOURCE):
    the runtime would otherwise fail every container with EPERM from setrlimit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= DEFAULT_NOFILE:
        return DEFAULT_NOFILE
    try:
        status = Path("/proc/self/status").read_text()
        cap_eff = int(next(ln.split()[1] for ln in status.splitlines()
                           if ln.startswith("CapEff:")), 16)
    except (OSError, StopIteration, ValueError):
        return DEFAULT_NOFILE
    return DEFAULT_NOFILE if cap_eff & (1 << 24) else hard


def _swap_limit() -> bool:
    v1 = Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v1.exists():
        return True
    try:
        return "memory" in v2.read_text().split()
    except OSError:
        return False
