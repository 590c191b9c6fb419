"""Routes under /volumes: list, create, inspect, remove, prune."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def register(router: Router, engine: "Engine") -> None:
    volumes = engine.volumes

    def list_(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        found = volumes.store.list(filters, in_use_by=volumes.users)
        req.send_json({"Volumes": [v.inspect() for v in found], "Warnings": None})

    def create(req: Request) -> None:
        view = volumes.create(req.json({}) or {}).inspect()
        engine.events.publish("volume", "create", view["Name"], driver=view["Driver"])
        req.send_json(view, 201)

    def inspect(req: Request, name: str) -> None:
        req.send_json(volumes.inspect(name))

    def remove(req: Request, name: str) -> None:
        view = volumes.inspect(name)
        volumes.remove(name, force=req.flag("force"))
        engine.events.publish("volume", "destroy", view["Name"], driver=view["Driver"])
        req.send(204)

    def prune(req: Request) -> None:
        report = volumes.store.prune(parse_filters(req.arg("filters")), in_use_by=volumes.users)
        for name in report.deleted:
            engine.events.publish("volume", "destroy", name, driver="local")
        req.send_json({"VolumesDeleted": list(report.deleted) or None,
                       "SpaceReclaimed": report.reclaimed})

    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
