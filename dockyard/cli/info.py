"""``info``: docker's prettyPrintInfo layout over ``GET /info``."""
from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import TemplateError
from dockyard.cli.gotemplate import Template
from dockyard.cli.system import client_version
from dockyard.cli.units import bytes_size


def _go(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _line(lines: list[str], label: str, value: Any, non_empty: bool = False) -> None:
    text = _go(value)
    if non_empty and not text:
        return
    lines.append(f"{label} {text}")


def _counts(lines: list[str], info: dict[str, Any]) -> None:
    _line(lines, " Containers:", info.get("Containers", 0))
    for key in ("Running", "Paused", "Stopped"):
        _line(lines, f"  {key}:", info.get(f"Containers{key}", 0))
    _line(lines, " Images:", info.get("Images", 0))
    _line(lines, " Server Version:", info.get("ServerVersion"), True)
    _line(lines, " Storage Driver:", info.get("Driver"), True)
    lines.extend(f"  {k}: {v}" for k, v in info.get("DriverStatus") or [])
    lines.extend(f" {k}: {v}" for k, v in info.get("SystemStatus") or [])
    for label, key in ((" Logging Driver:", "LoggingDriver"),
                       (" Cgroup Driver:", "CgroupDriver"),
                       (" Cgroup Version:", "CgroupVersion")):
        _line(lines, label, info.get(key), True)


def _plugins(lines: list[str], info: dict[str, Any]) -> None:
    plugins = info.get("Plugins") or {}
    lines.append(" Plugins:")
    lines.append("  Volume: " + " ".join(plugins.get("Volume") or []))
    lines.append("  Network: " + " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        lines.append("  Authorization: " + " ".join(plugins["Authorization"]))
    lines.append("  Log: " + " ".join(plugins.get("Log") or []))
    _line(lines, " Swarm:", (info.get("Swarm") or {}).get("LocalNodeState", ""))
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        lines.append(" Runtimes: " + " ".join(sorted(runtimes)))
        _line(lines, " Default Runtime:", info.get("DefaultRuntime"))


def _linux(lines: list[str], info: dict[str, Any]) -> None:
    if info.get("OSType") != "linux":
        return
    _line(lines, " Init Binary:", info.get("InitBinary"))
    for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"),
                      ("init", "InitCommit")):
        lines.append(f" {name} version: {(info.get(key) or {}).get('ID', '')}")
    options = info.get("SecurityOptions") or []
    if options:
        lines.append(" Security Options:")
        for option in options:
            fields = dict(kv.partition("=")[::2] for kv in option.split(","))
            lines.append("  " + fields.pop("name", option))
            if "profile" in fields:
                lines.append("   Profile: " + fields["profile"])


def _host(lines: list[str], info: dict[str, Any]) -> None:
    for label, key in ((" Kernel Version:", "KernelVersion"),
                       (" Operating System:", "OperatingSystem"), (" OSType:", "OSType"),
                       (" Architecture:", "Architecture")):
        _line(lines, label, info.get(key), True)
    _line(lines, " CPUs:", info.get("NCPU", 0))
    lines.append(" Total Memory: " + bytes_size(info.get("MemTotal") or 0))
    _line(lines, " Name:", info.get("Name"), True)
    _line(lines, " ID:", info.get("ID"), True)
    _line(lines, " Docker Root Dir:", info.get("DockerRootDir"))
    _line(lines, " Debug Mode:", bool(info.get("Debug")))
    for label, key in ((" HTTP Proxy:", "HttpProxy"), (" HTTPS Proxy:", "HttpsProxy"),
                       (" No Proxy:", "NoProxy")):
        _line(lines, label, info.get(key), True)
    if info.get("Labels"):
        lines.append(" Labels:")
        lines.extend(f"  {label}" for label in info["Labels"])
    _line(lines, " Experimental:", bool(info.get("ExperimentalBuild")))


def _registries(lines: list[str], info: dict[str, Any]) -> None:
    registry = info.get("RegistryConfig") or {}
    indexes = registry.get("IndexConfigs") or {}
    cidrs = registry.get("InsecureRegistryCIDRs") or []
    if indexes or cidrs:
        lines.append(" Insecure Registries:")
        lines.extend(f"  {i.get('Name', name)}" for name, i in indexes.items()
                     if not i.get("Secure", True))
        lines.extend(f"  {cidr}" for cidr in cidrs)
    if registry.get("Mirrors"):
        lines.append(" Registry Mirrors:")
        lines.extend(f"  {m}" for m in registry["Mirrors"])
    _line(lines, " Live Restore Enabled:", bool(info.get("LiveRestoreEnabled")))


def server_lines(info: dict[str, Any]) -> list[str]:
    lines = ["Server:"]
    for part in (_counts, _plugins, _linux, _host, _registries):
        part(lines, info)
    return lines


def _build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help="Format output using a custom template")


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    client_info = {"Version": client_version(), "Context": "default", "Debug": False}
    if ns.format:
        info = ctx.client.get("/info") or {}
        fmt = "{{json .}}" if ns.format == "json" else ns.format
        try:
            ctx.out(Template(fmt).execute({**info, "ClientInfo": client_info}))
        except TemplateError as exc:
            raise StatusError(f"template: {exc}") from None
        return 0
    ctx.out(f"Client:\n Version:    {client_info['Version']}\n Context:    default\n"
            " Debug Mode: false\n")
    info = ctx.client.get("/info") or {}
    ctx.out("\n".join(server_lines(info)) + "\n")
    for warning in info.get("Warnings") or []:
        ctx.err(warning)
    return 0


INFO = Command("info", "[OPTIONS]", "Display system-wide information", _build, _run)
COMMANDS = [INFO]
