"""The rows of ``node ls``, ``service ls`` and ``service ps``, as docker's formatters show them."""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from dockyard.cli.format import ellipsis, truncate_id
from dockyard.cli.refs import familiar_name, split_reference
from dockyard.cli.units import human_duration, parse_rfc3339

QUIET = "{{.ID}}"
NODE_FORMAT = ("table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t"
               "{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}")
NODE_HEADERS = {"ID": "ID", "Self": "", "Hostname": "HOSTNAME", "Status": "STATUS",
                "Availability": "AVAILABILITY", "ManagerStatus": "MANAGER STATUS",
                "EngineVersion": "ENGINE VERSION", "TLSStatus": "TLS STATUS"}
SERVICE_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
SERVICE_HEADERS = {"ID": "ID", "Name": "NAME", "Mode": "MODE", "Replicas": "REPLICAS",
                   "Image": "IMAGE", "Ports": "PORTS"}
TASK_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t"
               "{{.CurrentState}}\t{{.Error}}\t{{.Ports}}")
TASK_HEADERS = {"ID": "ID", "Name": "NAME", "Image": "IMAGE", "Node": "NODE",
                "DesiredState": "DESIRED STATE", "CurrentState": "CURRENT STATE",
                "Error": "ERROR", "Ports": "PORTS"}
MAX_ERR_LENGTH = 30


def choose(fmt: str | None, quiet: bool, default: str) -> str:
    """docker's NewFormat: an explicit template wins; ``table``/none is the default or IDs."""
    text = (fmt or "").strip()
    if text in ("", "table"):
        return QUIET if quiet else default
    return text


def pretty(value: Any) -> str:
    """command.PrettyPrint: first letter upper, the rest lower (``ready`` → ``Ready``)."""
    text = "None" if value is None else str(value)
    return text.upper() if len(text) == 1 else text[:1].upper() + text[1:].lower()


_CHUNK = re.compile(rb"[0-9]+|[^0-9]")


def natural_key(text: str) -> list[tuple[int, int, bytes, int]]:
    """sortorder.NaturalLess as a key: digit runs by value (digits sort before other bytes)."""
    key = []
    for chunk in _CHUNK.findall(text.encode()):
        if chunk[:1].isdigit():
            digits = chunk.lstrip(b"0")
            key.append((0, len(digits), digits, len(chunk) - len(digits)))
        else:
            key.append((1, chunk[0], b"", 0))
    return key


def display_image(image: str) -> str:
    """A tagged reference without its digest, in familiar form; anything else unchanged."""
    name, tag, _ = split_reference(image)
    if not tag or not re.match(r"^[a-z0-9][a-z0-9._/:-]*$", name):
        return image
    return f"{familiar_name(name)}:{tag}"


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


class NodeContext:
    """One node of ``GET /nodes`` (``info``: ``GET /info``'s Swarm section)."""

    def __init__(self, node: Mapping[str, Any], info: Mapping[str, Any]) -> None:
        self.n = node
        self.info = info

    @property
    def ID(self) -> str:
        return str(self.n.get("ID", ""))

    @property
    def Self(self) -> bool:
        return bool(self.ID) and self.ID == self.info.get("NodeID")

    @property
    def Hostname(self) -> str:
        return str(_get(self.n, "Description", "Hostname") or "")

    @property
    def Status(self) -> str:
        return pretty(_get(self.n, "Status", "State") or "")

    @property
    def Availability(self) -> str:
        return pretty(_get(self.n, "Spec", "Availability") or "")

    @property
    def ManagerStatus(self) -> str:
        status = self.n.get("ManagerStatus")
        if not status:
            return ""
        return pretty("Leader" if status.get("Leader") else status.get("Reachability") or "")

    @property
    def TLSStatus(self) -> str:
        cluster = _get(self.info, "Cluster", "TLSInfo")
        own = _get(self.n, "Description", "TLSInfo")
        if not cluster or not own:
            return "Unknown"
        return "Ready" if cluster == own else "Needs Rotation"

    @property
    def EngineVersion(self) -> str:
        return str(_get(self.n, "Description", "Engine", "EngineVersion") or "")

    def to_json(self) -> dict[str, Any]:
        keys = ("Availability", "EngineVersion", "Hostname", "ID", "ManagerStatus", "Self",
                "Status", "TLSStatus")
        return {k: getattr(self, k) for k in keys}


def _wrap(value: int) -> int:
    return value % (1 << 32)  # Go's uint32 arithmetic in the port-range grouping


def service_ports(ports: list[Mapping[str, Any]] | None) -> str:
    """``*:8080-8081->80-81/tcp``: ingress ports grouped into consecutive ranges."""
    if ports is None:
        return ""
    ordered = sorted(ports, key=lambda p: (p.get("Protocol", ""), p.get("PublishedPort", 0)))
    out: list[str] = []
    cur: list[Any] = [0, 0, 0, 0, ""]  # published start/end, target start/end, protocol

    def flush() -> None:
        if cur[0] > 0:
            pub = f"{cur[0]}-{cur[1]}" if cur[1] > cur[0] else str(cur[0])
            tgt = f"{cur[2]}-{cur[3]}" if cur[3] > cur[2] else str(cur[2])
            out.append(f"*:{pub}->{tgt}/{cur[4]}")
    for p in ordered:
        if p.get("PublishMode") != "ingress":
            continue
        pub, tgt, proto = int(p.get("PublishedPort", 0)), int(p.get("TargetPort", 0)), \
            str(p.get("Protocol", ""))
        is_range, overlaps = cur[3] != cur[2], tgt <= cur[3]
        if proto != cur[4] or _wrap(pub - cur[1]) > 1 or _wrap(tgt - cur[3]) > 1 or \
                (is_range and overlaps):
            flush()
            cur[:] = [pub, pub, tgt, tgt, proto]
            continue
        cur[1], cur[3] = pub, tgt
    flush()
    return ", ".join(out)


class ServiceContext:
    """One service of ``GET /services?status=true``."""

    def __init__(self, service: Mapping[str, Any]) -> None:
        self.s = service
        self.spec: Mapping[str, Any] = service.get("Spec") or {}

    @property
    def ID(self) -> str:
        return truncate_id(str(self.s.get("ID", "")))

    @property
    def Name(self) -> str:
        return str(self.spec.get("Name", ""))

    @property
    def Mode(self) -> str:
        mode = self.spec.get("Mode") or {}
        for key, text in (("Global", "global"), ("Replicated", "replicated"),
                          ("ReplicatedJob", "replicated job"), ("GlobalJob", "global job")):
            if mode.get(key) is not None:
                return text
        return ""

    @property
    def Replicas(self) -> str:
        status = self.s.get("ServiceStatus") or {}
        running, desired = int(status.get("RunningTasks", 0)), int(status.get("DesiredTasks", 0))
        mode = self.spec.get("Mode") or {}
        done = int(status.get("CompletedTasks", 0))
        if mode.get("ReplicatedJob") is not None:
            total = int(mode["ReplicatedJob"].get("TotalCompletions") or 0)
            return f"{running}/{desired} ({done}/{total} completed)"
        if mode.get("GlobalJob") is not None:
            return f"{running}/{desired} ({done}/{desired + done} completed)"
        most = int(_get(self.spec, "TaskTemplate", "Placement", "MaxReplicas") or 0)
        if most > 0:
            return f"{running}/{desired} (max {most} per node)"
        return f"{running}/{desired}"

    @property
    def Image(self) -> str:
        return display_image(str(_get(self.spec, "TaskTemplate", "ContainerSpec", "Image") or ""))

    @property
    def Ports(self) -> str:
        return service_ports(_get(self.s, "Endpoint", "Ports"))

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("ID", "Image", "Mode", "Name", "Ports", "Replicas")}


class TaskContext:
    """One task of ``GET /tasks``, with its display name and node already resolved."""

    def __init__(self, task: Mapping[str, Any], name: str, node: str, trunc: bool = True,
                 now: float | None = None) -> None:
        self.t = task
        self.name = name
        self.node = node
        self.trunc = trunc
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        ident = str(self.t.get("ID", ""))
        return truncate_id(ident) if self.trunc else ident

    @property
    def Name(self) -> str:
        return self.name

    @property
    def Image(self) -> str:
        image = str(_get(self.t, "Spec", "ContainerSpec", "Image") or "")
        return display_image(image) if self.trunc else image

    @property
    def Node(self) -> str:
        return self.node

    @property
    def DesiredState(self) -> str:
        return pretty(self.t.get("DesiredState", ""))

    @property
    def CurrentState(self) -> str:
        status = self.t.get("Status") or {}
        try:
            since = self.now - parse_rfc3339(str(status.get("Timestamp") or ""))
        except ValueError:
            since = 0.0
        return f"{pretty(status.get('State', ''))} {human_duration(since).lower()} ago"

    @property
    def Error(self) -> str:
        err = str(_get(self.t, "Status", "Err") or "")
        if self.trunc:
            err = ellipsis(err, MAX_ERR_LENGTH)
        return f'"{err}"' if err else ""

    @property
    def Ports(self) -> str:
        ports = _get(self.t, "Status", "PortStatus", "Ports") or []
        return ",".join(f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/"
                        f"{p.get('Protocol', '')}" for p in ports)

    def to_json(self) -> dict[str, str]:
        keys = ("CurrentState", "DesiredState", "Error", "ID", "Image", "Name", "Node", "Ports")
        return {k: getattr(self, k) for k in keys}
