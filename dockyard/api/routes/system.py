"""/_ping, /version, /info, /events, /system/df."""
from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.api_version import API_VERSION
from dockyard.engine import system
from dockyard.engine.events import Event
from dockyard.errors import InvalidArgument
from dockyard.types.digest import chain_ids
from dockyard.util.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from dockyard.daemon.wiring import Daemon

PING_HEADERS = {"API-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
                "Builder-Version": "1", "Swarm": "inactive",
                "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def _event_matches(event: Event, filters: dict[str, list[str]]) -> bool:
    if "type" in filters and event.type not in filters["type"]:
        return False
    if "event" in filters and event.action.split(":")[0] not in filters["event"]:
        return False
    for key in ("container", "image"):
        if key in filters:
            if event.type != key:
                return False
            names = {event.actor_id, event.actor_id[:12], event.attributes.get("name", ""),
                     event.attributes.get("image", "")}
            if not any(v in names or event.actor_id.startswith(v) for v in filters[key]):
                return False
    if "label" in filters:
        for item in filters["label"]:
            key, sep, value = item.partition("=")
            if key not in event.attributes or (sep and event.attributes[key] != value):
                return False
    return True


def _shared_sizes(usage: dict[str, Any], store: Any) -> None:
    """``SharedSize`` of each image (its layers other images use too) and ``LayersSize``
    (every layer once), which ``docker system df`` needs for RECLAIMABLE and -v."""
    chains = {image.id: chain_ids(image.diff_ids) for image in store.list()}
    users: dict[str, int] = {}
    for ids in chains.values():
        for chain in set(ids):
            users[chain] = users.get(chain, 0) + 1
    sizes = {}
    for chain in users:
        snap = store.snapshots.get(chain)
        sizes[chain] = snap.size if snap else 0
    for row in usage.get("Images") or []:
        own = set(chains.get(row["Id"], []))
        row["SharedSize"] = sum(sizes[c] for c in own if users[c] > 1)
    usage["LayersSize"] = sum(sizes.values())


def _stamp(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        try:
            return parse_rfc3339(text)
        except ValueError:
            raise InvalidArgument(f"invalid timestamp: {text}") from None


def register(router: Router, daemon: "Daemon") -> None:
    engine = daemon.engine

    def ping(req: Request) -> None:
        req.send(200, b"OK", "text/plain; charset=utf-8",
                 {**PING_HEADERS, "Swarm": daemon.swarm.ping()})

    def version(req: Request) -> None:
        req.send_json(system.version())

    def info(req: Request) -> None:
        recs = engine.containers.all()
        counts = {"total": len(recs),
                  "running": sum(r.state.status == "running" for r in recs),
                  "paused": sum(r.state.status == "paused" for r in recs)}
        counts["stopped"] = counts["total"] - counts["running"] - counts["paused"]
        req.send_json(system.info(daemon_id=daemon.daemon_id, data_root=str(daemon.paths.data_root),
                                  counts=counts, images=len(engine.images.store.list()),
                                  runtimes=daemon.runtime_paths(),
                                  default_runtime=daemon.config.default_runtime)
                      | {"Swarm": daemon.swarm.info()})

    def events(req: Request) -> None:
        since, until = _stamp(req.arg("since")), _stamp(req.arg("until"))
        filters = parse_filters(req.arg("filters"))
        past, sub = engine.events.subscribe(int(since * 1e9) if since is not None else None)

        def chunks() -> Iterator[bytes]:
            yield b""
            try:
                for event in past:
                    if until is not None and event.time_nano > until * 1e9:
                        return
                    if _event_matches(event, filters):
                        yield json.dumps(event.to_json()).encode() + b"\n"
                while True:
                    if until is not None and time.time() >= until:
                        return
                    timeout = 1.0 if until is None else max(0.0, min(1.0, until - time.time()))
                    try:
                        event = sub.get(timeout=timeout)
                    except queue.Empty:
                        continue
                    if until is not None and event.time_nano > until * 1e9:
                        return
                    if _event_matches(event, filters):
                        yield json.dumps(event.to_json()).encode() + b"\n"
            finally:
                engine.events.unsubscribe(sub)

        req.stream(chunks())

    def df(req: Request) -> None:
        usage = daemon.disk_usage()
        _shared_sizes(usage, engine.images.store)
        req.send_json(usage)

    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)
    router.add("GET", "/system/df", df)
