"""The swarm routes in-process: a Router with only them, over a fake ``SwarmBackend`` on the
in-memory cluster store, served by the real HTTP server classes on a temporary unix socket.

Wire shapes are checked against the Engine API swagger (v1.50, what docker CLI 28 speaks);
the fake stores objects the way Docker shows them, so a key outside the schema is the routes'.
"""
from __future__ import annotations

import http.client
import json
import re
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from dockyard import errors
from dockyard.api.http import UnixServer, handler_class
from dockyard.api.router import Router
from dockyard.api.routes import swarmroutes
from dockyard.cluster.memstore import MemStore
from dockyard.cluster.store import Object
from dockyard.types.swarm import (ALREADY_IN_SWARM, CLUSTER, NODES, NOT_A_MANAGER, NOT_IN_SWARM,
                                  SERVICES, TASKS, InitRequest, JoinRequest, SwarmBackend, view)

SWAGGER = Path("/work/shared/reference/engine-api/v1.50.yaml")
INVALID = "rpc error: code = InvalidArgument desc = "
IMAGE = "bb:latest"


def _new_id() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(25))


class FakeSwarm:
    """``SwarmBackend`` over a MemStore; ``role`` is "inactive", "manager" or "worker"."""

    def __init__(self, role: str = "manager") -> None:
        self.calls: list[Any] = []
        self.reset(role)

    def reset(self, role: str) -> None:
        """A fresh store; a node in a swarm has its cluster object."""
        self.store, self.role = MemStore(), "inactive"
        if role != "inactive":
            self._become(role)

    def _become(self, role: str) -> None:
        self.role = role
        self.store.create(Object(CLUSTER, "default", {
            "Spec": {"Name": "default", "Labels": {}},
            "JoinTokens": {"Worker": "SWMTKN-1-w", "Manager": "SWMTKN-1-m"}}))

    def _gate(self) -> None:
        if self.role != "manager":
            raise errors.Unavailable(NOT_IN_SWARM if self.role == "inactive" else NOT_A_MANAGER)

    def state(self) -> str:
        return "inactive" if self.role == "inactive" else "active"

    # networks: the real NetworkViews over this store
    def _views(self) -> Any:
        from dockyard.cluster.membership import Membership
        from dockyard.cluster.netviews import NetworkViews
        views = NetworkViews()
        views.member = None if self.role == "inactive" else Membership(
            "node0", self.role, "127.0.0.1", [])
        views._store = self.store
        views._manager_store = lambda: (self._gate(), self.store)[1]  # type: ignore[method-assign]
        return views

    def networks(self) -> Any:
        return self._views().networks()

    def network(self, ref: str) -> Any:
        return self._views().network(ref)

    def create_network(self, request: Any) -> Any:
        return self._views().create_network(request)

    def remove_network(self, ref: str) -> None:
        self._views().remove_network(ref)

    def resolve_networks(self, spec: Any) -> Any:
        return self._views().resolve_networks(spec)

    def ping(self) -> str:
        return self.state() if self.role == "inactive" else f"active/{self.role}"

    def info(self) -> dict[str, Any]:
        return {"LocalNodeState": self.state()}

    def init(self, request: InitRequest) -> str:
        if self.role != "inactive":
            raise errors.Unavailable(ALREADY_IN_SWARM)
        self.calls.append(request)
        self._become("manager")
        return "node0"

    def join(self, request: JoinRequest) -> None:
        if self.role != "inactive":
            raise errors.Unavailable(ALREADY_IN_SWARM)
        self.calls.append(request)
        self.role = "worker"

    def leave(self, force: bool) -> None:
        if self.role == "inactive":
            raise errors.Unavailable("This node is not part of a swarm")
        self.calls.append(("leave", force))
        self.role = "inactive"

    def inspect(self) -> dict[str, Any]:
        self._gate()
        return view(self.store.get(CLUSTER, "default"))

    def update_swarm(self, version: int, spec: Mapping[str, Any], rotate_worker: bool = False,
                     rotate_manager: bool = False) -> None:
        current = self._at(CLUSTER, "default", version)
        self.calls.append(("update_swarm", dict(spec), rotate_worker, rotate_manager))
        self.store.update(current.with_spec({**current.spec, "Spec": dict(spec)}))

    def objects(self, kind: str) -> Sequence[Object]:
        self._gate()
        return self.store.list(kind).objects

    def lookup(self, kind: str, ref: str) -> Object:
        found = self.objects(kind)
        for match in ([o for o in found if o.id == ref],
                      [o for o in found if ref in _names(o)],
                      [o for o in found if o.id.startswith(ref)]):
            if len(match) == 1:
                return match[0]
        raise errors.NotFound(f"{kind[:-1]} {ref} not found")

    def create_service(self, spec: Mapping[str, Any]) -> Object:
        self._gate()
        if any(_names(s) == {spec["Name"]} for s in self.objects(SERVICES)):
            raise errors.Conflict(f"service {spec['Name']} already exists")
        return self.store.create(Object(SERVICES, _new_id(), {"Spec": dict(spec)}))

    def update_service(self, ref: str, version: int, spec: Mapping[str, Any],
                       rollback: bool = False) -> Object:
        current = self._at(SERVICES, ref, version)
        new = current.spec.get("PreviousSpec") if rollback else spec
        return self.store.update(current.with_spec({"Spec": dict(new or {}),
                                                    "PreviousSpec": current.spec["Spec"]}))

    def remove_service(self, ref: str) -> None:
        self.store.delete(SERVICES, self.lookup(SERVICES, ref).id)

    def update_node(self, ref: str, version: int, spec: Mapping[str, Any]) -> Object:
        current = self._at(NODES, ref, version)
        return self.store.update(current.with_spec({**current.spec, "Spec": dict(spec)}))

    def remove_node(self, ref: str, force: bool) -> None:
        self.calls.append(("remove_node", ref, force))
        self.store.delete(NODES, self.lookup(NODES, ref).id)

    def _at(self, kind: str, ref: str, version: int) -> Object:
        current = self.lookup(kind, ref)
        if version != current.version:
            raise errors.InvalidArgument("rpc error: code = Unknown desc = update out of "
                                         "sequence")
        return current


def _names(obj: Object) -> set[str]:
    return {str(n) for n in ((obj.spec.get("Spec") or {}).get("Name"),
                             (obj.spec.get("Description") or {}).get("Hostname")) if n}


class Api:
    def __init__(self, path: str, swarm: FakeSwarm) -> None:
        self.path, self.swarm = path, swarm

    def call(self, method: str, url: str, body: Any = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("localhost", timeout=30)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.connect(self.path)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, url if url.startswith("/v1.") else "/v1.50" + url, body=data)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else None

    def error(self, method: str, url: str, body: Any = None,
              raw: bytes | None = None) -> tuple[int, str]:
        status, data = self.call(method, url, body, raw)
        return status, str((data or {}).get("message"))


@pytest.fixture
def api() -> Iterator[Api]:
    swarm = FakeSwarm()
    backend: SwarmBackend = swarm
    router = Router()
    swarmroutes.register(router, backend)
    base = tempfile.mkdtemp(prefix="dyswarm-", dir="/tmp")
    server = UnixServer(f"{base}/api.sock", handler_class(router.dispatch))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Api(f"{base}/api.sock", swarm)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    return dict(yaml.safe_load(SWAGGER.read_text())["definitions"])


def props(schemas: Mapping[str, Any], name: str) -> set[str]:
    schema, out = schemas[name], set()
    for part in [schema, *schema.get("allOf", [])]:
        if "$ref" in part:
            out |= props(schemas, part["$ref"].rsplit("/", 1)[1])
        out |= set(part.get("properties") or {})
    return out


def spec_of(name: str = "web", **more: Any) -> dict[str, Any]:
    return {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}, **more}


def q(filters: Mapping[str, Any]) -> str:
    return quote(json.dumps(filters))


def seed_node(api: Api, hostname: str, role: str, **labels: str) -> Object:
    return api.swarm.store.create(Object(NODES, _new_id(), {
        "Spec": {"Labels": dict(labels), "Role": role, "Availability": "active"},
        "Description": {"Hostname": hostname, "Engine": {"Labels": {"zone": hostname[0]}}},
        "Status": {"State": "ready", "Addr": "127.0.0.1"}}))


def seed_task(api: Api, service: str, slot: int, node: str, state: str,
              desired: str = "running") -> Object:
    svc = api.swarm.lookup(SERVICES, service)
    template = (svc.spec.get("Spec") or {}).get("TaskTemplate") or {}
    return api.swarm.store.create(Object(TASKS, _new_id(), {
        "Spec": template, "ServiceID": svc.id, "Slot": slot, "NodeID": node, "Labels": {},
        "Status": {"State": state, "Message": state}, "DesiredState": desired}))


# -- state: inactive and worker nodes ------------------------------------------------------

@pytest.mark.parametrize("method,url,body", [
    ("GET", "/swarm", None), ("GET", "/nodes", None), ("GET", "/nodes/x", None),
    ("GET", "/services", None), ("GET", "/services/web", None), ("GET", "/tasks", None),
    ("GET", "/tasks/x", None), ("DELETE", "/nodes/x", None), ("DELETE", "/services/x", None),
    ("GET", "/swarm/unlockkey", None), ("POST", "/swarm/update?version=1", {}),
    ("POST", "/services/create", {"Name": "bad name!"}),  # the state decides first, as moby
    ("GET", "/services?filters=" + q({"colour": ["red"]}), None),
    ("POST", "/services/web/update?version=1", spec_of()),
])
def test_inactive_node_answers_503(api: Api, method: str, url: str, body: Any) -> None:
    api.swarm.role = "inactive"
    assert api.error(method, url, body) == (503, NOT_IN_SWARM)


def test_worker_answers_503_not_a_manager(api: Api) -> None:
    api.swarm.role = "worker"
    for method, url in (("GET", "/nodes"), ("GET", "/swarm"), ("GET", "/tasks")):
        assert api.error(method, url) == (503, NOT_A_MANAGER)


# -- /swarm ------------------------------------------------------------------------------

def test_init_answers_the_node_id_and_passes_the_request(api: Api) -> None:
    api.swarm.reset("inactive")
    status, data = api.call("POST", "/swarm/init", {"AdvertiseAddr": "10.0.0.1",
                                                    "ForceNewCluster": False,
                                                    "Spec": {"Labels": {"a": "b"}},
                                                    "DataPathPort": 4789})
    assert (status, data) == (200, "node0")
    assert api.swarm.calls == [InitRequest(listen_addr="0.0.0.0:2377", advertise_addr="10.0.0.1",
                                           spec={"Labels": {"a": "b"}})]
    assert api.error("POST", "/swarm/init", {}) == (503, ALREADY_IN_SWARM)


@pytest.mark.parametrize("body,raw,text", [
    (None, b"{not json", "invalid JSON"),
    ([], None, "json: cannot unmarshal array into Go value of type swarm.InitRequest"),
    ({"ListenAddr": 2377}, None, "cannot unmarshal number into Go struct field "
                                 "InitRequest.ListenAddr of type string"),
    ({"Spec": []}, None, "Go struct field InitRequest.Spec of type swarm.Spec"),
])
def test_bad_init_bodies_are_400(api: Api, body: Any, raw: bytes | None, text: str) -> None:
    api.swarm.role = "inactive"
    status, message = api.error("POST", "/swarm/init", body, raw)
    assert status == 400 and text in message and not api.swarm.calls


def test_join_and_leave(api: Api) -> None:
    api.swarm.role = "inactive"
    body = {"RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "SWMTKN-1-w",
            "AdvertiseAddr": "10.0.0.2"}
    assert api.call("POST", "/swarm/join", body) == (200, None)
    assert api.swarm.calls == [JoinRequest(["10.0.0.1:2377"], "SWMTKN-1-w", "0.0.0.0:2377",
                                           "10.0.0.2")]
    status, message = api.error("POST", "/swarm/join", {"RemoteAddrs": [1]})
    assert status == 400 and "JoinRequest.RemoteAddrs of type string" in message
    assert api.call("POST", "/swarm/leave?force=1") == (200, None)
    assert api.swarm.calls[-1] == ("leave", True)
    assert api.error("POST", "/swarm/leave") == (503, "This node is not part of a swarm")


def test_swarm_inspect_shape(api: Api, schemas: dict[str, Any]) -> None:
    status, data = api.call("GET", "/swarm")
    assert status == 200 and set(data) <= props(schemas, "Swarm")
    assert {"ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "JoinTokens"} <= set(data)
    assert data["ID"] == "default" and data["Version"]["Index"] > 0


def test_swarm_update_unlock_and_unlockkey(api: Api) -> None:
    assert api.error("POST", "/swarm/update?version=x", {}) == (
        400, "invalid swarm version 'x': strconv.ParseUint: parsing \"x\": invalid syntax")
    assert api.error("POST", "/swarm/update?version=1&rotateWorkerToken=maybe", {})[0] == 400
    version = api.call("GET", "/swarm")[1]["Version"]["Index"]
    assert api.call("POST", f"/swarm/update?version={version}&rotateWorkerToken=true",
                    {})[0] == 200
    assert api.swarm.calls[-1] == ("update_swarm", {}, True, False)
    assert api.call("GET", "/swarm/unlockkey") == (200, {"UnlockKey": ""})
    assert api.error("POST", "/swarm/unlock", {"UnlockKey": "k"}) == (409, "swarm is not locked")


# -- /services ---------------------------------------------------------------------------

def test_create_then_inspect_by_id_name_and_prefix(api: Api, schemas: dict[str, Any]) -> None:
    status, created = api.call("POST", "/services/create", spec_of())
    assert status == 201 and created == {"ID": created["ID"], "Warnings": None}
    assert set(created) == props(schemas, "ServiceCreateResponse")
    for ref in (created["ID"], "web", created["ID"][:5]):
        status, service = api.call("GET", f"/services/{ref}?insertDefaults=true")
        assert status == 200 and service["ID"] == created["ID"]
    assert set(service) <= props(schemas, "Service")
    assert {"ID", "Version", "CreatedAt", "UpdatedAt", "Spec"} <= set(service)
    assert re.match(r"^\d{4}-\d\d-\d\dT", service["CreatedAt"])
    spec = service["Spec"]
    assert set(spec) <= props(schemas, "ServiceSpec")
    assert set(spec["TaskTemplate"]) <= props(schemas, "TaskSpec")
    assert spec["Labels"] == {} and spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["TaskTemplate"]["Runtime"] == "container"
    assert spec["TaskTemplate"]["ForceUpdate"] == 0
    assert spec["TaskTemplate"]["ContainerSpec"] == {"Image": IMAGE, "Isolation": "default"}
    assert api.error("GET", "/services/nope") == (404, "service nope not found")
    assert api.error("GET", "/services/web?insertDefaults=yes")[0] == 400


def test_create_names_a_nameless_service_and_keeps_replicas(api: Api) -> None:
    body = spec_of(Mode={"Replicated": {"Replicas": 0}})
    del body["Name"]
    status, created = api.call("POST", "/services/create", body)
    spec = api.call("GET", f"/services/{created['ID']}")[1]["Spec"]
    assert status == 201 and re.match(r"^[a-z]+_[a-z]+\d?$", spec["Name"])
    assert spec["Mode"] == {"Replicated": {"Replicas": 0}}
    assert api.error("POST", "/services/create", spec_of(spec["Name"])) == (
        409, f"service {spec['Name']} already exists")


REFUSED = [
    (spec_of("bad name!"), 400, INVALID + "name must be valid as a DNS name component"),
    (spec_of("web.1"), 400, INVALID + "name must be valid as a DNS name component"),
    (spec_of("a" * 64), 400, INVALID + "name must be 63 characters or fewer"),
    ({"Name": "x", "TaskTemplate": {"ContainerSpec": {}}}, 400,
     INVALID + "ContainerSpec: image reference must be provided"),
    ({"Name": "x", "TaskTemplate": {}}, 400, "mismatched Runtime and *Spec fields"),
    ({"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "Bad Image"}}}, 400,
     INVALID + 'ContainerSpec: "Bad Image" is not a valid repository/tag'),
    ({"Name": "x", "TaskTemplate": {"Runtime": "vm", "ContainerSpec": {"Image": IMAGE}}}, 400,
     "unsupported runtime"),
    ({"Name": "x", "TaskTemplate": {"Runtime": "plugin", "PluginSpec": {}}}, 501, "plugin"),
    (spec_of(Mode={"Global": {}, "Replicated": {"Replicas": 1}}), 400,
     "must specify only one service mode"),
    (spec_of(Mode={"Replicated": {"Replicas": -1}}), 400,
     "invalid JSON: json: cannot unmarshal number -1 into Go struct field "
     "ReplicatedService.Mode.Replicated.Replicas of type uint64"),
    (spec_of(Mode={"ReplicatedJob": {}}), 501, "job services"),
    ({"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": IMAGE},
                                    "RestartPolicy": {"Condition": "sometimes"}}}, 400,
     'invalid RestartCondition: "sometimes"'),
    (spec_of(UpdateConfig={"FailureAction": "explode"}), 400,
     "unrecognized update failure action explode"),
    (spec_of(RollbackConfig={"Order": "random"}), 400, "unrecognized update order random"),
    (spec_of(EndpointSpec={"Mode": "round"}), 400, 'invalid resolution mode: "round"'),
    (spec_of(EndpointSpec={"Ports": [{"PublishedPort": 8080}]}), 400,
     INVALID + "EndpointSpec: target port must be provided"),
    (spec_of(EndpointSpec={"Mode": "dnsrr", "Ports": [{"TargetPort": 80}]}), 400,
     INVALID + "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"),
    (spec_of(EndpointSpec={"Ports": [
        {"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"},
        {"TargetPort": 81, "PublishedPort": 8080, "PublishMode": "host"}]}), 400,
     INVALID + "EndpointSpec: duplicate published ports provided"),
    ([], 400, "invalid JSON: json: cannot unmarshal array into Go value of type "
              "swarm.ServiceSpec"),
]


@pytest.mark.parametrize("body,status,text", REFUSED)
def test_create_refusals(api: Api, body: Any, status: int, text: str) -> None:
    got, message = api.error("POST", "/services/create", body)
    assert got == status and (message == text if status == 400 else text in message), message
    assert api.call("GET", "/services")[1] == []


def test_create_refuses_bad_json(api: Api) -> None:
    status, message = api.error("POST", "/services/create", raw=b"{not json")
    assert status == 400 and message.startswith("invalid JSON")


def _inspect(api: Api, ref: str) -> dict[str, Any]:
    status, data = api.call("GET", f"/services/{ref}")
    assert status == 200
    return dict(data)


def test_update_rollback_and_refusals(api: Api) -> None:
    api.call("POST", "/services/create", spec_of())
    before = _inspect(api, "web")
    version = before["Version"]["Index"]
    wider = spec_of(Mode={"Replicated": {"Replicas": 3}})
    status, data = api.call("POST", f"/services/web/update?version={version}", wider)
    assert (status, data) == (200, {"Warnings": None})
    after = _inspect(api, "web")
    assert after["Version"]["Index"] > version and after["CreatedAt"] == before["CreatedAt"]
    assert after["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    current = after["Version"]["Index"]
    for value in ("abc", "", "-1"):
        assert api.error("POST", f"/services/web/update?version={value}", wider) == (
            400, f"invalid service version '{value}': strconv.ParseUint: parsing "
                 f"\"{value}\": invalid syntax")
    assert api.error("POST", f"/services/web/update?version={version}", wider) == (
        400, "rpc error: code = Unknown desc = update out of sequence")
    assert api.error("POST", f"/services/web/update?version={current}", spec_of("other")) == (
        501, "rpc error: code = Unimplemented desc = renaming services is not supported")
    assert api.error("POST", f"/services/web/update?version={current}",
                     spec_of(Mode={"Global": {}})) == (
        501, "rpc error: code = Unimplemented desc = service mode change is not allowed")
    assert api.error("POST", f"/services/web/update?version={current}&rollback=undo",
                     wider) == (400, "unrecognized rollback option undo")
    assert api.error("POST", "/services/nope/update?version=1", wider) == (
        404, "service nope not found")
    assert api.error("POST", f"/services/web/update?version={current}",
                     {"Name": "web", "TaskTemplate": {}}) == (
        400, "mismatched Runtime and *Spec fields")
    status, _ = api.call("POST", f"/services/web/update?version={current}&rollback=previous",
                         wider)
    assert status == 200 and _inspect(api, "web")["Spec"] == before["Spec"]


def test_remove(api: Api) -> None:
    api.call("POST", "/services/create", spec_of())
    assert api.call("DELETE", "/services/web") == (200, None)
    assert api.error("GET", "/services/web") == (404, "service web not found")
    assert api.error("DELETE", "/services/web") == (404, "service web not found")


def _three_services(api: Api) -> dict[str, str]:
    ids = {}
    for name, more in (("web", {"Labels": {"tier": "front"}}),
                       ("webhook", {"Labels": {"tier": "back", "canary": ""}}),
                       ("agent", {"Mode": {"Global": {}}})):
        ids[name] = api.call("POST", "/services/create", spec_of(name, **more))[1]["ID"]
    return ids


def _names_of(api: Api, url: str) -> list[str]:
    status, data = api.call("GET", url)
    assert status == 200, data
    return sorted(s["Spec"]["Name"] for s in data)


def test_service_filters(api: Api) -> None:
    ids = _three_services(api)
    cases = [({"name": ["web"]}, ["web", "webhook"]), ({"name": {"age": True}}, ["agent"]),
             ({"id": [ids["agent"][:6]]}, ["agent"]), ({"label": ["tier"]}, ["web", "webhook"]),
             ({"label": ["tier=back"]}, ["webhook"]), ({"label": ["canary="]}, ["webhook"]),
             ({"mode": ["global"]}, ["agent"]), ({"mode": ["replicated"]}, ["web", "webhook"]),
             ({"runtime": ["container"]}, ["agent", "web", "webhook"]),
             ({"runtime": ["plugin"]}, []), ({"name": ["web"], "label": ["tier=front"]}, ["web"]),
             ({}, ["agent", "web", "webhook"])]
    for filters, expected in cases:
        assert _names_of(api, "/services?filters=" + q(filters)) == expected, filters
    assert api.error("GET", "/services?filters=" + q({"colour": ["red"]})) == (
        400, "invalid filter 'colour'")
    assert api.error("GET", "/services?filters=notjson")[0] == 400


def test_service_status_counts_tasks(api: Api, schemas: dict[str, Any]) -> None:
    api.call("POST", "/services/create", spec_of(Mode={"Replicated": {"Replicas": 3}}))
    api.call("POST", "/services/create", spec_of("agent", Mode={"Global": {}}))
    for state, desired in (("running", "running"), ("running", "running"),
                           ("running", "shutdown"), ("failed", "shutdown"),
                           ("complete", "shutdown")):
        seed_task(api, "web", 1, "n1", state, desired)
    for state, desired in (("running", "running"), ("preparing", "running"),
                           ("shutdown", "shutdown")):
        seed_task(api, "agent", 0, "n1", state, desired)
    status, services = api.call("GET", "/services?status=true")
    counts = {s["Spec"]["Name"]: s["ServiceStatus"] for s in services}
    wanted = set(schemas["Service"]["properties"]["ServiceStatus"]["properties"])
    assert status == 200 and set(counts["web"]) == wanted
    assert counts == {"web": {"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0},
                      "agent": {"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 0}}
    assert all("ServiceStatus" not in s for s in api.call("GET", "/services")[1])
    assert all("ServiceStatus" not in s for s in api.call("GET", "/v1.40/services?status=1")[1])
    assert api.error("GET", "/services?status=yes") == (
        400, "invalid value for status: yes: strconv.ParseBool: parsing \"yes\": invalid syntax")


# -- /nodes ------------------------------------------------------------------------------

def test_nodes_list_inspect_and_filters(api: Api, schemas: dict[str, Any]) -> None:
    manager = seed_node(api, "m1", "manager", disk="ssd")
    worker = seed_node(api, "w1", "worker", disk="hdd")
    status, nodes = api.call("GET", "/nodes")
    assert status == 200 and len(nodes) == 2
    assert all(set(n) <= props(schemas, "Node") for n in nodes)
    assert all(set(n["Spec"]) <= props(schemas, "NodeSpec") for n in nodes)
    cases = [({"role": ["manager"]}, [manager.id]), ({"role": ["WORKER"]}, [worker.id]),
             ({"name": ["w"]}, [worker.id]), ({"id": [manager.id[:4]]}, [manager.id]),
             ({"node.label": ["disk=ssd"]}, [manager.id]), ({"label": ["zone=w"]}, [worker.id]),
             ({"membership": ["accepted"]}, sorted([manager.id, worker.id])),
             ({"membership": ["pending"]}, [])]
    for filters, expected in cases:
        found = api.call("GET", "/nodes?filters=" + q(filters))[1]
        assert sorted(n["ID"] for n in found) == expected, filters
    assert api.error("GET", "/nodes?filters=" + q({"role": ["boss"]})) == (
        400, "Invalid role filter: 'boss'")
    assert api.error("GET", "/nodes?filters=" + q({"availability": ["x"]})) == (
        400, "invalid filter 'availability'")
    assert api.call("GET", "/nodes/w1")[1]["ID"] == worker.id
    assert api.call("GET", f"/nodes/{manager.id}")[1] == view(manager)
    assert api.error("GET", "/nodes/nope") == (404, "node nope not found")


def test_node_update_and_remove(api: Api) -> None:
    worker = seed_node(api, "w1", "worker")
    spec = {"Role": "Worker", "Availability": "DRAIN", "Labels": {"a": "b"}}
    assert api.call("POST", f"/nodes/w1/update?version={worker.version}", spec) == (200, None)
    node = api.call("GET", "/nodes/w1")[1]
    assert node["Spec"] == {"Role": "worker", "Availability": "drain", "Labels": {"a": "b"}}
    version = node["Version"]["Index"]
    assert api.error("POST", f"/nodes/w1/update?version={version}", {"Role": "boss"}) == (
        400, 'invalid Role: "boss"')
    assert api.error("POST", f"/nodes/w1/update?version={version}",
                     {"Role": "worker", "Availability": ""}) == (400, 'invalid Availability: ""')
    assert api.error("POST", "/nodes/w1/update?version=v1", spec) == (
        400, "invalid node version 'v1': strconv.ParseUint: parsing \"v1\": invalid syntax")
    assert api.error("POST", f"/nodes/w1/update?version={version}", [])[0] == 400
    assert api.error("POST", "/nodes/nope/update?version=1", spec) == (404, "node nope not found")
    assert api.call("DELETE", "/nodes/w1?force=true") == (200, None)
    assert api.swarm.calls[-1] == ("remove_node", "w1", True)
    assert api.error("DELETE", "/nodes/w1") == (404, "node w1 not found")


# -- /tasks ------------------------------------------------------------------------------

def _task_ids(api: Api, filters: Mapping[str, Any]) -> list[str]:
    status, data = api.call("GET", "/tasks?filters=" + q(filters))
    assert status == 200, data
    return sorted(t["ID"] for t in data)


def test_tasks_list_inspect_and_filters(api: Api, schemas: dict[str, Any]) -> None:
    ids = _three_services(api)
    n1, n2 = seed_node(api, "n1", "manager"), seed_node(api, "n2", "worker")
    w1 = seed_task(api, "web", 1, n1.id, "running")
    w2 = seed_task(api, "web", 2, n2.id, "failed", "shutdown")
    hook = seed_task(api, "webhook", 1, n2.id, "running")
    agent = seed_task(api, "agent", 0, n1.id, "running")
    status, tasks = api.call("GET", "/tasks")
    assert status == 200 and len(tasks) == 4
    assert all(set(t) <= props(schemas, "Task") for t in tasks)
    cases = [({"service": ["web"]}, [w1, w2]), ({"service": [ids["agent"]]}, [agent]),
             ({"node": ["n2"]}, [w2, hook]), ({"node": [n1.id]}, [w1, agent]),
             ({"desired-state": ["shutdown"]}, [w2]), ({"desired-state": ["RUNNING"]},
                                                       [w1, hook, agent]),
             ({"name": ["web.1"]}, [w1]), ({"name": [f"web.2.{w2.id}"]}, [w2]),
             ({"name": [f"agent.{n1.id}"]}, [agent]), ({"name": ["web"]}, [w1, w2, hook]),
             ({"label": ["tier=front"]}, [w1, w2]), ({"id": [hook.id[:6]]}, [hook]),
             ({"service": ["web"], "node": ["n1"]}, [w1]), ({"runtime": ["plugin"]}, []),
             ({"_up-to-date": ["true"]}, [w1, w2, hook, agent])]
    for filters, expected in cases:
        assert _task_ids(api, filters) == sorted(t.id for t in expected), filters
    assert api.error("GET", "/tasks?filters=" + q({"service": ["nope"]})) == (
        404, "service nope not found")
    assert api.error("GET", "/tasks?filters=" + q({"node": ["nope"]})) == (
        404, "node nope not found")
    assert api.error("GET", "/tasks?filters=" + q({"desired-state": ["dancing"]})) == (
        400, "Invalid desired-state filter: 'dancing'")
    assert api.error("GET", "/tasks?filters=" + q({"slot": ["1"]})) == (
        400, "invalid filter 'slot'")
    assert api.call("GET", f"/tasks/{w1.id}") == (200, view(w1))
    assert api.error("GET", "/tasks/nope") == (404, "task nope not found")


def test_up_to_date_tasks_run_the_current_template(api: Api) -> None:
    api.call("POST", "/services/create", spec_of())
    old = seed_task(api, "web", 1, "n1", "running")
    service = _inspect(api, "web")
    newer = spec_of(TaskTemplate={"ContainerSpec": {"Image": "bb:2"}})
    assert api.call("POST", f"/services/web/update?version={service['Version']['Index']}",
                    newer)[0] == 200
    new = seed_task(api, "web", 1, "n1", "starting")
    assert _task_ids(api, {"_up-to-date": ["1"], "service": ["web"]}) == [new.id]
    assert _task_ids(api, {"service": ["web"]}) == sorted([old.id, new.id])
