"""``docker compose config``: the normalised project as canonical YAML, the per-service
config hash (``com.docker.compose.config-hash``), and dependency levels."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import yaml

from dockyard.compose.model import Project, Service
from dockyard.compose.units import format_duration
from dockyard.errors import InvalidArgument

_DURATIONS = {"interval", "timeout", "start_period", "start_interval", "stop_grace_period",
              "delay", "window"}
_OMIT_IF_FALSE = {"privileged", "read_only", "tty", "stdin_open", "nocopy", "internal",
                  "attachable", "external", "disable", "restart"}


def _plain(value: Any, key: str = "") -> Any:
    """Dataclasses → dicts without empty/default noise; durations as Go strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            if not f.compare:
                continue
            v = getattr(value, f.name)
            if f.name in ("name",) and isinstance(value, Service):
                continue
            if v is None or v == () or v == {} or (v is False and f.name in _OMIT_IF_FALSE):
                continue
            if f.name in ("priority",) and v == 0:
                continue
            if f.name in ("extensions", "passthrough"):
                out.update(v)
                continue
            out[f.name] = _plain(v, f.name)
        return out
    if key in _DURATIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_duration(float(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def service_dict(service: Service) -> dict[str, Any]:
    d: dict[str, Any] = _plain(service)
    for name, dep in service.depends_on.items():
        d["depends_on"][name] = {"condition": dep.condition, "restart": dep.restart,
                                 "required": dep.required}
    for name in service.networks:
        d.setdefault("networks", {})[name] = _plain(service.networks[name]) or None
    return d


def project_dict(project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {"name": project.name,
                           "services": {n: service_dict(s) for n, s in project.services.items()}}
    for section in ("networks", "volumes"):
        items = getattr(project, section)
        if items:
            out[section] = {k: _plain(v) for k, v in items.items()}
    if project.configs:
        out["configs"] = project.configs
    if project.secrets:
        out["secrets"] = project.secrets
    return out


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def render(project: Project) -> str:
    """Canonical YAML: keys sorted, sequences in file order, short syntaxes expanded."""
    text: str = yaml.dump(project_dict(project), Dumper=_Dumper, sort_keys=True,
                     default_flow_style=False, allow_unicode=True, width=1000)
    return text


def config_hash(service: Service) -> str:
    """Stable sha256 of the normalised service; scale/replicas don't count, as in Compose
    (changing them scales, it doesn't recreate)."""
    d = service_dict(dataclasses.replace(
        service, scale=None,
        deploy=dataclasses.replace(service.deploy, replicas=None) if service.deploy else None))
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def dependency_order(project: Project) -> list[list[str]]:
    """Services in start order as levels (each level depends only on earlier ones);
    a cycle raises ``InvalidArgument`` naming it."""
    deps = {n: {d for d in s.depends_on if d in project.services}
            for n, s in project.services.items()}
    _check_cycles(deps)
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(deps):
        level = sorted(n for n, ds in deps.items() if n not in done and ds <= done)
        levels.append(level)
        done.update(level)
    return levels


def _check_cycles(deps: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(deps[n]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise InvalidArgument("dependency cycle detected: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(deps):
        if n not in state:
            visit(n)

