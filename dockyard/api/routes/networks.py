"""Routes under /networks: list, inspect, create, remove, connect, disconnect, prune.

Swarm-scoped (overlay) networks live in the cluster store (``types.swarm.SwarmBackend``):
``-d overlay`` creates one there, list/inspect/rm find them after this node's own networks
(whose ``overlay`` records, made where tasks use a swarm network, are shown as the swarm's).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.api import prunefilters
from dockyard.api.filters import parse_filters
from dockyard.api.http import Request
from dockyard.api.netviews import network_json, swarm_network_json
from dockyard.api.router import Router
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.types.swarm import NetworkRequest, Stored, SwarmBackend
from dockyard.util.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def _matches(filters: dict[str, list[str]], id: str, name: str, driver: str, scope: str,
             kind: str, labels: dict[str, str]) -> bool:
    return (("name" not in filters or any(v in name for v in filters["name"]))
            and ("id" not in filters or any(id.startswith(v) for v in filters["id"]))
            and ("driver" not in filters or driver in filters["driver"])
            and ("scope" not in filters or scope in filters["scope"])
            and ("type" not in filters or kind in filters["type"])
            and ("label" not in filters or all(
                k in labels and (not sep or labels[k] == v)
                for k, sep, v in (f.partition("=") for f in filters["label"]))))


def register(router: Router, engine: "Engine", swarm: SwarmBackend | None = None) -> None:
    networks = engine.networks

    def view(net):  # type: ignore[no-untyped-def]
        endpoints = [ep for ep in networks.manager.endpoints() if ep.network_id == net.id]
        return network_json(net, endpoints, networks.names())

    def swarm_view(obj: Stored) -> dict[str, Any]:
        endpoints = [ep for ep in networks.manager.endpoints() if ep.network_id == obj.id]
        return swarm_network_json(obj, endpoints, networks.names())

    def swarm_networks() -> list[Stored]:
        return list(swarm.networks()) if swarm is not None else []

    def local(ref: str, scope: str = "") -> Any:
        """This node's own network ``ref`` (None: look in the swarm)."""
        if scope == "swarm":
            return None
        try:
            net = networks.manager.get(ref)
        except NotFound:
            if scope == "local" or swarm is None or swarm.state() != "active":
                raise
            return None
        return None if net.driver == "overlay" else net

    def find_swarm(ref: str) -> Stored:
        if swarm is None or swarm.state() != "active":
            raise NotFound(f"network {ref} not found")
        return swarm.network(ref)

    def list_(req: Request) -> None:
        filters = parse_filters(req.arg("filters"))
        out = []
        for net in networks.manager.list():
            if net.driver != "overlay" and _matches(
                    filters, net.id, net.name, net.driver, "local",
                    "builtin" if net.predefined else "custom", net.labels):
                out.append(view(net))
        for obj in swarm_networks():
            spec = obj.spec
            if _matches(filters, obj.id, str(spec.get("Name", "")), "overlay", "swarm",
                        "custom", dict(spec.get("Labels") or {})):
                out.append(swarm_view(obj))
        req.send_json(out)

    def inspect(req: Request, id: str) -> None:
        net = local(id, req.arg("scope"))
        req.send_json(view(net) if net is not None else swarm_view(find_swarm(id)))

    def create(req: Request) -> None:
        body = req.json({}) or {}
        if not body.get("Name"):
            raise InvalidArgument("network name must not be empty")
        if body.get("Driver") == "overlay" and swarm is not None:
            name = str(body["Name"])
            if any(n.name == name for n in networks.manager.list() if n.driver != "overlay"):
                raise Conflict(f"network with name {name} already exists")
            ipam = ((body.get("IPAM") or {}).get("Config") or [{}])[0] or {}
            obj = swarm.create_network(NetworkRequest(
                name, str(ipam.get("Subnet") or ""), str(ipam.get("Gateway") or ""),
                bool(body.get("Attachable")), bool(body.get("Internal")),
                body.get("Labels") or {}, body.get("Options") or {},
                networks.manager.taken_subnets()))
            engine.events.publish("network", "create", obj.id, name=name, type="overlay")
            req.send_json({"Id": obj.id, "Warning": ""}, 201)
            return
        net = networks.create(body)
        engine.events.publish("network", "create", net.id, name=net.name, type=net.driver)
        req.send_json({"Id": net.id, "Warning": ""}, 201)

    def remove(req: Request, id: str) -> None:
        net = local(id)
        if net is None and swarm is not None:
            obj = find_swarm(id)
            swarm.remove_network(obj.id)
            engine.events.publish("network", "destroy", obj.id,
                                  name=str(obj.spec.get("Name", "")), type="overlay")
            req.send(204)
            return
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
