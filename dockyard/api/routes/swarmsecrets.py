"""``/secrets`` and ``/configs`` on a swarm manager, as moby serves them: list (with its
filters), create (201 ``{"ID"}``), inspect, update (labels only, ``?version=N``) and remove
(204). A secret's ``Spec.Data`` never leaves the manager; a config's does. Each call checks
the swarm state first (503 off a manager, as moby)."""
from __future__ import annotations

from typing import Any

from dockyard.api import swarmspecs as specs
from dockyard.api.filters import label_match, parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.api.swarmfilters import check_keys
from dockyard.errors import InvalidArgument
from dockyard.types.swarm import CONFIGS, SECRETS, Stored, SwarmBackend, view

FILTERS = {SECRETS: frozenset({"id", "label", "name", "names"}),
           CONFIGS: frozenset({"id", "label", "name"})}


def register(router: Router, swarm: SwarmBackend) -> None:
    for kind in (SECRETS, CONFIGS):
        _register_kind(router, swarm, kind)


def wire(kind: str, obj: Stored) -> dict[str, Any]:
    out = view(obj)
    stored = dict(out.get("Spec") or {})
    if kind == SECRETS:
        stored.pop("Data", None)
    # moby's field order: Annotations (Name, Labels), then Data, Driver, Templating
    spec = {"Name": stored.pop("Name", ""), "Labels": stored.pop("Labels", None) or {}}
    for key in ("Data", "Driver", "Templating"):
        if key in stored:
            spec[key] = stored.pop(key)
    out["Spec"] = {**spec, **stored}
    return out


def _spec_body(value: Any, kind: str) -> dict[str, Any]:
    go = "swarm.SecretSpec" if kind == SECRETS else "swarm.ConfigSpec"
    body = specs.body_object(value, go)
    for key, want, go_type in (("Name", str, "string"), ("Data", str, "[]uint8"),
                               ("Labels", dict, "map[string]string")):
        got = body.get(key)
        if got is not None and not isinstance(got, want):
            raise InvalidArgument(f"invalid JSON: json: cannot unmarshal "
                                  f"{type(got).__name__} into Go struct field "
                                  f"{go}.{key} of type {go_type}")
    for k, v in (body.get("Labels") or {}).items():
        if not isinstance(v, str):
            raise InvalidArgument(f"invalid JSON: json: cannot unmarshal {type(v).__name__} "
                                  f"into Go struct field {go}.Labels of type string")
    return body


def _matcher(filters: dict[str, list[str]]) -> Any:
    names, prefixes = filters.get("names") or [], filters.get("name") or []
    ids, labels = filters.get("id") or [], filters.get("label") or []

    def match(obj: Stored) -> bool:
        spec = obj.spec.get("Spec") or {}
        name = str(spec.get("Name", ""))
        return ((not names or name in names)
                and (not prefixes or any(name.startswith(p) for p in prefixes))
                and (not ids or any(obj.id.startswith(i) for i in ids))
                and label_match(spec.get("Labels"), labels, empty_means_any=True))
    return match


def _register_kind(router: Router, swarm: SwarmBackend, kind: str) -> None:
    def listing(req: Request) -> None:
        swarm.inspect()
        filters = check_keys(parse_filters(req.arg("filters")), FILTERS[kind])
        match = _matcher(filters)
        req.send_json([wire(kind, o) for o in swarm.objects(kind) if match(o)])

    def lookup(req: Request, id: str) -> None:
        swarm.inspect()
        req.send_json(wire(kind, swarm.file_object(kind, id)))

    def create(req: Request) -> None:
        body = _spec_body(req.json(), kind)
        swarm.inspect()
        created = swarm.create_file_object(kind, body)
        req.send_json({"ID": created.id}, 201)

    def update(req: Request, id: str) -> None:
        body = _spec_body(req.json(), kind)
        version = specs.version(req.arg("version"), kind[:-1])
        swarm.inspect()
        swarm.update_file_object(kind, id, version, body)
        req.send(200, b"", "text/plain")

    def remove(req: Request, id: str) -> None:
        swarm.inspect()
        swarm.remove_file_object(kind, id)
        req.send(204, b"", "text/plain")

    router.add("GET", f"/{kind}", listing)
    router.add("POST", f"/{kind}/create", create)
    router.add("GET", f"/{kind}/{{id}}", lookup)
    router.add("POST", f"/{kind}/{{id}}/update", update)
    router.add("DELETE", f"/{kind}/{{id}}", remove)
