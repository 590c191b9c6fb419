"""Routes under /swarm, /nodes, /services and /tasks, over the node's ``SwarmBackend``.

Stored objects are rendered by ``types.swarm.view``; bodies and query values are checked in
``api/swarmspecs``, filters in ``api/swarmfilters``. As in moby, where the backend's state
decides (inactive node, worker: 503) it is asked before the request is judged beyond its
JSON and its ``version``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.api import swarmfilters as sf
from dockyard.api import swarmspecs as specs
from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.api_version import API_VERSION, older_than
from dockyard.errors import Conflict, Forbidden, NotFound, NotImplementedYet
from dockyard.types.swarm import NO_AUTOLOCK, NODES, SERVICES, TASKS, SwarmBackend, view
from dockyard.util import ids


def _ok(req: Request) -> None:
    req.send(200, b"", "text/plain")


LOCAL_NETWORK = ("The network {} cannot be used with services. Only networks scoped to the "
                 "swarm can be used, such as those created with the overlay driver.")


def register(router: Router, swarm: SwarmBackend,
             local_network: Callable[[str], Any] | None = None) -> None:
    def networks_of(spec: Mapping[str, Any]) -> dict[str, Any]:
        """Network targets as swarm network ids; a local network is refused as moby does."""
        try:
            return swarm.resolve_networks(spec)
        except NotFound:
            targets = [n.get("Target") for n in [
                *((spec.get("TaskTemplate") or {}).get("Networks") or []),
                *(spec.get("Networks") or [])] if isinstance(n, dict)]
            for target in targets:
                try:
                    net = local_network(str(target)) if local_network else None
                except NotFound:
                    continue
                if net is not None and getattr(net, "driver", "") != "overlay":
                    raise Forbidden(LOCAL_NETWORK.format(net.name)) from None
            raise

    def inspect_of(kind: str) -> Callable[[Request, str], None]:
        def inspect(req: Request, id: str) -> None:
            if kind == SERVICES:
                specs.parse_bool(req.arg("insertDefaults"), "insertDefaults")
            req.send_json(view(swarm.lookup(kind, id)))
        return inspect

    # -- /swarm -------------------------------------------------------------------------
    def swarm_inspect(req: Request) -> None:
        req.send_json(swarm.inspect())

    def swarm_init(req: Request) -> None:
        req.send_json(swarm.init(specs.init_request(req.json())))

    def swarm_join(req: Request) -> None:
        swarm.join(specs.join_request(req.json()))
        _ok(req)

    def swarm_leave(req: Request) -> None:
        swarm.leave(specs.bool_value(req.arg("force")))
        _ok(req)

    def swarm_update(req: Request) -> None:
        body = specs.body_object(req.json(), "swarm.Spec")
        version = specs.version(req.arg("version"), "swarm")
        rotate = {name: specs.parse_bool(req.arg(name), name) for name in (
            "rotateWorkerToken", "rotateManagerToken", "rotateManagerUnlockKey")}
        swarm.inspect()  # the node's state decides first (inactive, worker: 503)
        spec = specs.swarm_spec(body)
        if rotate["rotateManagerUnlockKey"]:
            raise NotImplementedYet(NO_AUTOLOCK)
        swarm.update_swarm(version, spec, rotate_worker=rotate["rotateWorkerToken"],
                           rotate_manager=rotate["rotateManagerToken"])
        _ok(req)

    def unlock_key(req: Request) -> None:
        swarm.inspect()
        req.send_json({"UnlockKey": ""})  # managers are never autolocked

    def unlock(req: Request) -> None:
        specs.body_object(req.json(), "swarm.UnlockRequest")
        swarm.inspect()
        raise Conflict("swarm is not locked")

    # -- /nodes -------------------------------------------------------------------------
    def nodes(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        found = swarm.objects(NODES)
        match = sf.node_matcher(sf.check_keys(filters, sf.NODE_FILTERS))
        req.send_json([view(n) for n in found if match(n)])

    def node_update(req: Request, id: str) -> None:
        body = req.json()
        version = specs.version(req.arg("version"), "node")
        swarm.update_node(id, version, specs.node_spec(body))
        _ok(req)

    def node_remove(req: Request, id: str) -> None:
        swarm.remove_node(id, specs.bool_value(req.arg("force")))
        _ok(req)

    # -- /services ----------------------------------------------------------------------
    def services(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        status = not older_than(getattr(req, "api_version", API_VERSION), "1.41") and \
            specs.parse_bool(req.arg("status"), "status")
        found = swarm.objects(SERVICES)
        match = sf.service_matcher(sf.check_keys(filters, sf.SERVICE_FILTERS))
        chosen = [s for s in found if match(s)]
        every_task = swarm.objects(TASKS) if status and chosen else []
        out = []
        for service in chosen:
            wire = view(service)
            if status:
                wire["ServiceStatus"] = sf.service_status(service, every_task)
            out.append(wire)
        req.send_json(out)

    def service_create(req: Request) -> None:
        body = req.json()
        taken = {str((s.spec.get("Spec") or {}).get("Name") or "")
                 for s in swarm.objects(SERVICES)}
        spec = specs.service_spec(body, lambda: ids.generate_name(taken))
        created = swarm.create_service(networks_of(spec))
        req.send_json({"ID": created.id, "Warnings": None}, 201)

    def service_update(req: Request, id: str) -> None:
        body = req.json()
        version = specs.version(req.arg("version"), "service")
        rollback = specs.rollback(req.arg("rollback"))
        current = swarm.lookup(SERVICES, id)
        spec = networks_of(specs.service_spec(body, lambda: ids.generate_name(set())))
        specs.check_change(current.spec.get("Spec") or {}, spec)
        swarm.update_service(current.id, version, spec, rollback=rollback)
        req.send_json({"Warnings": None})

    def service_remove(req: Request, id: str) -> None:
        swarm.remove_service(id)
        _ok(req)

    # -- /tasks -------------------------------------------------------------------------
    def tasks(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        by_id = {s.id: s for s in swarm.objects(SERVICES)}
        sf.check_keys(filters, sf.TASK_FILTERS)
        for key, kind in (("service", SERVICES), ("node", NODES)):
            if key in filters:
                filters[key] = [swarm.lookup(kind, ref).id for ref in filters[key]]
        match = sf.task_matcher(filters, by_id)
        req.send_json([view(t) for t in swarm.objects(TASKS) if match(t)])

    router.add("GET", "/swarm", swarm_inspect)
    router.add("POST", "/swarm/init", swarm_init)
    router.add("POST", "/swarm/join", swarm_join)
    router.add("POST", "/swarm/leave", swarm_leave)
    router.add("POST", "/swarm/update", swarm_update)
    router.add("GET", "/swarm/unlockkey", unlock_key)
    router.add("POST", "/swarm/unlock", unlock)
    router.add("GET", "/nodes", nodes)
    router.add("GET", "/nodes/{id}", inspect_of(NODES))
    router.add("POST", "/nodes/{id}/update", node_update)
    router.add("DELETE", "/nodes/{id}", node_remove)
    router.add("GET", "/services", services)
    router.add("POST", "/services/create", service_create)
    router.add("GET", "/services/{id}", inspect_of(SERVICES))
    router.add("POST", "/services/{id}/update", service_update)
    router.add("DELETE", "/services/{id}", service_remove)
    router.add("GET", "/tasks", tasks)
    router.add("GET", "/tasks/{id}", inspect_of(TASKS))
