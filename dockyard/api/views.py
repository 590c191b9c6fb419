"""Wire shapes of the Engine API: container and image objects as Docker returns them."""
from __future__ import annotations

import time
from typing import Any

from dockyard.engine.paths import Paths
from dockyard.image.model import Image
from dockyard.metadata.containers import ContainerRecord
from dockyard.types import reference
from dockyard.util.timefmt import human_duration, parse_rfc3339


def status_text(rec: ContainerRecord, now: float | None = None) -> str:
    now = time.time() if now is None else now
    state = rec.state
    if state.status in ("running", "paused"):
        text = "Up " + human_duration(now - parse_rfc3339(state.started_at))
        if state.status == "paused":
            return text + " (Paused)"
        health = (state.health or {}).get("Status")
        if health == "starting":
            return text + " (health: starting)"
        return f"{text} ({health})" if health in ("healthy", "unhealthy") else text
    if state.status == "restarting":
        ago = human_duration(now - parse_rfc3339(state.finished_at))
        return f"Restarting ({state.exit_code}) {ago} ago"
    if state.status == "exited":
        ago = human_duration(now - parse_rfc3339(state.finished_at))
        return f"Exited ({state.exit_code}) {ago} ago"
    if state.status == "removing":
        return "Removal In Progress"
    if state.status == "dead":
        return "Dead"
    return "Created"


def command_text(rec: ContainerRecord) -> str:
    return " ".join([rec.path, *rec.args])


def container_summary(rec: ContainerRecord, image_id: str,
                      pairs: list[tuple[Any, Any]] | None = None) -> dict[str, Any]:
    return {
        "Id": rec.id,
        "Names": ["/" + rec.name],
        "Image": rec.image_name,
        "ImageID": image_id,
        "Command": command_text(rec),
        "Created": int(parse_rfc3339(rec.created)),
        "Ports": ports_summary(pairs or []),
        "Labels": rec.config.get("Labels") or {},
        "State": rec.state.status,
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": network_settings(rec, pairs or [])["Networks"]},
        "Mounts": inspect_mounts(rec),
    }


def container_inspect(rec: ContainerRecord, paths: Paths, lowers: list[str],
                      pairs: list[tuple[Any, Any]] | None = None,
                      sandbox: str = "") -> dict[str, Any]:
    st = rec.state
    base = paths.container(rec.id)
    return {
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": st.status,
            "Running": st.status in ("running", "paused"),
            "Paused": st.status == "paused",
            "Restarting": st.status == "restarting",
            "OOMKilled": st.oom_killed,
            "Dead": st.status == "dead",
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at,
            "FinishedAt": st.finished_at,
            **({"Health": st.health} if st.health else {}),
        },
        "Image": rec.image_id,
        "ResolvConfPath": str(base / "resolv.conf"),
        "HostnamePath": str(base / "hostname"),
        "HostsPath": str(base / "hosts"),
        "LogPath": str(paths.log(rec.id)),
        "Name": "/" + rec.name,
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {**HOST_CONFIG_DEFAULTS, **rec.host_config},
        "GraphDriver": {"Name": "overlay2", "Data": {
            "LowerDir": ":".join(lowers), "UpperDir": str(base / "upper"),
            "WorkDir": str(base / "work"), "MergedDir": str(base / "rootfs")}},
        "Mounts": inspect_mounts(rec),
        "Config": rec.config,
        "NetworkSettings": network_settings(rec, pairs or [], sandbox),
    }


# Resource fields Docker always reports in an inspected HostConfig (clients such as docker-py
# read them without a default); what the create request set overrides them.
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None,
    "Ulimits": [], "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "Binds": None, "ContainerIDFile": "", "PortBindings": {},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None,
    "CapDrop": None, "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0,
    "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Isolation": "", "ConsoleSize": [0, 0]}


def inspect_mounts(rec: ContainerRecord) -> list[dict[str, Any]]:
    from dockyard.volume.specs import MountSpec
    from dockyard.volume.specs import inspect_mounts as view
    return view(MountSpec.from_dict(d) for d in rec.extra.get("mounts") or [])


def network_settings(rec: ContainerRecord, pairs: list[tuple[Any, Any]],
                     sandbox: str = "") -> dict[str, Any]:
    """``NetworkSettings``: per network endpoint data, ports, and (for the default bridge)
    Docker's legacy top-level address fields."""
    from dockyard.api.netviews import endpoint_json, ports_json
    running = rec.state.status in ("running", "paused")
    configs = (rec.extra.get("networking") or {}).get("EndpointsConfig") or {}
    networks = {net.name: endpoint_json(
        net, ep, [a for a in (ep.aliases if ep else _aliases(configs, net)) if a != rec.name],
        [rec.name, rec.id[:12]] if ep else []) for net, ep in pairs}
    primary = next((ep for net, ep in pairs if net.name == "bridge"), None)
    live = [ep for _, ep in pairs if ep is not None]
    return {"Bridge": "", "SandboxID": rec.id if running and sandbox else "",
            "SandboxKey": sandbox if running else "",
            "Ports": ports_json(rec.config.get("ExposedPorts") or {}, live),
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": primary.endpoint_id if primary else "",
            "Gateway": primary.gateway if primary else "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": primary.ip if primary else "",
            "IPPrefixLen": primary.prefixlen if primary else 0, "IPv6Gateway": "",
            "MacAddress": primary.mac if primary else "", "Networks": networks}


def _aliases(configs: dict[str, Any], net: Any) -> list[str]:
    """The aliases asked for on a network the container is not attached to right now."""
    cfg = configs.get(net.name) or configs.get(net.id) or {}
    if not cfg and net.name == "bridge":
        cfg = configs.get("default") or {}
    return list(cfg.get("Aliases") or [])


def ports_summary(pairs: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """``docker ps``'s Ports: published mappings."""
    out = []
    for _, ep in pairs:
        if ep is None:
            continue
        for port in ep.ports:
            out.append({"IP": port.host_ip or "0.0.0.0", "PrivatePort": port.container_port,
                        "PublicPort": port.host_port, "Type": port.proto})
    return out


def repo_digests(image: Image) -> list[str]:
    return [reference.parse(r).familiar() for r in image.tags if "@" in r]


def repo_tags(image: Image) -> list[str]:
    out = []
    for ref in (t for t in image.tags if "@" not in t):
        try:
            out.append(reference.parse(ref).familiar())
        except Exception:  # noqa: BLE001
            out.append(ref)
    return out


def image_summary(image: Image, containers: int = -1) -> dict[str, Any]:
    return {
        "Id": image.id,
        "ParentId": image.parent,
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Created": int(image.created),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": image.run_config.get("Labels") or {},
        "Containers": containers,
    }


# The container config Docker still reports for clients older than API 1.45 (all empty
# since BuildKit); docker-compose 1.29 reads ``ContainerConfig.Volumes`` when it recreates.
EMPTY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None}


def image_inspect(image: Image, lowers: list[str], legacy: bool = False) -> dict[str, Any]:
    """``GET /images/{name}/json``; ``legacy`` (API < 1.45) adds the removed
    ``Container``/``ContainerConfig`` fields."""
    out = _image_inspect(image, lowers)
    if legacy:
        out["Container"] = ""
        out["ContainerConfig"] = dict(EMPTY_CONTAINER_CONFIG)
    return out


def _image_inspect(image: Image, lowers: list[str]) -> dict[str, Any]:
    cfg = image.config
    return {
        "Id": image.id,
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Parent": image.parent,
        "Comment": (cfg.get("history") or [{}])[-1].get("comment", "") if cfg.get("history")
        else "",
        "Created": cfg.get("created", ""),
        "DockerVersion": "",
        "Author": cfg.get("author", ""),
        "Config": image.run_config,
        "Architecture": cfg.get("architecture", "amd64"),
        "Os": cfg.get("os", "linux"),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "LowerDir": ":".join(lowers[1:]), "UpperDir": lowers[0] if lowers else "",
            "MergedDir": "", "WorkDir": ""}},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }
