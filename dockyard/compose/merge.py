"""Merging compose files (``-f a -f b``) and ``extends`` with Compose's override rules.

Mappings merge recursively; ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced;
list-or-dict keys (``environment``, ``labels``, ``build.args``, ``depends_on``, ``networks``…)
merge as mappings; ``volumes`` merge by target, ``ports`` are appended and de-duplicated, and
other sequences are appended keeping the first of equal items.
"""
from __future__ import annotations

import copy
from typing import Any

REPLACED = {"command", "entrypoint", "test", "profiles"}
MAPPING_LIKE = {"environment", "labels", "args", "depends_on", "networks", "sysctls",
                "annotations", "extra_hosts", "driver_opts", "options", "ulimits"}


def list_to_mapping(key: str, value: Any) -> Any:
    """``["A=1", "B"]`` → ``{"A": "1", "B": None}``; ``depends_on``/``networks`` lists →
    ``{name: None}``; mappings are returned as they are."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for item in value:
        if key in ("depends_on", "networks"):
            out[str(item)] = None
        elif key == "extra_hosts":
            sep = "=" if "=" in item else ":"
            name, _, addr = str(item).partition(sep)
            out[name] = addr
        else:
            name, eq, val = str(item).partition("=")
            out[name] = val if eq else None
    return out


def _volume_target(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target", ""))
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _merge_key(key: str, base: Any, over: Any, parent: str) -> Any:
    if over is None and key not in ("depends_on", "networks"):
        return copy.deepcopy(base) if parent == "services.*" and base is not None else over
    if key in REPLACED:
        return copy.deepcopy(over)
    if key in MAPPING_LIKE and parent in ("services.*", "services.*.build", "networks.*",
                                          "volumes.*"):
        base, over = list_to_mapping(key, base), list_to_mapping(key, over)
    if key == "volumes" and parent == "services.*" and isinstance(base, list):
        merged: dict[str, Any] = {_volume_target(v): v for v in base}
        for v in over or []:
            merged[_volume_target(v)] = copy.deepcopy(v)
        return list(merged.values())
    if isinstance(base, dict) and isinstance(over, dict):
        return merge_mappings(base, over, f"{parent}.{key}" if parent else key)
    if isinstance(base, list) and isinstance(over, list):
        return _unique(copy.deepcopy(base) + copy.deepcopy(over))
    if key == "build" and isinstance(base, (dict, str)) and isinstance(over, (dict, str)):
        b = base if isinstance(base, dict) else {"context": base}
        o = over if isinstance(over, dict) else {"context": over}
        return merge_mappings(b, o, "services.*.build")
    return copy.deepcopy(over)


def merge_mappings(base: dict[str, Any], over: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``over`` on top of ``base`` (top-level resources, nested mappings of a service)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif path in ("networks", "volumes", "configs", "secrets") and \
                isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge_mappings(out[key], value, f"{path}.*")
        else:
            out[key] = _merge_key(key, out[key], value, path)
    return out


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge_key(key, out[key], value, "services.*") if key in out \
            else copy.deepcopy(value)
    return out


def merge_files(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge whole compose documents, later ones overriding earlier ones."""
    out: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key == "services" and key in out:
                services = dict(out[key] or {})
                for name, svc in (value or {}).items():
                    services[name] = merge_service(services[name] or {}, svc or {}) \
                        if name in services else copy.deepcopy(svc)
                out[key] = services
            elif key in out and isinstance(out[key], dict) and isinstance(value, dict):
                out[key] = merge_mappings(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
    return out
