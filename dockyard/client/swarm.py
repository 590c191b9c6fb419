"""The swarm half of the Engine API client: swarm, nodes, services and tasks.

Requests carry what the docker CLI sends (``InitRequest``/``JoinRequest`` with every field,
query values spelled ``true``/``1`` the way Go's client spells them); answers are the wire
objects as decoded JSON (``Spec``, ``Status``, ``Version.Index``…).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from dockyard.client.api import APIClient

Filters = Mapping[str, Mapping[str, bool]]
Wire = dict[str, Any]


def empty_swarm_spec() -> Wire:
    """The zero ``swarm.Spec`` as Go marshals it (what ``swarm init`` sends by default)."""
    return {"Labels": None, "Orchestration": {}, "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
            "Dispatcher": {}, "CAConfig": {}, "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": False}}


@dataclass(frozen=True)
class InitRequest:
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""
    data_path_addr: str = ""
    force_new_cluster: bool = False
    autolock: bool = False
    availability: str = "active"
    spec: Mapping[str, Any] = field(default_factory=empty_swarm_spec)

    def body(self) -> Wire:
        return {"ListenAddr": self.listen_addr, "AdvertiseAddr": self.advertise_addr,
                "DataPathAddr": self.data_path_addr, "DataPathPort": 0,
                "ForceNewCluster": self.force_new_cluster, "Spec": dict(self.spec),
                "AutoLockManagers": self.autolock, "Availability": self.availability,
                "DefaultAddrPool": [], "SubnetSize": 24}


@dataclass(frozen=True)
class JoinRequest:
    remote_addrs: Sequence[str]
    join_token: str
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""
    data_path_addr: str = ""
    availability: str = "active"

    def body(self) -> Wire:
        return {"ListenAddr": self.listen_addr, "AdvertiseAddr": self.advertise_addr,
                "DataPathAddr": self.data_path_addr, "RemoteAddrs": list(self.remote_addrs),
                "JoinToken": self.join_token, "Availability": self.availability}


def _ref(ref: str) -> str:
    return quote(ref, safe="")


def _filters(filters: Filters | None) -> dict[str, Any] | None:
    return {k: dict(v) for k, v in filters.items()} if filters else None


class SwarmAPI:
    """Typed calls over one :class:`APIClient` (errors are its ``APIError``)."""

    def __init__(self, api: APIClient) -> None:
        self.api = api

    # -- swarm ------------------------------------------------------------------------------
    def init(self, request: InitRequest) -> str:
        return str(self.api.post("/swarm/init", json_body=request.body()))

    def join(self, request: JoinRequest) -> None:
        self.api.post("/swarm/join", json_body=request.body())

    def leave(self, force: bool = False) -> None:
        self.api.post("/swarm/leave", {"force": "1" if force else None})

    def inspect(self) -> Wire:
        return dict(self.api.get("/swarm") or {})

    def update(self, version: int, spec: Mapping[str, Any], rotate_worker: bool = False,
               rotate_manager: bool = False) -> None:
        query = {"version": version, "rotateWorkerToken": _bool(rotate_worker),
                 "rotateManagerToken": _bool(rotate_manager),
                 "rotateManagerUnlockKey": "false"}
        self.api.post("/swarm/update", query, json_body=dict(spec))

    def info(self) -> Wire:
        return dict(self.api.get("/info") or {})

    # -- nodes ------------------------------------------------------------------------------
    def nodes(self, filters: Filters | None = None) -> list[Wire]:
        return list(self.api.get("/nodes", {"filters": _filters(filters)}) or [])

    def node(self, ref: str) -> Wire:
        return dict(self.api.get(f"/nodes/{_ref(ref)}") or {})

    def update_node(self, node_id: str, version: int, spec: Mapping[str, Any]) -> None:
        self.api.post(f"/nodes/{_ref(node_id)}/update", {"version": version},
                      json_body=dict(spec))

    def remove_node(self, ref: str, force: bool = False) -> None:
        self.api.delete(f"/nodes/{_ref(ref)}", {"force": "1" if force else None})

    # -- services ---------------------------------------------------------------------------
    def services(self, filters: Filters | None = None, status: bool = False) -> list[Wire]:
        query = {"filters": _filters(filters), "status": "true" if status else None}
        return list(self.api.get("/services", query) or [])

    def service(self, ref: str, insert_defaults: bool = False) -> Wire:
        query = {"insertDefaults": _bool(insert_defaults)}
        return dict(self.api.get(f"/services/{_ref(ref)}", query) or {})

    def service_raw(self, ref: str, insert_defaults: bool = False) -> str:
        """The answer's own bytes (``inspect`` prints them re-indented, key order kept)."""
        query = {"insertDefaults": _bool(insert_defaults)}
        with self.api.request("GET", f"/services/{_ref(ref)}", query) as resp:
            return bytes(resp.read()).decode("utf-8")

    def create_service(self, spec: Mapping[str, Any], registry_auth: str = "") -> Wire:
        """``{"ID": …, "Warnings": […]}``."""
        return dict(self.api.call("POST", "/services/create", json_body=dict(spec),
                                  headers=_auth(registry_auth)) or {})

    def update_service(self, service_id: str, version: int, spec: Mapping[str, Any],
                       registry_auth_from: str = "", rollback: str = "",
                       registry_auth: str = "") -> Wire:
        query = {"version": version, "registryAuthFrom": registry_auth_from or None,
                 "rollback": rollback or None}
        return dict(self.api.call("POST", f"/services/{_ref(service_id)}/update", query,
                                  json_body=dict(spec), headers=_auth(registry_auth)) or {})

    def remove_service(self, ref: str) -> None:
        self.api.delete(f"/services/{_ref(ref)}")

    def distribution(self, image: str, registry_auth: str = "") -> Wire:
        """``GET /distribution/{name}/json``: the image's registry digest and platforms."""
        return dict(self.api.call("GET", f"/distribution/{quote(image, safe=':@/')}/json",
                                  headers=_auth(registry_auth)) or {})

    def network(self, ref: str) -> Wire:
        return dict(self.api.get(f"/networks/{_ref(ref)}") or {})

    # -- tasks ------------------------------------------------------------------------------
    def tasks(self, filters: Filters | None = None) -> list[Wire]:
        return list(self.api.get("/tasks", {"filters": _filters(filters)}) or [])


def _auth(registry_auth: str) -> dict[str, str] | None:
    return {"X-Registry-Auth": registry_auth} if registry_auth else None


def _bool(value: bool) -> str:
    return "true" if value else "false"
