"""The mount list Docker puts in config.json: defaults, /dev/shm, --tmpfs, user mounts.

Follows moby's ``DefaultLinuxSpec`` mounts and ``WithMounts`` (override by destination,
user mounts sorted by depth, read-only rootfs, privileged /sys and cgroup rw).
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.runtime.spec_types import DEFAULT_SHM_SIZE, Mount

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

# Mount flags that take no value, grouped by the kernel flag they set or clear: within a group
# the last one given wins (moby's mount.MergeTmpfsOptions). Propagation modes share one group.
_FLAG_GROUPS: dict[str, str] = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev",
    "nodev": "nodev", "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync",
    "dirsync": "dirsync", "remount": "remount", "mand": "mand", "nomand": "mand",
    "atime": "noatime", "noatime": "noatime", "diratime": "nodiratime",
    "nodiratime": "nodiratime", "bind": "bind", "rbind": "rbind", "relatime": "relatime",
    "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
    "private": "propagation", "rprivate": "propagation", "shared": "propagation",
    "rshared": "propagation", "slave": "propagation", "rslave": "propagation",
    "unbindable": "propagation", "runbindable": "propagation",
}
_TMPFS_DATA_KEYS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})


def default_mounts(shm_size: int) -> list[dict[str, Any]]:
    """Docker's default mounts for a container with a private /dev/shm of ``shm_size`` bytes."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def _go_quote_list(items: list[str]) -> str:
    quoted = ('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return "[" + " ".join(quoted) + "]"


def merge_tmpfs_options(options: Iterable[str]) -> list[str]:
    """Drop overridden flags/values, last occurrence wins; unknown ``k=v`` -> InvalidArgument."""
    seen_flags: set[str] = set()
    seen_data: set[str] = set()
    out: list[str] = []
    for option in reversed(list(options)):
        if option in ("defaults", ""):
            continue
        group = _FLAG_GROUPS.get(option)
        if group is not None:
            if group not in seen_flags:
                seen_flags.add(group)
                out.insert(0, option)
            continue
        key_value = option.split("=", 1)
        if len(key_value) != 2 or key_value[0] not in _TMPFS_DATA_KEYS:
            raise InvalidArgument(f"Invalid tmpfs option {_go_quote_list(key_value)}")
        if key_value[0] not in seen_data:
            seen_data.add(key_value[0])
            out.insert(0, option)
    return out


def tmpfs_mount(destination: str, data: str) -> Mount:
    """``--tmpfs /run:size=64m,exec`` as Docker mounts it (noexec,nosuid,nodev,rprivate + data)."""
    if not destination.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"tmpfs\": invalid mount path: "
                              f"'{destination}' mount path must be absolute")
    base = ["noexec", "nosuid", "nodev", "rprivate"]
    extra = [o for o in data.split(",") if o] if data else []
    return Mount(destination=posixpath.normpath(destination), type="tmpfs", source="tmpfs",
                 options=tuple(merge_tmpfs_options(base + extra)))


def _depth(destination: str) -> int:
    clean = posixpath.normpath(destination)
    return 0 if clean == "/" else clean.count("/")


def sort_mounts(mounts: Iterable[Mount]) -> list[Mount]:
    """Parents before children: stable sort by number of path components (moby's sortMounts)."""
    return sorted(mounts, key=lambda m: _depth(m.destination))


def container_mounts(
    *,
    shm_size: int,
    user_mounts: Iterable[Mount],
    tmpfs: Mapping[str, str],
    ipc_mode: str,
    readonly_rootfs: bool,
    privileged: bool,
    init_source: str | None,
) -> list[dict[str, Any]]:
    """The final ``mounts`` list, in Docker's order: defaults, init, then sorted user mounts."""
    if shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    shm_size = shm_size or DEFAULT_SHM_SIZE
    users = list(user_mounts) + [tmpfs_mount(d, o) for d, o in tmpfs.items()]
    if ipc_mode == "host" and not any(m.destination == "/dev/shm" for m in users):
        users.append(Mount("/dev/shm", "bind", "/dev/shm", ("rbind", "rprivate")))
    users = sort_mounts(users)
    user_dests = {posixpath.normpath(m.destination) for m in users}
    dev_mounted = "/dev" in user_dests

    mounts: list[dict[str, Any]] = []
    for m in default_mounts(shm_size):
        dest = m["destination"]
        if dest in user_dests or (dev_mounted and dest.startswith("/dev/")):
            continue
        if dest == "/dev/shm" and ipc_mode == "none":
            continue
        mounts.append(m)
    if init_source is not None:
        mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind",
                       "source": init_source, "options": ["bind", "ro"]})
    mounts.extend(m.to_oci() for m in users)

    if readonly_rootfs:
        for m in mounts:
            if m["destination"] in ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"):
                continue
            if m["destination"] not in user_dests and "ro" not in m["options"]:
                m["options"].append("ro")
    if privileged:
        for m in mounts:
            if m["destination"] == "/sys" or m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"]
    return mounts


def rootfs_propagation(mounts: Iterable[Mount]) -> str | None:
    """``shared`` if any mount wants (r)shared propagation, ``rslave`` for (r)slave, else None."""
    result: str | None = None
    for m in mounts:
        opts = set(m.options)
        if opts & {"shared", "rshared"}:
            return "shared"
        if opts & {"slave", "rslave"}:
            result = "rslave"
    return result
