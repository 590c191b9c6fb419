"""Routes under /images: list, inspect, import (create?fromSrc=-), tag, remove, history,
and /commit."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dockyard.api import prunefilters, views
from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.progress import error_message, from_worker, stream_json
from dockyard.api.router import Router
from dockyard.api_version import API_VERSION, older_than
from dockyard.errors import DockyardError, Internal, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def register(router: Router, engine: "Engine") -> None:
    images = engine.images
    store = images.store

    def list_(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        counts: dict[str, int] = {}
        for rec in engine.containers.all():
            counts[rec.image_id] = counts.get(rec.image_id, 0) + 1
        out = []
        for image in store.list():
            if "dangling" in filters:
                dangling = not image.tags
                if (filters["dangling"][0].lower() in ("true", "1")) != dangling:
                    continue
            if not image.tags and not req.flag("all") and store.children(image.id):
                continue  # an intermediate image, listed only with --all (as by Docker)
            if "reference" in filters and not any(
                    _ref_match(ref, pattern)
                    for ref in [*views.repo_tags(image), *views.repo_digests(image)]
                    for pattern in filters["reference"]):
                continue
            if "label" in filters and not all(
                    _label(image.run_config.get("Labels") or {}, w) for w in filters["label"]):
                continue
            out.append(views.image_summary(image, counts.get(image.id, 0)))
        req.send_json(out)

    def inspect(req: Request, name: str) -> None:
        image = store.resolve(name)
        lowers = [str(p) for p in store.snapshots.lowers(image.chain_id)] if image.chain_id else []
        legacy = older_than(getattr(req, "api_version", API_VERSION), "1.45")
        req.send_json(views.image_inspect(image, lowers, legacy))

    def history(req: Request, name: str) -> None:
        req.send_json(images.history(name))

    def tag(req: Request, name: str) -> None:
        images.tag(name, req.arg("repo"), req.arg("tag"))
        req.send(201, b"", "text/plain")

    def remove(req: Request, name: str) -> None:
        req.send_json(images.remove(name, force=req.flag("force"), prune=not req.flag("noprune")))

    def create(req: Request) -> None:
        if req.arg("fromSrc") == "-":
            return _import(req)
        if req.arg("fromSrc"):
            raise InvalidArgument("importing from a URL is not supported: no network access")
        if not req.arg("fromImage"):
            raise InvalidArgument("fromImage or fromSrc is required")
        auth = req.headers.get("X-Registry-Auth") or ""
        _stream_pull(req, lambda emit: engine.registries.pull(
            req.arg("fromImage"), req.arg("tag"), auth, emit, req.arg("platform")))

    def push(req: Request, name: str) -> None:
        auth = req.headers.get("X-Registry-Auth") or ""
        stream_json(req, lambda emit: engine.registries.push(
            name, req.arg("tag"), auth, emit))

    def _import(req: Request) -> None:
        stream_json(req, lambda emit: emit({"status": images.import_tar(
            req.body, req.arg("repo"), req.arg("tag"), req.args("changes"),
            req.arg("message")).id}))

    def commit(req: Request) -> None:
        rec = engine.containers.lookup(req.arg("container"))
        pause = req.flag("pause", True) and rec.state.status == "running"
        if pause:
            engine.lifecycle.pause(rec.id)
        try:
            image = images.commit(rec, req.arg("repo"), req.arg("tag"), author=req.arg("author"),
                                  comment=req.arg("comment"), changes=req.args("changes"),
                                  config_override=req.json({}) or {})
        finally:
            if pause:
                engine.lifecycle.unpause(rec.id)
        req.send_json({"Id": image.id}, 201)

    def prune(req: Request) -> None:
        filters = prunefilters.validate(parse_filters(req.arg("filters")), ("dangling",))
        dangling = (filters.get("dangling") or ["true"])[0].lower() in ("true", "1")
        req.send_json(images.prune(dangling_only=dangling, selected=lambda image: (
            prunefilters.matches(image.run_config.get("Labels") or {}, image.created,
                                 filters))))

    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/create", create)
    router.add("POST", "/commit", commit)
    router.add("GET", "/images/{name}/json", inspect)
    router.add("GET", "/images/{name}/history", history)
    router.add("POST", "/images/{name}/tag", tag)
    router.add("DELETE", "/images/{name}", remove)
    router.add("POST", "/images/{name}/push", push)

    def login(req: Request) -> None:
        req.send_json(engine.registries.login(req.json({}) or {}))

    router.add("POST", "/auth", login)


def _ref_name(ref: str) -> tuple[str, bool]:
    """The repository part of ``ref`` and whether a tag or digest followed it (a ``:`` in
    the registry's host:port is not a tag)."""
    if "@" in ref:
        return ref.split("@", 1)[0], True
    head, _, last = ref.rpartition("/")
    if ":" in last:
        return (head + "/" if head else "") + last.split(":", 1)[0], True
    return ref, False


def _ref_match(ref: str, pattern: str) -> bool:
    """Docker's reference filter: a pattern with a tag or digest matches whole references,
    one without matches the repository name (shell-style globs either way)."""
    import fnmatch
    name, _ = _ref_name(ref)
    _, qualified = _ref_name(pattern)
    return fnmatch.fnmatch(ref if qualified else name, pattern)


def _label(labels: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _stream_pull(req: Request, work: Callable[[Callable[[dict[str, Any]], None]], object]) -> None:
    """Moby's pull answer: an error before the first progress line is the call's status
    (nothing is flushed until the registry has answered); after it, an in-band error line."""
    items: Iterator[dict[str, Any] | _Failed] = from_worker(work, _Failed)
    first = next(items, None)
    if isinstance(first, _Failed):
        raise _refusal(first.exc)

    def lines() -> Iterator[bytes]:
        if first is not None:
            yield json.dumps(first).encode() + b"\r\n"
        for item in items:
            out = error_message(item.exc) if isinstance(item, _Failed) else item
            yield json.dumps(out).encode() + b"\r\n"
    req.stream(lines())


def _refusal(exc: BaseException) -> BaseException:
    """As moby's translatePullError: not found (a manifest or repository unknown, access
    denied) is a 404, a bad reference a 400, anything else a 500 — never a 401, which would
    make the docker CLI ask for credentials and try again."""
    if isinstance(exc, (NotFound, InvalidArgument)) or not isinstance(exc, DockyardError):
        return exc
    return Internal(exc.message)
