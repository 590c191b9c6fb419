"""``version`` and ``info``."""
from __future__ import annotations

import argparse
import platform
from typing import Any

from dockyard import __version__
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import TemplateError, tabwrite
from dockyard.cli.gotemplate import Template
from dockyard.client.api import MAX_API_VERSION
from dockyard.client.errors import ClientError

VERSION_TEMPLATE = """{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Python version:\t{{.PythonVersion}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- range $key := detailsOrder $component}}
  {{$key}}:\t{{index $component.Details $key}}
  {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""

def _details_order(component: dict[str, Any]) -> list[str]:
    details = component.get("Details") or {}
    return sorted(details)


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def client_version() -> str:
    return __version__


def _version_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help="Format output using a custom template")


def _version(ctx: Context, ns: argparse.Namespace) -> int:
    data: dict[str, Any] = {"Client": {
        "Platform": {"Name": ""}, "Version": client_version(),
        "APIVersion": MAX_API_VERSION, "DefaultAPIVersion": MAX_API_VERSION,
        "PythonVersion": platform.python_version(), "Os": "linux", "Arch": _arch(),
        "Context": "default"}, "ServerOK": False, "Server": None}
    error = None
    try:
        data["Client"]["APIVersion"] = ctx.client.version
        data["Server"] = ctx.client.get("/version")
        data["ServerOK"] = True
    except ClientError as exc:
        error = exc
    fmt = ns.format or VERSION_TEMPLATE
    if fmt == "json":
        fmt = "{{json .}}"
    try:
        text = Template(fmt, {"detailsOrder": _details_order}).execute(data)
    except TemplateError as exc:
        raise StatusError(f"template: {exc}") from None
    ctx.out(tabwrite(text, minwidth=20, padding=1) if not ns.format else text)
    if error is not None:
        raise error
    return 0


VERSION = Command("version", "[OPTIONS]", "Show the dockyard version information",
                  _version_build, _version)
COMMANDS = [VERSION]
