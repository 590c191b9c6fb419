"""Routes for ``docker save`` / ``docker load``: ``GET /images/get``, ``GET /images/{name}/get``
and ``POST /images/load``.

Save resolves every name (404 before any byte) and streams the tar. Load reads and checks the
whole archive first (400 if it is unreadable), then answers 200 with a JSON-lines stream:
``{"stream":"Loaded image: bb:latest\\n"}``, or an ``errorDetail`` line if applying fails.
``quiet`` is accepted and ignored: there are no per-layer progress bars to hide.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Generator
from typing import TYPE_CHECKING

from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.distribution.archive import LoadPlan, plan_save, prepare_load
from dockyard.errors import DockyardError

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

log = logging.getLogger("dockyard.api")


def _line(obj: dict[str, object]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _error(message: str) -> bytes:
    return _line({"errorDetail": {"message": message}, "error": message})


def register(router: Router, engine: Engine) -> None:
    store = engine.images.store

    def _save(req: Request, names: list[str]) -> None:
        plan = plan_save(store, names)
        chunks = plan.chunks()
        try:
            req.stream(chunks, "application/x-tar")
        finally:
            chunks.close()
            plan.close()
        for image_id in plan.image_ids:
            engine.events.publish("image", "save", image_id, name=image_id)

    def save_many(req: Request) -> None:
        _save(req, req.args("names"))

    def save_one(req: Request, name: str) -> None:
        _save(req, [name])

    def _apply(plan: LoadPlan) -> Generator[bytes, None, None]:
        messages: list[str] = []
        try:
            with plan:
                ids = plan.apply(store, messages.append)
        except DockyardError as exc:
            yield _error(exc.message)
            return
        except Exception as exc:  # the 200 is out: report, never drop the stream
            log.exception("loading images")
            yield _error(f"internal error: {type(exc).__name__}: {exc}")
            return
        for image_id in ids:
            engine.events.publish("image", "load", image_id, name=image_id)
        for message in messages:
            yield _line({"stream": message + "\n"})

    def load(req: Request) -> None:
        plan = prepare_load(req.body, engine.paths.tmp)
        chunks = _apply(plan)
        try:
            req.stream(chunks)
        finally:
            chunks.close()
            plan.close()

    router.add("GET", "/images/get", save_many)
    router.add("GET", "/images/{name}/get", save_one)
    router.add("POST", "/images/load", load)
