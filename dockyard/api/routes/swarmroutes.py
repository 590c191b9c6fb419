"""Routes under /swarm, /nodes, /services and /tasks, over the node's ``SwarmBackend``.

Stored objects are rendered by ``cluster.objects.view``; filters follow moby's (unknown keys
are a 400); ``GET /services?status=true`` adds ServiceStatus counted from the tasks.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from dockyard.api.filters import Filters, parse_filters
from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.errors import InvalidArgument, NotImplementedYet
from dockyard.types.swarm import (NODES, SERVICES, TASKS, InitRequest, JoinRequest, Stored,
                                  SwarmBackend, view)

_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$")
NODE_FILTERS = {"id", "name", "role", "membership", "label", "node.label"}
SERVICE_FILTERS = {"id", "name", "label", "mode"}
TASK_FILTERS = {"id", "name", "service", "node", "desired-state", "label", "_up-to-date"}


def _filters(req: Request, allowed: set[str]) -> Filters:
    filters = parse_filters(req.arg("filters"))
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
    return filters


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _version(req: Request) -> int:
    text = req.arg("version")
    if not text.isdigit():
        raise InvalidArgument(f"invalid swarm object version '{text}'" if text else
                              "version is required")
    return int(text)


def _spec(obj: Stored) -> dict[str, Any]:
    return dict(obj.spec.get("Spec") or {})


def _node_match(obj: Stored, f: Filters) -> bool:
    spec = _spec(obj)
    names = {spec.get("Name") or "", (obj.spec.get("Description") or {}).get("Hostname", "")}
    return ((not f.get("id") or any(obj.id.startswith(v) for v in f["id"]))
            and (not f.get("name") or any(n.startswith(v) for v in f["name"] for n in names if n))
            and (not f.get("role") or spec.get("Role") in f["role"])
            and (not f.get("membership") or "accepted" in f["membership"])
            and _labels_match(spec.get("Labels") or {}, f.get("node.label", []))
            and _labels_match((obj.spec.get("Description") or {}).get("Engine", {})
                              .get("Labels") or {}, f.get("label", [])))


def _service_match(obj: Stored, f: Filters) -> bool:
    spec = _spec(obj)
    mode = "global" if "Global" in (spec.get("Mode") or {}) else "replicated"
    return ((not f.get("id") or any(obj.id.startswith(v) for v in f["id"]))
            and (not f.get("name") or any(str(spec.get("Name", "")).startswith(v)
                                          for v in f["name"]))
            and (not f.get("mode") or mode in f["mode"])
            and _labels_match(spec.get("Labels") or {}, f.get("label", [])))


def _status(service: Stored, tasks: Sequence[Stored]) -> dict[str, int]:
    mine = [t.spec for t in tasks if t.spec.get("ServiceID") == service.id]
    running = sum(1 for t in mine if (t.get("Status") or {}).get("State") == "running"
                  and t.get("DesiredState") == "running")
    mode = _spec(service).get("Mode") or {}
    desired = int((mode.get("Replicated") or {}).get("Replicas", 0)) if "Replicated" in mode \
        else sum(1 for t in mine if t.get("DesiredState") == "running")
    done = sum(1 for t in mine if (t.get("Status") or {}).get("State") == "complete")
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": done}


def _check_service_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise InvalidArgument("invalid service spec")
    name = spec.get("Name") or ""
    if name and not _NAME.match(name):
        raise InvalidArgument(f"rpc error: code = InvalidArgument desc = name must be valid as "
                              f"a DNS name component")
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    if not container.get("Image"):
        raise InvalidArgument("rpc error: code = InvalidArgument desc = ContainerSpec: image "
                              "reference must be provided")
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        raise InvalidArgument("invalid replica count")
    for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
        if (port.get("PublishMode") or "ingress") != "host":
            raise NotImplementedYet("the routing mesh (ingress publish mode) is not supported "
                                    "yet: publish with mode=host, e.g. "
                                    "--publish published=8080,target=80,mode=host")
        if not port.get("TargetPort"):
            raise InvalidArgument("rpc error: code = InvalidArgument desc = EndpointSpec: "
                                  "target port must be provided")
    if not spec.get("Mode"):
        spec = {**spec, "Mode": {"Replicated": {"Replicas": 1}}}
    return spec


def register(router: Router, swarm: SwarmBackend) -> None:
    def lookup_kind(kind: str) -> Callable[[Request, str], None]:
        def inspect(req: Request, id: str) -> None:
            req.send_json(view(swarm.lookup(kind, id)))
        return inspect

    # -- /swarm -------------------------------------------------------------------------
    def swarm_inspect(req: Request) -> None:
        req.send_json(swarm.inspect())

    def swarm_init(req: Request) -> None:
        body = req.json({}) or {}
        node_id = swarm.init(InitRequest(listen_addr=body.get("ListenAddr") or "0.0.0.0:2377",
                                         advertise_addr=body.get("AdvertiseAddr") or "",
                                         force_new_cluster=bool(body.get("ForceNewCluster")),
                                         spec=body.get("Spec")))
        req.send_json(node_id)

    def swarm_join(req: Request) -> None:
        body = req.json({}) or {}
        swarm.join(JoinRequest(remote_addrs=list(body.get("RemoteAddrs") or []),
                               join_token=str(body.get("JoinToken") or ""),
                               listen_addr=body.get("ListenAddr") or "0.0.0.0:2377",
                               advertise_addr=body.get("AdvertiseAddr") or ""))
        req.send(200, b"", "text/plain")

    def swarm_leave(req: Request) -> None:
        swarm.leave(req.flag("force"))
        req.send(200, b"", "text/plain")

    # -- /nodes -------------------------------------------------------------------------
    def nodes(req: Request) -> None:
        f = _filters(req, NODE_FILTERS)
        req.send_json([view(n) for n in swarm.objects(NODES) if _node_match(n, f)])

    def node_update(req: Request, id: str) -> None:
        swarm.update_node(id, _version(req), req.json({}) or {})
        req.send(200, b"", "text/plain")

    def node_remove(req: Request, id: str) -> None:
        swarm.remove_node(id, req.flag("force"))
        req.send(200, b"", "text/plain")

    # -- /services ----------------------------------------------------------------------
    def services(req: Request) -> None:
        f = _filters(req, SERVICE_FILTERS)
        found = [s for s in swarm.objects(SERVICES) if _service_match(s, f)]
        tasks = swarm.objects(TASKS) if req.flag("status") else []
        out = []
        for s in found:
            v = view(s)
            if req.flag("status"):
                v["ServiceStatus"] = _status(s, tasks)
            out.append(v)
        req.send_json(out)

    def service_create(req: Request) -> None:
        created = swarm.create_service(_check_service_spec(req.json({})))
        req.send_json({"ID": created.id, "Warnings": None}, 201)

    def service_update(req: Request, id: str) -> None:
        rollback = req.arg("rollback") == "previous"
        spec = req.json({}) or {}
        swarm.update_service(id, _version(req), spec if rollback else _check_service_spec(spec),
                             rollback=rollback)
        req.send_json({"Warnings": None})

    def service_remove(req: Request, id: str) -> None:
        swarm.remove_service(id)
        req.send(200, b"", "text/plain")

    # -- /tasks -------------------------------------------------------------------------
    def tasks(req: Request) -> None:
        f = _filters(req, TASK_FILTERS)
        if f.get("service"):
            f["service"] = [swarm.lookup(SERVICES, s).id for s in f["service"]]
        if f.get("node"):
            f["node"] = [swarm.lookup(NODES, n).id for n in f["node"]]
        names = {s.id: str(_spec(s).get("Name", "")) for s in swarm.objects(SERVICES)} \
            if f.get("name") else {}
        out = []
        for t in swarm.objects(TASKS):
            s = t.spec
            if ((f.get("id") and not any(t.id.startswith(v) for v in f["id"]))
                    or (f.get("service") and s.get("ServiceID") not in f["service"])
                    or (f.get("node") and s.get("NodeID") not in f["node"])
                    or (f.get("desired-state") and s.get("DesiredState") not in
                        f["desired-state"])
                    or not _labels_match(s.get("Labels") or {}, f.get("label", []))):
                continue
            if f.get("name"):
                task_name = f"{names.get(str(s.get('ServiceID')), '')}.{s.get('Slot') or ''}"
                if not any(task_name.startswith(v) for v in f["name"]):
                    continue
            out.append(view(t))
        req.send_json(out)

    router.add("GET", "/swarm", swarm_inspect)
    router.add("POST", "/swarm/init", swarm_init)
    router.add("POST", "/swarm/join", swarm_join)
    router.add("POST", "/swarm/leave", swarm_leave)
    router.add("GET", "/nodes", nodes)
    router.add("GET", "/nodes/{id}", lookup_kind(NODES))
    router.add("POST", "/nodes/{id}/update", node_update)
    router.add("DELETE", "/nodes/{id}", node_remove)
    router.add("GET", "/services", services)
    router.add("POST", "/services/create", service_create)
    router.add("GET", "/services/{id}", lookup_kind(SERVICES))
    router.add("POST", "/services/{id}/update", service_update)
    router.add("DELETE", "/services/{id}", service_remove)
    router.add("GET", "/tasks", tasks)
    router.add("GET", "/tasks/{id}", lookup_kind(TASKS))
