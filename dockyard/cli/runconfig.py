"""``run``/``create`` flags → the ``POST /containers/create`` request (pure)."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.cli import runparse as rp
from dockyard.cli.runparse import OptionError

ATTACHABLE = ("stdin", "stdout", "stderr")


@dataclass(frozen=True)
class CreateRequest:
    name: str
    platform: str
    body: dict[str, Any]

    @property
    def query(self) -> dict[str, str | None]:
        return {"name": self.name or None, "platform": self.platform or None}


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _attach_streams(ns: argparse.Namespace) -> tuple[bool, bool, bool]:
    wanted = [a.lower() for a in ns.attach]
    for stream in wanted:
        if stream not in ATTACHABLE:
            raise OptionError("valid streams are STDIN, STDOUT and STDERR")
    stdin = "stdin" in wanted or ns.interactive
    if not wanted:
        return stdin, True, True
    return stdin, "stdout" in wanted, "stderr" in wanted


def _healthcheck(ns: argparse.Namespace) -> dict[str, Any] | None:
    have = bool(ns.health_cmd or ns.health_interval or ns.health_timeout
                or ns.health_start_period or ns.health_retries or ns.health_start_interval)
    if ns.no_healthcheck:
        if have:
            raise OptionError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for flag in ("interval", "timeout", "retries", "start_period", "start_interval"):
        if getattr(ns, f"health_{flag}") < 0:
            raise OptionError(f"--health-{flag.replace('_', '-')} cannot be negative")
    health: dict[str, Any] = {"Interval": ns.health_interval, "Timeout": ns.health_timeout,
                              "StartPeriod": ns.health_start_period,
                              "StartInterval": ns.health_start_interval,
                              "Retries": ns.health_retries}
    if ns.health_cmd:
        health = {"Test": ["CMD-SHELL", ns.health_cmd], **health}
    return health


def _env(ns: argparse.Namespace, environ: Mapping[str, str],
         read_text: Callable[[str], str]) -> list[str]:
    out: list[str] = []
    for path in ns.env_file:
        out.extend(rp.read_kv_file(read_text(path), environ))
    out.extend(rp.env_value(item, environ) for item in ns.env)
    return out


def _labels(ns: argparse.Namespace, read_text: Callable[[str], str]) -> dict[str, str]:
    items: list[str] = []
    for path in ns.label_file:
        items.extend(rp.read_kv_file(read_text(path), None))
    items.extend(ns.label)
    return rp.kv_map(items)


def container_config(ns: argparse.Namespace, image: str, cmd: list[str],
                     environ: Mapping[str, str], read_text: Callable[[str], str],
                     exposed: dict[str, Any], volumes: dict[str, Any]) -> dict[str, Any]:
    stdin, stdout, stderr = _attach_streams(ns)
    config: dict[str, Any] = {
        "Hostname": ns.hostname, "Domainname": ns.domainname, "User": ns.user,
        "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr,
        "Tty": ns.tty, "OpenStdin": ns.interactive, "StdinOnce": ns.interactive and stdin,
        "Env": _env(ns, environ, read_text) or None, "Cmd": cmd or None, "Image": image,
        "Volumes": volumes, "WorkingDir": ns.workdir,
        "Entrypoint": None if ns.entrypoint is None else [ns.entrypoint] if ns.entrypoint
        else [""],
        "Labels": _labels(ns, read_text), "ExposedPorts": exposed or None,
    }
    health = _healthcheck(ns)
    if health is not None:
        config["Healthcheck"] = health
    if ns.stop_signal is not None:
        config["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        config["StopTimeout"] = ns.stop_timeout
    return config


def _resources(ns: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {
        "Memory": ns.memory, "MemorySwap": ns.memory_swap,
        "MemoryReservation": ns.memory_reservation, "KernelMemory": ns.kernel_memory,
        "NanoCpus": ns.cpus, "CpuShares": ns.cpu_shares, "CpuPeriod": ns.cpu_period,
        "CpuQuota": ns.cpu_quota, "CpuRealtimePeriod": ns.cpu_rt_period,
        "CpuRealtimeRuntime": ns.cpu_rt_runtime, "CpusetCpus": ns.cpuset_cpus,
        "CpusetMems": ns.cpuset_mems, "BlkioWeight": ns.blkio_weight,
        "CgroupParent": ns.cgroup_parent,
        "Ulimits": [rp.parse_ulimit(u) for u in ns.ulimit] or None,
        "Devices": [rp.parse_device(d) for d in ns.device],
        "DeviceCgroupRules": ns.device_cgroup_rule or None,
    }
    if ns.pids_limit is not None:
        res["PidsLimit"] = ns.pids_limit
    swappiness = -1 if ns.memory_swappiness is None else ns.memory_swappiness
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise OptionError(f"invalid value: {swappiness}. Valid memory swappiness range is 0-100")
    res["MemorySwappiness"] = swappiness
    if ns.oom_kill_disable is not None:
        res["OomKillDisable"] = ns.oom_kill_disable
    return res


def normalize_caps(caps: list[str]) -> list[str] | None:
    """opts.CapabilitiesMap: upper-case, ``CAP_`` prefix (except ``ALL``), de-duplicated."""
    out: list[str] = []
    for cap in caps:
        name = cap.strip().upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in out:
            out.append(name)
    return out or None


def host_config(ns: argparse.Namespace, binds: list[str], bindings: dict[str, Any],
                read_text: Callable[[str], str]) -> dict[str, Any]:
    restart = rp.parse_restart(ns.restart)
    if ns.rm and restart["Name"] not in ("", "no"):
        raise OptionError("conflicting options: cannot specify both --restart and --rm")
    security = rp.parse_security_opts(ns.security_opt, read_text)
    hc: dict[str, Any] = {
        "Binds": binds or None, "ContainerIDFile": ns.cidfile,
        "LogConfig": {"Type": ns.log_driver, "Config": rp.kv_map(ns.log_opt)},
        "NetworkMode": ns.network[0] if ns.network else "default",
        "PortBindings": bindings, "RestartPolicy": restart, "AutoRemove": ns.rm,
        "VolumeDriver": ns.volume_driver, "VolumesFrom": ns.volumes_from or None,
        "CapAdd": normalize_caps(ns.cap_add), "CapDrop": normalize_caps(ns.cap_drop),
        "ConsoleSize": [0, 0],
        "CgroupnsMode": ns.cgroupns, "Dns": ns.dns, "DnsOptions": ns.dns_option,
        "DnsSearch": ns.dns_search, "ExtraHosts": ns.add_host or None,
        "GroupAdd": ns.group_add or None, "IpcMode": ns.ipc, "Cgroup": "",
        "Links": ns.link or None, "OomScoreAdj": ns.oom_score_adj, "PidMode": ns.pid,
        "Privileged": ns.privileged, "PublishAllPorts": ns.publish_all,
        "ReadonlyRootfs": ns.read_only, "SecurityOpt": [o for o in security
                                                        if o != "systempaths=unconfined"] or None,
        "StorageOpt": rp.kv_map(ns.storage_opt) or None,
        "Tmpfs": rp.parse_tmpfs(ns.tmpfs) or None, "UTSMode": ns.uts, "UsernsMode": ns.userns,
        "ShmSize": ns.shm_size, "Sysctls": rp.kv_map(ns.sysctl) or None,
        "Runtime": ns.runtime, "Isolation": ns.isolation,
        "Mounts": [rp.parse_mount(m) for m in ns.mount] or None,
        **_resources(ns),
    }
    if "systempaths=unconfined" in security:
        hc["MaskedPaths"] = []
        hc["ReadonlyPaths"] = []
    if ns.init is not None:
        hc["Init"] = ns.init
    return hc


BUILTIN_NETWORKS = ("default", "bridge", "host", "none")


def user_defined(network: str) -> bool:
    return network not in BUILTIN_NETWORKS and not network.startswith("container:")


def _first_endpoint(ns: argparse.Namespace, explicit: bool) -> dict[str, Any]:
    """Options of the first network: only ``--mac-address`` applies to the implicit one."""
    ep: dict[str, Any] = {}
    if explicit:
        if ns.network_alias:
            ep["Aliases"] = list(ns.network_alias)
        if ns.link:
            ep["Links"] = list(ns.link)
        ipam = {k: v for k, v in (("IPv4Address", ns.ip), ("IPv6Address", ns.ip6)) if v}
        if ipam:
            ep["IPAMConfig"] = ipam
    if ns.mac_address:
        ep["MacAddress"] = ns.mac_address
    return ep


def networking_config(ns: argparse.Namespace) -> dict[str, Any]:
    """docker 28's parseNetworkOpts: the implicit ``default`` endpoint is always sent; an
    explicit single network only when it has endpoint options."""
    if not ns.network:
        if ns.network_alias:
            raise OptionError("network-scoped aliases are only supported for user-defined "
                              "networks")
        return {"EndpointsConfig": {"default": _first_endpoint(ns, explicit=False)}}
    if ns.network_alias and not user_defined(ns.network[0]):
        raise OptionError("network-scoped aliases are only supported for user-defined networks")
    endpoints: dict[str, Any] = {}
    for i, network in enumerate(ns.network):
        if network in endpoints:
            raise OptionError(f'network "{network}" is specified multiple times')
        ep = _first_endpoint(ns, explicit=True) if i == 0 else {}
        if i == 0 and len(ns.network) == 1 and not ep:
            continue
        endpoints[network] = ep
    return {"EndpointsConfig": endpoints}


def build_create(ns: argparse.Namespace, image: str, cmd: list[str],
                 environ: Mapping[str, str],
                 read_text: Callable[[str], str] = _read_file) -> CreateRequest:
    """The whole create request for parsed ``run``/``create`` flags."""
    exposed, bindings = rp.parse_ports(ns.publish)
    rp.parse_expose(ns.expose, exposed)
    binds, volumes = rp.split_volumes(ns.volume)
    body = container_config(ns, image, cmd, environ, read_text, exposed, volumes)
    body["HostConfig"] = host_config(ns, binds, bindings, read_text)
    body["NetworkingConfig"] = networking_config(ns)
    return CreateRequest(ns.name, ns.platform, body)


def detach_adjust(body: dict[str, Any]) -> None:
    """``run -d``: nothing is attached."""
    body.update(AttachStdin=False, AttachStdout=False, AttachStderr=False, StdinOnce=False)
