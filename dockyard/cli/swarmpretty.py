"""``node inspect --pretty`` and ``service inspect --pretty``: docker's human-friendly texts.

Not run through a tabwriter (docker writes these templates as they are), so the tabs stay.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dockyard.cli.listopts import go_time_text
from dockyard.cli.swarmfmt import pretty
from dockyard.cli.units import bytes_size, human_duration, parse_rfc3339
from dockyard.util.timefmt import go_duration

Obj = Mapping[str, Any]


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _go_list(items: list[Any]) -> str:
    return "[" + " ".join(str(i) for i in items) + "]"


def _go_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _labels(lines: list[str], title: str, labels: Obj | None, prefix: str) -> None:
    if labels:
        lines.append(f"{title}:")
        lines += [f"{prefix}{k}" + (f"={v}" if v else "") for k, v in sorted(labels.items())]


def node_pretty(node: Obj) -> str:
    """nodeInspectPrettyTemplate for one node of ``GET /nodes/{id}``."""
    spec, desc, status = node.get("Spec") or {}, node.get("Description") or {}, \
        node.get("Status") or {}
    lines = [f"ID:\t\t\t{node.get('ID', '')}"]
    if spec.get("Name"):
        lines.append(f"Name:\t\t\t{spec['Name']}")
    _labels(lines, "Labels", spec.get("Labels"), " - ")
    lines += [f"{'Hostname:':<23}\t{desc.get('Hostname', '')}",
              f"{'Joined at:':<23}\t{pretty(go_time_text(str(node.get('CreatedAt', ''))))}",
              "Status:", f" State:\t\t\t{pretty(status.get('State', ''))}"]
    if status.get("Message"):
        lines.append(f"{' Message:':<23}\t{pretty(status['Message'])}")
    lines.append(f"{' Availability:':<23}\t{pretty(spec.get('Availability', ''))}")
    if status.get("Addr"):
        lines.append(f" Address:\t\t{pretty(status['Addr'])}")
    manager = node.get("ManagerStatus")
    if manager:
        lines += ["Manager Status:", f" Address:\t\t{manager.get('Addr', '')}",
                  f" Raft Status:\t\t{pretty(manager.get('Reachability', ''))}",
                  f" Leader:\t\t{'Yes' if manager.get('Leader') else 'No'}"]
    resources = desc.get("Resources") or {}
    lines += ["Platform:", f" Operating System:\t{_get(desc, 'Platform', 'OS') or ''}",
              f" Architecture:\t\t{_get(desc, 'Platform', 'Architecture') or ''}",
              "Resources:", f" CPUs:\t\t\t{int(resources.get('NanoCPUs') or 0) // 10**9}",
              f" Memory:\t\t{bytes_size(float(resources.get('MemoryBytes') or 0))}"]
    plugins: dict[str, list[str]] = {}
    for plugin in _get(desc, "Engine", "Plugins") or []:
        plugins.setdefault(str(plugin.get("Type", "")), []).append(str(plugin.get("Name", "")))
    if plugins:
        lines.append("Plugins:")
        lines += [f" {kind}:\t\t{', '.join(names)}" for kind, names in sorted(plugins.items())]
    lines.append(f"Engine Version:\t\t{_get(desc, 'Engine', 'EngineVersion') or ''}")
    _labels(lines, "Engine Labels", _get(desc, "Engine", "Labels"), " - ")
    tls = desc.get("TLSInfo") or {}
    if any(tls.values()):
        lines += ["TLS Info:", " TrustRoot:", str(tls.get("TrustRoot", "")),
                  f" Issuer Subject:\t{tls.get('CertIssuerSubject', '')}",
                  f" Issuer Public Key:\t{tls.get('CertIssuerPublicKey', '')}"]
    return "\n".join(lines) + "\n"


def _ago(stamp: Any, now: float) -> str:
    try:
        return human_duration(now - parse_rfc3339(str(stamp))) + " ago"
    except ValueError:
        return ""


def _config(lines: list[str], title: str, config: Obj | None, order: str) -> None:
    if config is None:
        return
    lines += [f"{title}:", f" Parallelism:\t{config.get('Parallelism', 0)}"]
    if int(config.get("Delay") or 0) > 0:
        lines.append(f" Delay:\t\t{go_duration(int(config['Delay']))}")
    lines.append(f" On failure:\t{config.get('FailureAction', '')}")
    if int(config.get("Monitor") or 0) > 0:
        lines.append(f" Monitoring Period: {go_duration(int(config['Monitor']))}")
    lines += [f" Max failure ratio: {_go_float(config.get('MaxFailureRatio') or 0)}",
              f" {order} order:{' ' * (12 - len(order))}{config.get('Order', '')}"]


def _resources(lines: list[str], resources: Obj) -> None:
    lines.append("Resources:")
    for title, part in (("Reservations", "Reservations"), ("Limits", "Limits")):
        res = resources.get(part) or {}
        cpus, memory = int(res.get("NanoCPUs") or 0), int(res.get("MemoryBytes") or 0)
        if not (cpus or memory or (part == "Limits" and int(res.get("Pids") or 0))):
            continue
        lines.append(f" {title}:")
        if cpus:
            lines.append(f"  CPU:\t\t{_go_float(cpus / 1e9)}")
        if memory:
            lines.append(f"  Memory:\t{bytes_size(float(memory))}")
    pids = int(_get(resources, "Limits", "Pids") or 0)
    if pids:
        lines.append(f"  PIDs:\t\t{pids}")


def service_pretty(service: Obj, networks: list[str], now: float | None = None) -> str:
    """serviceInspectPrettyTemplate for one service of ``GET /services/{id}``."""
    now = time.time() if now is None else now
    spec = service.get("Spec") or {}
    task, mode = spec.get("TaskTemplate") or {}, spec.get("Mode") or {}
    cspec = task.get("ContainerSpec") or {}
    lines = ["", f"ID:\t\t{service.get('ID', '')}", f"Name:\t\t{spec.get('Name', '')}"]
    _labels(lines, "Labels", spec.get("Labels"), " ")
    if mode.get("Global") is not None:
        lines.append("Service Mode:\tGlobal")
    elif mode.get("Replicated") is not None:
        lines.append("Service Mode:\tReplicated")
        if mode["Replicated"].get("Replicas") is not None:
            lines.append(f" Replicas:\t{mode['Replicated']['Replicas']}")
    else:
        lines.append("Service Mode:")
    update = service.get("UpdateStatus") or {}
    if update.get("State"):
        lines += ["UpdateStatus:", f" State:\t\t{update['State']}"]
        if update.get("StartedAt"):
            lines.append(f" Started:\t{_ago(update['StartedAt'], now)}")
        if update["State"] == "completed" and update.get("CompletedAt"):
            lines.append(f" Completed:\t{_ago(update['CompletedAt'], now)}")
        lines.append(f" Message:\t{update.get('Message', '')}")
    placement = task.get("Placement") or {}
    lines.append("Placement:")
    if placement.get("Constraints"):
        lines.append(f" Constraints:\t{_go_list(placement['Constraints'])}")
    prefs = [f"Spread={p['Spread'].get('SpreadDescriptor', '')}"
             for p in placement.get("Preferences") or [] if p.get("Spread")]
    if prefs:
        lines.append(f" Preferences:   {_go_list(prefs)}")
    if placement.get("MaxReplicas"):
        lines.append(f" Max Replicas Per Node:   {placement['MaxReplicas']}")
    _config(lines, "UpdateConfig", spec.get("UpdateConfig"), "Update")
    _config(lines, "RollbackConfig", spec.get("RollbackConfig"), "Rollback")
    lines += ["ContainerSpec:", f" Image:\t\t{cspec.get('Image', '')}"]
    for title, key in (("Args", "Args"), ("Env", "Env")):
        if cspec.get(key):
            lines.append(f" {title}:\t\t" + "".join(f"{a} " for a in cspec[key]))
    if cspec.get("Dir"):
        lines.append(f" Dir:\t\t{cspec['Dir']}")
    if cspec.get("Init") is not None:
        lines.append(f" Init:\t\t{'true' if cspec['Init'] else 'false'}")
    if cspec.get("User"):
        lines.append(f" User: {cspec['User']}")
    if cspec.get("Mounts"):
        lines.append("Mounts:")
    for m in cspec.get("Mounts") or []:
        lines += [f" Target:\t{m.get('Target', '')}", f"  Source:\t{m.get('Source', '')}",
                  f"  ReadOnly:\t{'true' if m.get('ReadOnly') else 'false'}",
                  f"  Type:\t\t{m.get('Type', '')}"]
    if task.get("Resources") is not None:
        _resources(lines, task["Resources"])
    if networks:
        lines.append("Networks:" + "".join(f" {n}" for n in networks) + " ")
    lines.append(f"Endpoint Mode:\t{_get(spec, 'EndpointSpec', 'Mode') or ''}")
    ports = _get(service, "Endpoint", "Ports") or []
    if ports:
        lines.append("Ports:")
        for p in ports:
            lines += [f" PublishedPort = {p.get('PublishedPort', 0)}",
                      f"  Protocol = {p.get('Protocol', '')}",
                      f"  TargetPort = {p.get('TargetPort', 0)}",
                      f"  PublishMode = {p.get('PublishMode', '')}"]
        lines[-1] += " "
    return "\n".join(lines) + "\n\n"
