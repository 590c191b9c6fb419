"""``docker version``, ``docker info`` and ``docker system df`` facts."""
from __future__ import annotations

import os
import platform
import socket
from typing import Any

from dockyard import __version__
from dockyard.api_version import API_VERSION, MIN_API_VERSION
from dockyard.host import cgroups
from dockyard.util.timefmt import now_rfc3339


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def version() -> dict[str, Any]:
    uname = platform.uname()
    details = {"ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "",
               "Experimental": "false", "GitCommit": "dockyard", "GoVersion":
               f"python{platform.python_version()}", "KernelVersion": uname.release,
               "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
    return {
        "Platform": {"Name": f"dockyard {__version__}"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "dockyard",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": uname.release,
        "BuildTime": "",
    }


def info(*, daemon_id: str, data_root: str, counts: dict[str, int], images: int,
         runtimes: dict[str, str], default_runtime: str) -> dict[str, Any]:
    mode = cgroups.detect()
    return {
        "ID": daemon_id,
        "Containers": counts.get("total", 0),
        "ContainersRunning": counts.get("running", 0),
        "ContainersPaused": counts.get("paused", 0),
        "ContainersStopped": counts.get("stopped", 0),
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                    "Authorization": None, "Log": ["json-file", "local", "none"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemoryTCP": True,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "IPv4Forwarding": True, "BridgeNfIptables": False,
        "BridgeNfIp6tables": False, "Debug": False, "NFd": len(os.listdir("/proc/self/fd")),
        "OomKillDisable": mode is not cgroups.Mode.V2, "NGoroutines": 0,
        "SystemTime": now_rfc3339(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if mode is cgroups.Mode.V2 else "1",
        "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": platform.machine(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                           "AllowNondistributableArtifactsHostnames": None,
                           "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
                           "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [],
                                                          "Secure": True, "Official": True}},
                           "Mirrors": None},
        "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "GenericResources": None, "DockerRootDir": data_root, "HttpProxy": "",
        "HttpsProxy": "", "NoProxy": "", "Name": socket.gethostname(), "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {name: {"path": path} for name, path in runtimes.items()},
        "DefaultRuntime": default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"]
        + (["name=cgroupns"] if mode is cgroups.Mode.V2 else []),
        "CDISpecDirs": [], "Warnings": None,
    }
