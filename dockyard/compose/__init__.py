"""The compose config pipeline (pure; no engine calls): load → interpolate → validate →
include/extends → merge → profiles → normalise → :class:`Project`.

    project = load_project(ProjectOptions(files=("compose.yaml",), os_env=os.environ, cwd="."))
    print(render(project))
    for level in dependency_order(project): ...
"""
from __future__ import annotations

from dockyard.compose.interpolate import (
    InterpolationError,
    interpolate,
    interpolate_string,
)
from dockyard.compose.loader import (
    ProjectOptions,
    load_project,
    load_text,
    normalize_project_name,
    parse_yaml,
)
from dockyard.compose.model import (
    BuildConfig,
    Dependency,
    Deploy,
    HealthCheck,
    Network,
    PortConfig,
    Project,
    Resources,
    RestartPolicy,
    Service,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
    Volume,
)
from dockyard.compose.normalize import parse_ports, parse_volume
from dockyard.compose.render import config_hash, dependency_order, project_dict, render
from dockyard.compose.validate import SchemaError, validate

__all__ = [
    "BuildConfig", "Dependency", "Deploy", "HealthCheck", "InterpolationError", "Network",
    "PortConfig", "Project", "ProjectOptions", "Resources", "RestartPolicy", "SchemaError",
    "Service", "ServiceNetwork", "ServiceVolume", "Ulimit", "Volume", "config_hash",
    "dependency_order", "interpolate", "interpolate_string", "load_project", "load_text",
    "normalize_project_name", "parse_ports", "parse_volume", "parse_yaml", "project_dict",
    "render", "validate",
]
