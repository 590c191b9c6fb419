"""The ``filters`` query parameter (JSON map of lists, or the legacy map of maps) and matching."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.metadata.containers import ContainerRecord

Filters = dict[str, list[str]]

CONTAINER_KEYS = {"id", "name", "status", "label", "ancestor", "exited", "before", "since",
                  "health", "network", "volume", "is-task", "publish", "expose"}


def parse_filters(text: str) -> Filters:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"invalid filter: {text}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"invalid filter: {text}")
    out: Filters = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [str(value)]
    return out


def label_match(labels: Mapping[str, str] | None, wanted: Sequence[str],
                empty_means_any: bool = False) -> bool:
    """Every ``key`` / ``key=value`` of ``wanted`` is among ``labels``. Swarm filters read
    ``key=`` as ``key`` (``empty_means_any``); container filters as "empty value"."""
    have = labels or {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in have or ((value or (sep and not empty_means_any)) and have[key] != value):
            return False
    return True


def validate_container_filters(filters: Filters) -> Filters:
    for key in filters:
        if key not in CONTAINER_KEYS:
            raise InvalidArgument(f"invalid filter '{key}'")
    for value in filters.get("status", []):
        if value not in ("created", "restarting", "running", "removing", "paused", "exited",
                         "dead"):
            raise InvalidArgument(f"invalid filter 'status={value}'")
    return filters


def container_matches(rec: ContainerRecord, filters: Filters, show_all: bool,
                      pairs: list[tuple[Any, Any]] | None = None,
                      find: Callable[[str], ContainerRecord | None] | None = None) -> bool:
    """``pairs``: (network, endpoint or None) of the container; ``find`` resolves the
    container named by ``before``/``since``."""
    if not _base_matches(rec, filters, show_all):
        return False
    if not _more_matches(rec, filters, pairs or []):
        return False
    return _order_matches(rec, filters, find)


def _base_matches(rec: ContainerRecord, filters: Filters, show_all: bool) -> bool:
    status = rec.state.status
    if "status" in filters:
        if status not in filters["status"]:
            return False
    elif not show_all and not rec.state.running:
        return False
    if "id" in filters and not any(rec.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v.lstrip("/") in rec.name for v in filters["name"]):
        return False
    if "label" in filters and not label_match(rec.config.get("Labels") or {}, filters["label"]):
        return False
    if "exited" in filters and (status != "exited" or
                                str(rec.state.exit_code) not in filters["exited"]):
        return False
    if "ancestor" in filters and not any(v in (rec.image_name, rec.image_id)
                                         or rec.image_id.startswith("sha256:" + v)
                                         for v in filters["ancestor"]):
        return False
    return True


def _more_matches(rec: ContainerRecord, filters: Filters, pairs: list[tuple[Any, Any]]) -> bool:
    if "network" in filters and not any(
            v in (net.name, net.id) or (len(v) >= 12 and net.id.startswith(v))
            for net, _ in pairs for v in filters["network"]):
        return False
    if "volume" in filters:
        mounts = rec.extra.get("mounts") or []
        names = {m.get("volume_name") or m.get("source") for m in mounts} | {
            m.get("destination") for m in mounts}
        if not any(v in names for v in filters["volume"]):
            return False
    if "publish" in filters and not _ports_match(filters["publish"], _published(rec, pairs)):
        return False
    if "expose" in filters and not _ports_match(filters["expose"], _exposed(rec)):
        return False
    if "health" in filters:
        health = (rec.state.health or {}).get("Status") or "none"
        if health not in filters["health"]:
            return False
    if "is-task" in filters and any(v.lower() in ("true", "1") for v in filters["is-task"]):
        return False  # no swarm tasks here
    return True


def _order_matches(rec: ContainerRecord, filters: Filters,
                   find: Callable[[str], ContainerRecord | None] | None) -> bool:
    for key in ("before", "since"):
        for ref in filters.get(key, []):
            other = find(ref) if find is not None else None
            if other is None:
                raise InvalidArgument(f"No such container: {ref}")
            if key == "before" and not rec.created < other.created:
                return False
            if key == "since" and not rec.created > other.created:
                return False
    return True


def _published(rec: ContainerRecord, pairs: list[tuple[Any, Any]]) -> set[tuple[int, str]]:
    live = {(p.host_port, p.proto) for _, ep in pairs if ep is not None for p in ep.ports}
    if live or rec.state.running:
        return live
    out = set()
    for key, bindings in (rec.host_config.get("PortBindings") or {}).items():
        proto = key.partition("/")[2] or "tcp"
        for b in bindings or []:
            if str((b or {}).get("HostPort") or "").isdigit():
                out.add((int(b["HostPort"]), proto))
    return out


def _exposed(rec: ContainerRecord) -> set[tuple[int, str]]:
    keys = set(rec.config.get("ExposedPorts") or {}) | set(
        rec.host_config.get("PortBindings") or {})
    out = set()
    for key in keys:
        port, _, proto = key.partition("/")
        if port.isdigit():
            out.add((int(port), proto or "tcp"))
    return out


def _ports_match(wanted: list[str], have: set[tuple[int, str]]) -> bool:
    """``8080``, ``8080/udp`` or ``8000-8080/tcp`` against (port, proto) pairs."""
    for item in wanted:
        spec, _, proto = item.partition("/")
        low, _, high = spec.partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            raise InvalidArgument(f"invalid port filter: {item}") from None
        if any(lo <= port <= hi and p == (proto or "tcp") for port, p in have):
            return True
    return False
