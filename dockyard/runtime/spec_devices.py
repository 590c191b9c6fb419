"""Device nodes and device-cgroup rules: ``--device``, ``--device-cgroup-rule``, privileged /dev.

Follows moby's ``oci.DevicesFromPath`` / ``AppendDevicePermissionsFromCgroupRules`` and
libcontainer's ``HostDevices``.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

# Docker denies everything, then allows the standard nodes the runtime creates in /dev:
# null, zero, full, random, urandom, tty, console, ptmx and the devpts slaves.
_STANDARD_ALLOWED: tuple[tuple[int, int | None], ...] = (
    (1, 3),  # /dev/null
    (1, 5),  # /dev/zero
    (1, 7),  # /dev/full
    (1, 8),  # /dev/random
    (1, 9),  # /dev/urandom
    (5, 0),  # /dev/tty
    (5, 1),  # /dev/console
    (5, 2),  # /dev/ptmx
    (136, None),  # /dev/pts/*
)
_RULE_RE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


@dataclass(frozen=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


def default_device_rules() -> list[dict[str, Any]]:
    """linux.resources.devices for an unprivileged container."""
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for major, minor in _STANDARD_ALLOWED:
        rule: dict[str, Any] = {"allow": True, "type": "c", "major": major}
        if minor is not None:
            rule["minor"] = minor
        rule["access"] = "rwm"
        rules.append(rule)
    return rules


def valid_device_mode(mode: str) -> bool:
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def parse_device(spec: str) -> DeviceMapping:
    """``/dev/x``, ``/dev/x:/dev/y``, ``/dev/x:rw``, ``/dev/x:/dev/y:rwm`` (Docker's
    parseDevice)."""
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise InvalidArgument(f"invalid device specification: {spec}")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if valid_device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    dst = dst or src
    if not valid_device_mode(perms):
        raise InvalidArgument(f"bad mode specified: {perms}")
    if not dst.startswith("/"):
        raise InvalidArgument(f"{dst} is not an absolute path")
    return DeviceMapping(src, dst, perms)


def device_from_path(path: str) -> dict[str, Any] | None:
    """An OCI LinuxDevice for a char/block/fifo node at ``path`` (lstat), None if not a device."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    elif stat.S_ISFIFO(st.st_mode):
        kind = "p"
    else:
        return None
    return {"path": path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def _cgroup_rule(dev: dict[str, Any], access: str) -> dict[str, Any]:
    return {"allow": True, "type": dev["type"], "major": dev["major"], "minor": dev["minor"],
            "access": access}


def devices_from_mapping(m: DeviceMapping) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices entries, cgroup allow rules) for one ``--device``; a directory is walked."""
    host = m.path_on_host
    if os.path.islink(host):
        host = os.path.realpath(host)
    dev = device_from_path(host)
    if dev is not None:
        dev["path"] = m.path_in_container
        return [dev], [_cgroup_rule(dev, m.permissions)]
    devs: list[dict[str, Any]] = []
    if os.path.isdir(host):
        for dirpath, dirnames, filenames in os.walk(host):
            dirnames.sort()
            for name in sorted(filenames):
                child = device_from_path(os.path.join(dirpath, name))
                if child is not None:
                    child["path"] = child["path"].replace(host, m.path_in_container, 1)
                    devs.append(child)
    if not devs:
        reason = "not a device node" if os.path.exists(host) else "no such file or directory"
        raise InvalidArgument(
            f'error gathering device information while adding custom device "{m.path_on_host}": '
            f"{reason}")
    return devs, [_cgroup_rule(d, m.permissions) for d in devs]


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every char/block node under /dev (what a privileged container gets), like libcontainer."""
    out: list[dict[str, Any]] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIP_DIRS:
                out.extend(host_devices(entry.path))
            continue
        if entry.name == "console":
            continue
        dev = device_from_path(entry.path)
        if dev is not None and dev["type"] != "p":
            out.append(dev)
    return out


def parse_cgroup_rule(rule: str) -> dict[str, Any]:
    """``c 42:* rmw`` -> an allow rule. A ``*`` is left out (the spec's wildcard); Docker writes
    -1, which runc accepts but crun writes verbatim and the kernel rejects."""
    m = _RULE_RE.match(rule)
    if not m:
        raise InvalidArgument(f"invalid device cgroup format '{rule}'")
    out: dict[str, Any] = {"allow": True, "type": m.group(1)}
    if m.group(2) != "*":
        out["major"] = int(m.group(2))
    if m.group(3) != "*":
        out["minor"] = int(m.group(3))
    out["access"] = m.group(4)
    return out


def spec_devices(
    mappings: tuple[str, ...],
    cgroup_rules: tuple[str, ...],
    privileged: bool,
    host_nodes: list[dict[str, Any]] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices, linux.resources.devices) for the container."""
    parsed = [parse_device(d) for d in mappings]
    if privileged:
        devs = [dict(d) for d in (host_devices() if host_nodes is None else host_nodes)]
        for m in parsed:
            if m.path_on_host != m.path_in_container:  # same path: already there via /dev
                devs.extend(devices_from_mapping(DeviceMapping(m.path_on_host,
                                                               m.path_in_container))[0])
        return devs, [{"allow": True, "access": "rwm"}]
    devs, rules = [], default_device_rules()
    for m in parsed:
        d, r = devices_from_mapping(m)
        devs.extend(d)
        rules.extend(r)
    rules.extend(parse_cgroup_rule(r) for r in cgroup_rules)
    return devs, rules

