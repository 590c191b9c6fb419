"""Routes under /containers: create, list, inspect, lifecycle, wait, attach, logs, top."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dockyard.api import prunefilters, views
from dockyard.api.filters import (container_matches, parse_filters,
                                  validate_container_filters)
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.engine import logattrs
from dockyard.engine import logs as logreader
from dockyard.engine.attach import Session, frame
from dockyard.errors import Conflict, InvalidArgument
from dockyard.metadata.containers import ContainerRecord
from dockyard.util.timefmt import parse_rfc3339
from dockyard.volume.fsutil import tree_size

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def register(router: Router, engine: "Engine") -> None:
    c = engine.containers
    life = engine.lifecycle

    def create(req: Request) -> None:
        body = req.json({})
        rec = c.create(body, req.arg("name") or None)
        req.send_json({"Id": rec.id, "Warnings": []}, 201)

    def list_(req: Request) -> None:
        filters = validate_container_filters(parse_filters(req.arg("filters")))
        show_all = req.flag("all")
        limit = req.int_arg("limit", -1)
        out = []
        for rec in c.all():
            if not show_all and not rec.state.running and not filters:
                continue
            pairs = engine.networks.endpoints_of(rec)
            if not container_matches(rec, filters, show_all, pairs, c.find):
                continue
            out.append(views.container_summary(rec, rec.image_id, pairs))
            if req.flag("size"):
                out[-1].update(_sizes(engine, rec))
        if limit > 0:
            out = out[:limit]
        req.send_json(out)

    def inspect(req: Request, id: str) -> None:
        rec = c.lookup(id)
        pairs = engine.networks.endpoints_of(rec)
        live = any(ep is not None for _, ep in pairs)
        sandbox = str(engine.networks.netns_path(rec)) if live else ""
        out = views.container_inspect(rec, c.paths, engine.lowers_of(rec), pairs, sandbox)
        if req.flag("size"):
            out.update(_sizes(engine, rec))
        req.send_json(out)

    def start(req: Request, id: str) -> None:
        life.start(id)
        req.send(204)

    def stop(req: Request, id: str) -> None:
        timeout = req.arg("t") or req.arg("timeout")
        life.stop(id, int(timeout) if timeout else None, req.arg("signal") or None)
        req.send(204)

    def restart(req: Request, id: str) -> None:
        timeout = req.arg("t") or req.arg("timeout")
        life.restart(id, int(timeout) if timeout else None, req.arg("signal") or None)
        req.send(204)

    def kill(req: Request, id: str) -> None:
        life.kill(id, req.arg("signal") or None)
        req.send(204)

    def pause(req: Request, id: str) -> None:
        life.pause(id)
        req.send(204)

    def unpause(req: Request, id: str) -> None:
        life.unpause(id)
        req.send(204)

    def remove(req: Request, id: str) -> None:
        life.remove(id, force=req.flag("force"), volumes=req.flag("v"))
        req.send(204)

    def rename(req: Request, id: str) -> None:
        c.rename(id, req.arg("name"))
        req.send(204)

    def wait(req: Request, id: str) -> None:
        condition = req.arg("condition", "not-running")
        block = life.waiter(id, condition)

        def body() -> "list[bytes]":
            outcome = block()
            error = ({"Message": outcome.error} if outcome.error and condition != "removed"
                     else None)
            return [json.dumps({"StatusCode": outcome.status_code, "Error": error}).encode()
                    + b"\n"]

        req.stream(_lazy(body))

    def attach(req: Request, id: str) -> None:
        rec = c.lookup(id)
        tty = bool(rec.config.get("Tty"))
        session = Session(tty=tty, stdin=req.flag("stdin"), stdout=req.flag("stdout"),
                          stderr=req.flag("stderr"), stdin_once=bool(rec.config.get("StdinOnce")))
        engine.attach_session(rec, session, stream=req.flag("stream"), logs=req.flag("logs"),
                              hijack=lambda: req.hijack(RAW if tty else MULTIPLEXED))

    def logs(req: Request, id: str) -> None:
        rec = c.lookup(id)
        if rec.host_config.get("LogConfig", {}).get("Type") == "none":
            raise Conflict('configured logging driver does not support reading')
        opts = logreader.LogOptions(
            stdout=req.flag("stdout"), stderr=req.flag("stderr"),
            since=_time_arg(req.arg("since")), until=_time_arg(req.arg("until")),
            tail=_tail(req.arg("tail", "all")), timestamps=req.flag("timestamps"),
            follow=req.flag("follow"))
        if not opts.stdout and not opts.stderr:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tty = bool(rec.config.get("Tty"))
        details = logattrs.details_prefix(rec) if req.flag("details") else b""

        def running() -> bool:
            return c.get(rec.id) is not None and rec.state.running

        lines = logreader.read(c.paths.log(rec.id), opts, running)  # opens the files now

        def chunks():  # type: ignore[no-untyped-def]
            for line in lines:
                text = details + line.text
                data = (line.time.encode() + b" " + text) if opts.timestamps else text
                yield data if tty else frame(2 if line.stream == "stderr" else 1, data)

        req.stream(chunks(), RAW if tty else MULTIPLEXED)

    def top(req: Request, id: str) -> None:
        rec = c.lookup(id)
        req.send_json(engine.top(rec, req.arg("ps_args") or "-ef"))

    def resize(req: Request, id: str) -> None:
        rec = c.lookup(id)
        engine.resize(rec, req.int_arg("h"), req.int_arg("w"))
        req.send(200, b"", "text/plain")

    def changes(req: Request, id: str) -> None:
        rec = c.lookup(id)
        req.send_json([{"Path": ch.path, "Kind": {"C": 0, "A": 1, "D": 2}[ch.kind]}
                       for ch in engine.changes(rec)] or None)

    def prune(req: Request) -> None:
        filters = prunefilters.validate(parse_filters(req.arg("filters")))
        req.send_json(engine.prune_containers(lambda rec: prunefilters.matches(
            rec.config.get("Labels") or {}, parse_rfc3339(rec.created), filters)))

    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("GET", "/containers/{id}/top", top)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("GET", "/containers/{id}/changes", changes)
    router.add("DELETE", "/containers/{id}", remove)


def _sizes(engine: "Engine", rec: ContainerRecord) -> dict[str, int]:
    """``SizeRw`` (the container's writable layer) and ``SizeRootFs`` (plus its image)."""
    rw = max(0, tree_size(engine.paths.container(rec.id) / "upper"))
    image = engine.images.store.get(rec.image_id)
    return {"SizeRw": rw, "SizeRootFs": rw + (image.size if image else 0)}


def _lazy(produce):  # type: ignore[no-untyped-def]
    """Generator that computes its single body only when the stream is being written."""
    yield b""
    yield from produce()


def _time_arg(text: str) -> float:
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return parse_rfc3339(text)


def _tail(text: str) -> int:
    if text in ("", "all"):
        return -1
    try:
        return max(0, int(text))
    except ValueError:
        raise InvalidArgument(f"invalid tail value: {text}") from None

