"""The API half of a swarm node: reads (info, inspect, objects, lookup) and the manager's
writes to services and nodes, all through the cluster store with version checks."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.cluster import etcdmembers
from dockyard.cluster import membership as ms
from dockyard.cluster.netalloc import NODE_ATTACHMENTS
from dockyard.cluster.netviews import NetworkViews
from dockyard.cluster.objects import (CLUSTER, CLUSTER_ID, HEARTBEATS, NODES, SERVICES, TASKS,
                                      new_id)
from dockyard.cluster.secrets import SecretViews
from dockyard.cluster.store import Object, Store
from dockyard.types.swarm import NO_CA, view

if TYPE_CHECKING:
    from dockyard.cluster.membership import Membership

_KINDS = {NODES: "node", SERVICES: "service", TASKS: "task"}
PRECONDITION = "rpc error: code = FailedPrecondition desc = "
OUT_OF_SEQUENCE = "rpc error: code = Unknown desc = update out of sequence"
# what swarmkit fills in for a cluster spec's missing fields (moby: "0 or nil: the default")
SPEC_DEFAULTS: dict[str, dict[str, Any]] = {
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0,
             "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1},
    "Dispatcher": {"HeartbeatPeriod": 5_000_000_000},
    "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000},  # 2160h
    "TaskDefaults": {}, "EncryptionConfig": {"AutoLockManagers": False}}


def cluster_spec(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The cluster spec as stored: the client's, nulls (docker sends many) left out, and
    swarmkit's defaults for what is missing."""
    spec = {k: v for k, v in (given or {}).items() if v is not None}
    for section, defaults in SPEC_DEFAULTS.items():
        mine = {k: v for k, v in (spec.get(section) or {}).items() if v is not None}
        spec[section] = {**defaults, **mine}
    return {**spec, "Name": spec.get("Name") or "default", "Labels": spec.get("Labels") or {}}


class NodeViews(NetworkViews, SecretViews):
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

    def update_swarm(self, version: int, spec: Mapping[str, Any], rotate_worker: bool = False,
                     rotate_manager: bool = False) -> None:
        """``POST /swarm/update``: the whole spec replaced (defaults for what is missing), join
        tokens rotated on request; the root CA cannot be rotated (no TLS between nodes)."""
        store = self._manager_store()
        current = store.get(CLUSTER, CLUSTER_ID)
        if version != current.version:
            raise errors.InvalidArgument(OUT_OF_SEQUENCE)
        new = cluster_spec(spec)
        old_ca, new_ca = current.spec.get("Spec", {}).get("CAConfig") or {}, new["CAConfig"]
        if new_ca.get("ForceRotate", 0) != old_ca.get("ForceRotate", 0):
            raise errors.NotImplementedYet(NO_CA)
        tokens = dict(current.spec.get("JoinTokens") or {})
        for wanted, role in ((rotate_worker, "Worker"), (rotate_manager, "Manager")):
            if wanted:
                tokens[role] = ms.rotated(tokens.get(role, ""))
        try:
            store.update(current.with_spec({**current.spec, "Spec": new, "JoinTokens": tokens}))
        except errors.Conflict as exc:
            raise errors.InvalidArgument(OUT_OF_SEQUENCE) from exc

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
        if manager_addr:  # the node is a manager in fact (a promotion may be under way)
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
        self.check_references(spec)
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
        self.check_references(spec)
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
        """A role change is only written here; the node itself then joins or leaves the
        managers' Raft group (``SwarmNode._reconcile_role``). A demotion is checked as
        swarmkit does and takes the node out of the Raft group at once."""
        store = self._manager_store()
        current = store.get(NODES, self.lookup(NODES, ref).id)
        if version != current.version:
            raise errors.InvalidArgument(OUT_OF_SEQUENCE)
        was = (current.spec.get("Spec") or {}).get("Role")
        body = {**current.spec, "Spec": {**dict(spec), "Role": spec.get("Role") or was}}
        demote = was == "manager" and body["Spec"]["Role"] == "worker"
        if demote:
            self._check_demotion(store, current.id)
            body["ManagerAddr"] = ""
        try:
            updated = store.update(current.with_spec(body))
        except errors.Conflict as exc:
            raise errors.InvalidArgument(OUT_OF_SEQUENCE) from exc
        if demote and not _alive(store, current.id):  # a live node leaves Raft itself
            assert self.member is not None
            etcdmembers.remove(self.member.endpoints, current.id)
        return updated

    def _check_demotion(self, store: Store, node_id: str) -> None:
        managers = [n.id for n in store.list(NODES).objects
                    if (n.spec.get("Spec") or {}).get("Role") == "manager"]
        if managers == [node_id]:
            raise errors.InvalidArgument(PRECONDITION + "attempting to demote the last manager "
                                         "of the swarm")
        assert self.member is not None
        members = etcdmembers.members(self.member.endpoints)
        if not any(m.name == node_id for m in members):
            raise errors.NotFound("rpc error: code = NotFound desc = can't find manager in "
                                  "raft memberlist")
        if not etcdmembers.can_remove(members, node_id):
            raise errors.InvalidArgument(PRECONDITION + "can't remove member from the raft: "
                                         "this would result in a loss of quorum")

    def remove_node(self, ref: str, force: bool) -> None:
        store = self._manager_store()
        node = self.lookup(NODES, ref)
        if (node.spec.get("Spec") or {}).get("Role") == "manager":  # even with --force
            raise errors.InvalidArgument(f"{PRECONDITION}node {node.id} is a cluster manager "
                                         "and is a member of the raft cluster. It must be "
                                         "demoted to worker before removal")
        if node.spec["Status"]["State"] != "down" and not force:
            raise errors.InvalidArgument(f"{PRECONDITION}node {node.id} is not down and can't "
                                         "be removed")
        store.delete(NODES, node.id)
        try:
            store.delete(HEARTBEATS, node.id)
        except errors.NotFound:
            pass


def _alive(store: Store, node_id: str) -> bool:
    try:
        store.get(HEARTBEATS, node_id)
        return True
    except errors.NotFound:
        return False


def _names(kind: str, obj: Object) -> set[str]:
    spec = obj.spec.get("Spec") or {}
    if kind == SERVICES:
        return {str(spec.get("Name", ""))}
    if kind == NODES:
        hostname = (obj.spec.get("Description") or {}).get("Hostname", "")
        return {str(spec.get("Name") or ""), str(hostname)} - {""}
    return set()
