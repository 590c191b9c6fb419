"""Routes under /networks: list, inspect, create, remove, connect, disconnect, prune."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.api import prunefilters
from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.netviews import network_json
from dockyard.api.router import Router
from dockyard.errors import InvalidArgument
from dockyard.util.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def register(router: Router, engine: "Engine") -> None:
    networks = engine.networks

    def view(net):  # type: ignore[no-untyped-def]
        endpoints = [ep for ep in networks.manager.endpoints() if ep.network_id == net.id]
        return network_json(net, endpoints, networks.names())

    def list_(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        out = []
        for net in networks.manager.list():
            if "name" in filters and not any(v in net.name for v in filters["name"]):
                continue
            if "id" in filters and not any(net.id.startswith(v) for v in filters["id"]):
                continue
            if "driver" in filters and net.driver not in filters["driver"]:
                continue
            if "type" in filters and ("builtin" if net.predefined else "custom") \
                    not in filters["type"]:
                continue
            if "label" in filters and not all(
                    k in net.labels and (not sep or net.labels[k] == v)
                    for k, sep, v in (f.partition("=") for f in filters["label"])):
                continue
            out.append(view(net))
        req.send_json(out)

    def inspect(req: Request, id: str) -> None:
        req.send_json(view(networks.manager.get(id)))

    def create(req: Request) -> None:
        body = req.json({}) or {}
        if not body.get("Name"):
            raise InvalidArgument("network name must not be empty")
        net = networks.create(body)
        engine.events.publish("network", "create", net.id, name=net.name, type=net.driver)
        req.send_json({"Id": net.id, "Warning": ""}, 201)

    def remove(req: Request, id: str) -> None:
        net = networks.manager.get(id)
        networks.remove(id)
        engine.events.publish("network", "destroy", net.id, name=net.name, type=net.driver)
        req.send(204)

    def connect(req: Request, id: str) -> None:
        body = req.json({}) or {}
        networks.connect(id, body.get("Container") or "", body.get("EndpointConfig") or {})
        _membership_event("connect", id, body.get("Container") or "")
        req.send(200, b"", "text/plain")

    def _membership_event(action: str, net_ref: str, container: str) -> None:
        net, rec = networks.manager.get(net_ref), engine.containers.find(container)
        engine.events.publish("network", action, net.id, name=net.name, type=net.driver,
                              container=rec.id if rec else container)

    def disconnect(req: Request, id: str) -> None:
        body = req.json({}) or {}
        networks.disconnect(id, body.get("Container") or "")
        _membership_event("disconnect", id, body.get("Container") or "")
        req.send(200, b"", "text/plain")

    def prune(req: Request) -> None:
        filters = prunefilters.validate(parse_filters(req.arg("filters")))
        seen: dict[str, Any] = {}

        def selected(net: Any) -> bool:
            seen[net.name] = net
            return prunefilters.matches(net.labels, parse_rfc3339(net.created), filters)

        removed = networks.prune(selected)
        for name in removed:
            net = seen[name]
            engine.events.publish("network", "destroy", net.id, name=net.name, type=net.driver)
        req.send_json({"NetworksDeleted": removed or None})

    router.add("GET", "/networks", list_)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
