"""The API half of a swarm node: reads (info, inspect, objects, lookup) and the manager's
writes to services and nodes, all through the cluster store with version checks."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.cluster.netalloc import NODE_ATTACHMENTS
from dockyard.cluster.netviews import NetworkViews
from dockyard.cluster.objects import (CLUSTER, CLUSTER_ID, HEARTBEATS, NODES, SERVICES, TASKS,
                                      new_id)
from dockyard.cluster.store import Object, Store
from dockyard.types.swarm import view

if TYPE_CHECKING:
    from dockyard.cluster.membership import Membership

_KINDS = {NODES: "node", SERVICES: "service", TASKS: "task"}


class NodeViews(NetworkViews):
    member: Membership | None

    def __init__(self) -> None:
        self._store: Store | None = None
        self.error = ""

    # provided by SwarmNode
    def _manager_store(self) -> Store:
        raise NotImplementedError

    def _leader(self) -> str | None:
        raise NotImplementedError

    def state(self) -> str:
        raise NotImplementedError

    # -- reads --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        member = self.member
        if member is None:
            return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                    "ControlAvailable": False, "Error": "", "RemoteManagers": None}
        out: dict[str, Any] = {"NodeID": member.node_id, "NodeAddr": member.addr,
                               "LocalNodeState": self.state(),
                               "ControlAvailable": member.manager, "Error": self.error,
                               "RemoteManagers": None}
        store = self._store
        if store is None:
            return out
        try:
            nodes = self.objects(NODES)
            out["RemoteManagers"] = [
                {"NodeID": n.id, "Addr": (n.spec.get("ManagerStatus") or {}).get("Addr", "")}
                for n in nodes if n.spec.get("ManagerStatus")]
            out["Nodes"] = len(nodes)
            out["Managers"] = len(out["RemoteManagers"])
            if member.manager:
                cluster = dict(view(store.get(CLUSTER, CLUSTER_ID)))
                cluster.pop("JoinTokens", None)
                out["Cluster"] = cluster
        except errors.DockyardError as exc:
            out["Error"] = str(exc)
        return out

    def inspect(self) -> dict[str, Any]:
        obj = self._manager_store().get(CLUSTER, CLUSTER_ID)
        return view(obj)

    def objects(self, kind: str) -> list[Object]:
        store = self._manager_store()
        found = store.list(kind).objects
        if kind != NODES:
            return found
        alive = {o.id for o in store.list(HEARTBEATS).objects}
        leader = self._leader()
        return [self._node_view(o, o.id in alive, leader) for o in found]

    @staticmethod
    def _node_view(obj: Object, alive: bool, leader: str | None) -> Object:
        spec = dict(obj.spec)
        addr = str(spec.pop("Addr", ""))
        manager_addr = str(spec.pop("ManagerAddr", ""))
        spec.pop("DataPort", None)
        spec.pop(NODE_ATTACHMENTS, None)
        spec["Status"] = {"State": "ready" if alive else "down", "Addr": addr}
        if (spec.get("Spec") or {}).get("Role") == "manager":
            spec["ManagerStatus"] = {"Leader": obj.id == leader,
                                     "Reachability": "reachable" if alive else "unreachable",
                                     "Addr": manager_addr}
        return obj.with_spec(spec)

    def lookup(self, kind: str, ref: str) -> Object:
        objects = self.objects(kind)
        for obj in objects:
            if obj.id == ref:
                return obj
        named = [o for o in objects if ref in _names(kind, o)]
        if len(named) == 1:
            return named[0]
        prefixed = [o for o in objects if o.id.startswith(ref)] if ref else []
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1 or len(named) > 1:
            raise errors.InvalidArgument(f"{_KINDS.get(kind, kind)} {ref} is ambiguous "
                                         f"({len(prefixed) or len(named)} matches found)")
        raise errors.NotFound(f"{_KINDS.get(kind, kind)} {ref} not found")

    # -- manager writes -----------------------------------------------------------------
    def create_service(self, spec: Mapping[str, Any]) -> Object:
        store = self._manager_store()
        name = str(spec.get("Name") or "")
        if any(s.spec.get("Spec", {}).get("Name") == name
               for s in store.list(SERVICES).objects):
            raise errors.Conflict(f"rpc error: code = AlreadyExists desc = name conflicts "
                                  f"with an existing object: service {name} already exists")
        self.check_ports(spec)
        endpoint = {"Spec": dict(spec.get("EndpointSpec") or {"Mode": "vip"})}
        return store.create(Object(SERVICES, new_id(), {"Spec": dict(spec),
                                                        "Endpoint": endpoint}))

    def update_service(self, ref: str, version: int, spec: Mapping[str, Any],
                       rollback: bool = False) -> Object:
        store = self._manager_store()
        current = self.lookup(SERVICES, ref)
        if version != current.version:
            raise errors.InvalidArgument("rpc error: code = Unknown desc = update out of "
                                         "sequence")
        old = current.spec.get("Spec") or {}
        if rollback:
            previous = current.spec.get("PreviousSpec")
            if not previous:
                raise errors.InvalidArgument(f"service {current.id} does not have a previous "
                                             "spec")
            spec = previous
        self.check_ports(spec, current.id)
        endpoint = {**(current.spec.get("Endpoint") or {}),  # the allocator's VirtualIPs stay
                    "Spec": dict(spec.get("EndpointSpec") or {"Mode": "vip"})}
        body = {**current.spec, "Spec": dict(spec), "PreviousSpec": old, "Endpoint": endpoint}
        try:
            return store.update(current.with_spec(body))
        except errors.Conflict as exc:
            raise errors.InvalidArgument("rpc error: code = Unknown desc = update out of "
                                         "sequence") from exc

    def remove_service(self, ref: str) -> None:
        current = self.lookup(SERVICES, ref)
        self._manager_store().delete(SERVICES, current.id)

    def update_node(self, ref: str, version: int, spec: Mapping[str, Any]) -> Object:
        store = self._manager_store()
        current = store.get(NODES, self.lookup(NODES, ref).id)
        if version != current.version:
            raise errors.InvalidArgument("rpc error: code = Unknown desc = update out of "
                                         "sequence")
        role = spec.get("Role")
        if role not in (None, (current.spec.get("Spec") or {}).get("Role")):
            raise errors.NotImplementedYet("changing a node's role is not supported yet")
        return store.update(current.with_spec({**current.spec, "Spec": dict(spec)}))

    def remove_node(self, ref: str, force: bool) -> None:
        store = self._manager_store()
        node = self.lookup(NODES, ref)
        if node.spec["Status"]["State"] != "down" and not force:
            raise errors.InvalidArgument(f"rpc error: code = FailedPrecondition desc = node "
                                         f"{node.id} is not down and can't be removed")
        if (node.spec.get("Spec") or {}).get("Role") == "manager":
            raise errors.InvalidArgument(f"rpc error: code = FailedPrecondition desc = node "
                                         f"{node.id} is a cluster manager and is a member of "
                                         "the raft cluster. It must be demoted to worker "
                                         "before removal")
        store.delete(NODES, node.id)
        try:
            store.delete(HEARTBEATS, node.id)
        except errors.NotFound:
            pass


def _names(kind: str, obj: Object) -> set[str]:
    spec = obj.spec.get("Spec") or {}
    if kind == SERVICES:
        return {str(spec.get("Name", ""))}
    if kind == NODES:
        hostname = (obj.spec.get("Description") or {}).get("Hostname", "")
        return {str(spec.get("Name") or ""), str(hostname)} - {""}
    return set()
