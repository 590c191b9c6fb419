"""Plan: compare the desired project with the containers the engine reports (pure).

Each service gets an ordered list of :class:`Action` for its replicas 1..N:
``create`` (missing), ``recreate`` (config hash differs, or — as Compose v2 decides — the
service's image now has another id than the ``com.docker.compose.image`` label of the
container), ``start`` (stopped), ``noop`` (running and current), and ``remove`` for replicas
above the scale.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.compose import labels as L
from dockyard.compose.consistency import check_unique_name
from dockyard.compose.model import Project, Service
from dockyard.compose.render import config_hash


@dataclass(frozen=True)
class Action:
    kind: str  # create | recreate | start | noop | remove
    service: str
    number: int
    name: str
    container: Mapping[str, Any] | None = None  # the existing /containers/json entry


@dataclass(frozen=True)
class ServicePlan:
    service: str
    config_hash: str
    actions: tuple[Action, ...] = field(default_factory=tuple)


def container_name(project: Project, service: Service, number: int) -> str:
    if service.container_name:
        return service.container_name
    return f"{project.name}-{service.name}-{number}"


def desired_scale(service: Service, overrides: Mapping[str, int]) -> int:
    if service.name in overrides:
        return overrides[service.name]
    if service.scale is not None:
        return service.scale
    if service.deploy is not None and service.deploy.replicas is not None:
        return service.deploy.replicas
    return 1


def _number(c: Mapping[str, Any]) -> int:
    try:
        return int((c.get("Labels") or {}).get(L.NUMBER, "0"))
    except ValueError:
        return 0


def _name(c: Mapping[str, Any]) -> str:
    names = c.get("Names") or [""]
    return str(names[0]).lstrip("/")


def plan_service(project: Project, service: Service, existing: Sequence[Mapping[str, Any]],
                 scale: int, force_recreate: bool = False,
                 no_recreate: bool = False, image_id: str | None = None) -> ServicePlan:
    """``image_id``: the id of the service's image as it is now (None: not known, only the
    config hash decides)."""
    want = config_hash(service)
    mine = sorted((c for c in existing
                   if (c.get("Labels") or {}).get(L.SERVICE) == service.name
                   and (c.get("Labels") or {}).get(L.ONEOFF, "False") != "True"),
                  key=_number)
    by_number: dict[int, Mapping[str, Any]] = {}
    extras: list[Mapping[str, Any]] = []
    for m in mine:
        n = _number(m)
        if n in by_number or n < 1:
            extras.append(m)
        else:
            by_number[n] = m
    actions: list[Action] = []
    for n in range(1, scale + 1):
        name = container_name(project, service, n)
        c = by_number.pop(n) if n in by_number else None
        if c is None:
            actions.append(Action("create", service.name, n, name))
            continue
        labels = c.get("Labels") or {}
        changed = labels.get(L.CONFIG_HASH) != want or (
            image_id is not None and labels.get(L.IMAGE) != image_id)
        if (force_recreate or changed) and not no_recreate:
            # under the canonical name (a container made by docker-compose 1.29 is p_web_1)
            actions.append(Action("recreate", service.name, n, name, c))
            continue
        name = _name(c)
        if c.get("State") != "running":
            actions.append(Action("start", service.name, n, name, c))
        else:
            actions.append(Action("noop", service.name, n, name, c))
    for c in list(by_number.values()) + extras:
        actions.append(Action("remove", service.name, _number(c), _name(c), c))
    return ServicePlan(service.name, want, tuple(actions))


def plan_project(project: Project, existing: Sequence[Mapping[str, Any]],
                 scale: Mapping[str, int] | None = None, services: Sequence[str] = (),
                 force_recreate: bool = False, no_recreate: bool = False,
                 image_ids: Mapping[str, str] | None = None) -> dict[str, ServicePlan]:
    """``image_ids``: service → the id of its image now (see :func:`plan_service`). Raises
    ``InvalidArgument`` (Compose's message) for a ``scale`` above 1 of a service with a
    ``container_name``."""
    scale = scale or {}
    wanted = set(services) if services else set(project.services)
    for name, n in scale.items():  # ``up --scale``: refused before anything is done
        if name in project.services:
            check_unique_name(project.services[name], n)
    return {name: plan_service(project, svc, existing, desired_scale(svc, scale),
                               force_recreate, no_recreate, (image_ids or {}).get(name))
            for name, svc in project.services.items() if name in wanted}


def orphans(project: Project, existing: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in existing
            if (c.get("Labels") or {}).get(L.SERVICE) not in project.services]
