"""From a container record to runtime ``SpecOptions``: Docker's Config/HostConfig, translated.

Also the executable pre-check Docker's runtimes do at create time, so a missing command gives
Docker's message (and the CLI its exit code 127/126) instead of a dead task.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dockyard.diff.safepath import resolve_in_root
from dockyard.errors import InvalidArgument
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime.spec import SpecOpt, build_spec
from dockyard.runtime.spec_types import Mount, Resources, SpecOptions, Ulimit

RUNTIME_FAIL = ("failed to create task for container: failed to create shim task: OCI runtime "
                "create failed: unable to start container process: error during container init: ")


def _resources(hc: dict[str, Any]) -> Resources:
    pids = hc.get("PidsLimit")
    return Resources(
        memory=int(hc.get("Memory") or 0), memory_swap=int(hc.get("MemorySwap") or 0),
        memory_reservation=int(hc.get("MemoryReservation") or 0),
        memory_swappiness=hc.get("MemorySwappiness"), oom_kill_disable=hc.get("OomKillDisable"),
        cpu_shares=int(hc.get("CpuShares") or 0), cpus=int(hc.get("NanoCpus") or 0),
        cpu_quota=int(hc.get("CpuQuota") or 0), cpu_period=int(hc.get("CpuPeriod") or 0),
        cpuset_cpus=hc.get("CpusetCpus") or "", cpuset_mems=hc.get("CpusetMems") or "",
        pids_limit=int(pids) if pids else None, blkio_weight=int(hc.get("BlkioWeight") or 0))


def _etc_mounts(etc: dict[str, Path]) -> list[Mount]:
    return [Mount(f"/etc/{name}", "bind", str(path), ("rbind", "rprivate"))
            for name, path in etc.items()]


NamespaceResolver = Callable[[str, str], str]


def _namespace(kind: str, mode: str, resolve: NamespaceResolver | None) -> str:
    """Docker's mode strings → the builder's: ``host``, ``private``, a path, or ipc modes."""
    if mode.startswith("container:"):
        if resolve is None:
            raise InvalidArgument(f"cannot join the {kind} namespace of {mode[10:]}")
        return resolve(mode[10:], kind)
    if mode == "host":
        return "host"
    if kind == "ipc" and mode in ("none", "shareable", "private"):
        return mode
    return "private"


def options_for(rec: ContainerRecord, rootfs: Path, etc: dict[str, Path],
                cgroups_path: str, extra_mounts: list[Mount] | None = None,
                network: str | None = None, resolve: NamespaceResolver | None = None,
                cgroupns: str = "private", tmpfs: dict[str, str] | None = None) -> SpecOptions:
    cfg, hc = rec.config, rec.host_config
    mode = hc.get("NetworkMode") or "default"
    net = network or ("host" if mode == "host" else
                      _namespace("net", mode, resolve) if mode.startswith("container:") else
                      "none" if mode == "none" else "new")
    mounts = list(extra_mounts or [])
    if mode != "host":
        mounts += _etc_mounts(etc)
    else:
        mounts += _etc_mounts({k: v for k, v in etc.items() if k != "hostname"})
    ulimits = tuple(Ulimit(u["Name"], int(u["Soft"]), int(u["Hard"]))
                    for u in hc.get("Ulimits") or [])
    return SpecOptions(
        rootfs=rootfs, args=(rec.path, *rec.args), env=tuple(cfg.get("Env") or ()),
        cwd=cfg.get("WorkingDir") or "/", user=cfg.get("User") or "",
        group_add=tuple(hc.get("GroupAdd") or ()), hostname=cfg.get("Hostname") or "",
        domainname=cfg.get("Domainname") or "", tty=bool(cfg.get("Tty")),
        console_size=console_size(hc.get("ConsoleSize")) if cfg.get("Tty") else None,
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")), privileged=bool(hc.get("Privileged")),
        cap_add=tuple(hc.get("CapAdd") or ()), cap_drop=tuple(hc.get("CapDrop") or ()),
        security_opt=tuple(hc.get("SecurityOpt") or ()), mounts=tuple(mounts),
        shm_size=int(hc.get("ShmSize") or 64 * 1024 * 1024),
        tmpfs=(hc.get("Tmpfs") or {}) if tmpfs is None else tmpfs,
        devices=tuple(_devices(hc.get("Devices") or [])),
        device_cgroup_rules=tuple(hc.get("DeviceCgroupRules") or ()),
        sysctls=hc.get("Sysctls") or {}, ulimits=ulimits,
        oom_score_adj=int(hc.get("OomScoreAdj") or 0), network=net,
        ipc=_namespace("ipc", hc.get("IpcMode") or "", resolve),
        pid=_namespace("pid", hc.get("PidMode") or "", resolve),
        uts=_namespace("uts", hc.get("UTSMode") or "", resolve), cgroups_path=cgroups_path,
        init_path=init_binary() if hc.get("Init") else None,
        cgroupns=hc.get("CgroupnsMode") or cgroupns,
        resources=_resources(hc))


def init_binary() -> Path:
    """``--init``: a static tini, bind-mounted as /sbin/docker-init like Docker does."""
    for candidate in ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/local/bin/tini"):
        if os.path.exists(candidate):
            return Path(candidate)
    raise InvalidArgument("--init needs tini-static (apt install tini)")


def console_size(value: Any) -> tuple[int, int] | None:
    """Docker's ``ConsoleSize`` [height, width]; absent or zero means unknown."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1]) if value[0] > 0 and value[1] > 0 else None
    return None


def _devices(devices: list[dict[str, str]]) -> list[str]:
    return [f"{d['PathOnHost']}:{d.get('PathInContainer') or d['PathOnHost']}:"
            f"{d.get('CgroupPermissions') or 'rwm'}" for d in devices]


def build(rec: ContainerRecord, rootfs: Path, etc: dict[str, Path], cgroups_path: str,
          extra_mounts: list[Mount] | None = None, resolve: NamespaceResolver | None = None,
          cgroupns: str = "private", extra_opts: Iterable[SpecOpt] = (),
          tmpfs: dict[str, str] | None = None, network: str | None = None) -> dict[str, Any]:
    spec = build_spec(options_for(rec, rootfs, etc, cgroups_path, extra_mounts,
                                  network=network, resolve=resolve, cgroupns=cgroupns,
                                  tmpfs=tmpfs),
                      extra_opts=extra_opts)
    _ensure_workdir(rootfs, spec)
    return spec


def _ensure_workdir(rootfs: Path, spec: dict[str, Any]) -> None:
    cwd = spec.get("process", {}).get("cwd") or "/"
    if cwd != "/":
        target = resolve_in_root(rootfs, cwd)
        if not target.exists():
            target.mkdir(parents=True, exist_ok=True)


EXEC_FAIL = "OCI runtime exec failed: exec failed: unable to start container process: "


def check_executable(rootfs: Path, spec: dict[str, Any], prefix: str = RUNTIME_FAIL) -> None:
    """Raise Docker's error when the command does not exist or cannot be executed."""
    process = spec.get("process", {})
    args = process.get("args") or [""]
    if args[0] == "/sbin/docker-init" and "--" in args:  # --init: check the real command
        args = args[args.index("--") + 1:] or [""]
    argv0 = args[0]
    if not argv0:
        raise InvalidArgument(prefix + "exec: no command: unknown")
    env = dict(e.split("=", 1) for e in process.get("env", []) if "=" in e)
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else
                      os.path.join(process.get("cwd") or "/", argv0)]
    else:
        candidates = [os.path.join(d or ".", argv0)
                      for d in env.get("PATH", "/usr/bin:/bin").split(":")]
    for candidate in candidates:
        try:
            target = resolve_in_root(rootfs, candidate)
            info = target.stat()
        except (OSError, InvalidArgument):
            continue
        if stat.S_ISDIR(info.st_mode):
            if "/" in argv0:
                raise InvalidArgument(prefix + f"exec: \"{argv0}\": is a directory: "
                                      "permission denied: unknown")
            continue
        if not info.st_mode & 0o111:
            if "/" in argv0:
                raise InvalidArgument(prefix + f"exec: \"{argv0}\": permission denied:"
                                      " unknown")
            continue
        return
    if "/" in argv0:
        raise InvalidArgument(prefix + f"exec: \"{argv0}\": stat {argv0}: no such file "
                              "or directory: unknown")
    raise InvalidArgument(prefix + f"exec: \"{argv0}\": executable file not found in "
                          "$PATH: unknown")
