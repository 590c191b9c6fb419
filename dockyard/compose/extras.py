"""Service keys beyond the core model: those handed to the engine as they are (``HostConfig``
settings kept under their compose names in ``Service.passthrough``), and those dockyard cannot
honour, refused with the file, service and key named rather than silently ignored (pure)."""
from __future__ import annotations

import platform as _platform
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.compose.units import parse_size, to_bool, to_int
from dockyard.errors import InvalidArgument

Convert = Callable[[Any, str], Any]


def _str(value: Any, _where: str) -> str:
    return str(value)


def _strs(value: Any, _where: str) -> list[str]:
    return [str(v) for v in ([value] if isinstance(value, (str, int)) else value)]


# compose key → (HostConfig key, conversion of the compose value)
HOST_CONFIG: dict[str, tuple[str, Convert]] = {
    "cgroup_parent": ("CgroupParent", _str),
    "cgroup": ("CgroupnsMode", _str),
    "cpu_period": ("CpuPeriod", to_int),
    "cpu_quota": ("CpuQuota", to_int),
    "cpuset": ("CpusetCpus", _str),
    "mem_reservation": ("MemoryReservation", parse_size),
    "mem_swappiness": ("MemorySwappiness", to_int),
    "oom_kill_disable": ("OomKillDisable", to_bool),
    "oom_score_adj": ("OomScoreAdj", to_int),
    "security_opt": ("SecurityOpt", _strs),
    "group_add": ("GroupAdd", _strs),
    "dns_opt": ("DnsOptions", _strs),
    "device_cgroup_rules": ("DeviceCgroupRules", _strs),
    "runtime": ("Runtime", _str),
    "ipc": ("IpcMode", _str),
    "pid": ("PidMode", _str),
    "uts": ("UTSMode", _str),
}
# keys of the compose side only, kept as they are
COMPOSE_SIDE = ("attach", "external_links")
# keys Compose reads for commands dockyard does not have: a warning, not an error
WARN_ONLY = {"develop": "it is used by \"compose watch\", which dockyard does not have"}
UNSUPPORTED: dict[str, str] = {
    "annotations": "the engine does not apply OCI annotations",
    "blkio_config": "the engine applies no block I/O settings from compose",
    "cpu_count": "a Windows-only setting",
    "cpu_percent": "a Windows-only setting",
    "cpu_rt_period": "the engine applies no real-time CPU settings at create",
    "cpu_rt_runtime": "the engine applies no real-time CPU settings at create",
    "credential_spec": "a Windows-only setting",
    "gpus": "the engine has no GPU support",
    "isolation": "a Windows-only setting",
    "mac_address": "the engine does not set MAC addresses",
    "models": "the engine has no model runner",
    "post_start": "lifecycle hooks are not implemented",
    "pre_stop": "lifecycle hooks are not implemented",
    "provider": "service providers are not implemented",
    "pull_refresh_after": "the refresh pull policies are not implemented",
    "storage_opt": "the storage driver takes no per-container options",
    "use_api_socket": "not implemented",
    "userns_mode": "the engine has no user namespace remapping",
}


def host_arch() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def read(name: str, raw: Mapping[str, Any], warn: Callable[[str], None]) -> dict[str, Any]:
    """The passthrough keys of service ``name`` with their values converted; raises
    ``InvalidArgument`` ``services.<name>.<key>: …`` for a key dockyard cannot honour."""
    w = f"services.{name}."
    for key, why in UNSUPPORTED.items():
        if raw.get(key) is not None:
            raise InvalidArgument(f"{w}{key}: {key!r} is not supported by dockyard ({why})")
    for key, why in WARN_ONLY.items():
        if raw.get(key) is not None:
            warn(f"service \"{name}\": {key} is ignored: {why}")
    for i, net in enumerate((raw.get("networks") or {}).items()
                            if isinstance(raw.get("networks"), dict) else ()):
        if isinstance(net[1], dict) and net[1].get("mac_address") is not None:
            raise InvalidArgument(f"{w}networks.{net[0]}.mac_address: 'mac_address' is not "
                                  f"supported by dockyard ({UNSUPPORTED['mac_address']})")
    plat = raw.get("platform")
    if plat is not None and not _platform_ok(str(plat)):
        raise InvalidArgument(f"{w}platform: {plat!r} is not supported by dockyard (this "
                              f"engine runs linux/{host_arch()} images)")
    for key in ("secrets", "configs"):
        for item in raw.get(key) or ():
            for attr in ("uid", "gid", "mode"):
                if isinstance(item, dict) and item.get(attr) is not None:
                    raise InvalidArgument(f"{w}{key}.{attr}: {attr!r} is not supported by "
                                          f"dockyard (file {key} are bind-mounted as they are)")
    out: dict[str, Any] = {}
    for key, (_hc, convert) in HOST_CONFIG.items():
        if raw.get(key) is not None:
            out[key] = convert(raw[key], w + key)
    for key in COMPOSE_SIDE:
        if raw.get(key) is not None:
            out[key] = raw[key]
    return out


def _platform_ok(text: str) -> bool:
    parts = text.lower().split("/")
    return parts[0] == "linux" and (len(parts) == 1 or parts[1] == host_arch())


def host_config(passthrough: Mapping[str, Any],
                resolve_container: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The ``HostConfig`` entries of a service's passthrough keys; ``ipc``/``pid``
    ``service:<name>`` become ``container:<its first container>``."""
    out: dict[str, Any] = {}
    for key, value in passthrough.items():
        if key not in HOST_CONFIG:
            continue
        if key in ("ipc", "pid") and str(value).startswith("service:") and resolve_container:
            value = "container:" + resolve_container(str(value).split(":", 1)[1])
        out[HOST_CONFIG[key][0]] = value
    return out


def depends(raw: Mapping[str, Any]) -> list[str]:
    """Services an ``ipc``/``pid`` ``service:<name>`` makes this one depend on."""
    return [str(raw[k]).split(":", 1)[1] for k in ("ipc", "pid")
            if isinstance(raw.get(k), str) and raw[k].startswith("service:")]


def check_sources(name: str, services_raw: Mapping[str, Any],
                         top: Mapping[str, Any], section: str) -> None:
    """Only file-based secrets/configs can be given to a container (bind-mounted)."""
    for item in services_raw.get(section) or ():
        src = item if isinstance(item, str) else item.get("source")
        spec = top.get(src)
        if not isinstance(spec, dict):
            raise InvalidArgument(f"services.{name}.{section}: service {name!r} refers to "
                                  f"undefined {section[:-1]} {src}: invalid compose project")
        if not spec.get("file"):
            kind = next((k for k in ("environment", "content", "external") if spec.get(k)),
                        "this")
            raise InvalidArgument(f"services.{name}.{section}: {section[:-1]} {src!r}: "
                                  f"{kind} {section} are not supported by dockyard (only "
                                  "file ones, bind-mounted)")
