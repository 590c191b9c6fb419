"""``GET /containers/{id}/stats`` and ``POST /containers/{id}/update``."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.engine import stats, update
from dockyard.metadata.containers import ContainerRecord

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def register(router: Router, engine: "Engine") -> None:
    c = engine.containers

    def container_stats(req: Request, id: str) -> None:
        rec = c.lookup(id)
        stream = req.flag("stream", True)
        one_shot = req.flag("one-shot")

        def current() -> ContainerRecord | None:
            return c.get(rec.id)

        readings = stats.readings(rec, lambda: engine.tasks.cgroup(rec), current,
                                  stream=stream, one_shot=one_shot)

        def chunks() -> Iterator[bytes]:
            yield b""
            for reading in readings:
                yield json.dumps(reading).encode() + b"\n"

        req.stream(chunks())

    def container_update(req: Request, id: str) -> None:
        rec = c.lookup(id)
        body = req.json({})
        with c.lock(rec.id):
            hc = update.merge(rec, body)
            if rec.state.status in ("running", "paused"):
                update.apply(rec, engine.tasks.cgroup(rec), hc, body)
            rec.host_config = hc
            c.table.save(rec)
        c.notify()
        engine.events.publish("container", "update", rec.id, image=rec.image_name,
                              name=rec.name)
        req.send_json({"Warnings": []})

    router.add("GET", "/containers/{id}/stats", container_stats)
    router.add("POST", "/containers/{id}/update", container_update)
