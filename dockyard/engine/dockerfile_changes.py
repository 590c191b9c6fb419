"""``--change`` instructions of ``docker commit`` and ``docker import`` applied to a config.

Supports the instructions Docker allows there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR.
"""
from __future__ import annotations

import copy
import json
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

ALLOWED = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR"}


def _command(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", stripped]


def _pairs(text: str) -> list[tuple[str, str]]:
    words = shlex.split(text)
    if words and "=" not in words[0]:
        key, _, value = text.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid key/value pair: {word}")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for change in changes:
        for line in change.splitlines():
            if line.strip():
                _apply(out, line.strip())
    return out


def _apply(out: dict[str, Any], line: str) -> None:
    word, _, rest = line.partition(" ")
    name = word.upper()
    rest = rest.strip()
    if name not in ALLOWED:
        raise InvalidArgument(f"{word} is not a valid change command")
    if name in ("CMD", "ENTRYPOINT"):
        out["Cmd" if name == "CMD" else "Entrypoint"] = _command(rest)
    elif name == "ENV":
        env = {e.split("=", 1)[0]: e for e in out.get("Env") or []}
        for key, value in _pairs(rest):
            env[key] = f"{key}={value}"
        out["Env"] = list(env.values())
    elif name == "LABEL":
        labels = dict(out.get("Labels") or {})
        labels.update(dict(_pairs(rest)))
        out["Labels"] = labels
    elif name == "EXPOSE":
        ports = dict(out.get("ExposedPorts") or {})
        for port in rest.split():
            ports[port if "/" in port else f"{port}/tcp"] = {}
        out["ExposedPorts"] = ports
    elif name == "VOLUME":
        volumes = dict(out.get("Volumes") or {})
        for path in (_command(rest) if rest.startswith("[") else rest.split()):
            volumes[path] = {}
        out["Volumes"] = volumes
    elif name == "ONBUILD":
        out["OnBuild"] = [*(out.get("OnBuild") or []), rest]
    else:
        key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[name]
        out[key] = rest
