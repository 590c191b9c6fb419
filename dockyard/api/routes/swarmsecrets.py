"""``/secrets`` and ``/configs`` on a swarm manager. Storing them is not supported yet: the lists
are empty (so ``docker stack rm`` and ``stack deploy`` of files without secrets work), a lookup
is a 404 and a create a 501, each after the swarm state is checked as moby does (503 off a
manager)."""
from __future__ import annotations

from dockyard.api import swarmspecs as specs
from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.errors import InvalidArgument, NotFound, NotImplementedYet
from dockyard.types.swarm import SwarmBackend

FILTERS = {"id", "label", "name", "names"}


def register(router: Router, swarm: SwarmBackend) -> None:
    for kind in ("secret", "config"):
        _register_kind(router, swarm, kind)


def _register_kind(router: Router, swarm: SwarmBackend, kind: str) -> None:
    def listing(req: Request) -> None:
        swarm.inspect()
        for key in parse_filters(req.arg("filters")):
            if key not in FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        req.send_json([])

    def lookup(req: Request, id: str) -> None:
        swarm.inspect()
        raise NotFound(f"{kind} {id} not found")

    def create(req: Request) -> None:
        specs.body_object(req.json(), f"swarm.{kind.capitalize()}Spec")
        swarm.inspect()
        raise NotImplementedYet(f"swarm {kind}s are not supported yet")

    def update(req: Request, id: str) -> None:
        swarm.inspect()
        raise NotFound(f"{kind} {id} not found")

    router.add("GET", f"/{kind}s", listing)
    router.add("POST", f"/{kind}s/create", create)
    router.add("GET", f"/{kind}s/{{id}}", lookup)
    router.add("POST", f"/{kind}s/{{id}}/update", update)
    router.add("DELETE", f"/{kind}s/{{id}}", lookup)
