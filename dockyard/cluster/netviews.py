"""The swarm backend's networks: create, list, remove, and services' network targets.

A swarm network is a ``networks/<id>`` object whose spec is Docker's ``GET /networks`` object
minus ``Id`` and ``Created`` (``netalloc.network_spec``). Creating one picks its subnet and
VNI (``netalloc``) inside a transaction that fails if another network was created meanwhile
(the caller retries); the addresses on it are the manager's allocator's business.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.cluster import netalloc
from dockyard.cluster.objects import NETWORKS, SERVICES, TASKS, new_id, terminal
from dockyard.cluster.store import Object, Put, Store
from dockyard.types.swarm import NOT_IN_SWARM, NetworkRequest


def quote(text: str) -> str:
    """Go's ``%q`` for a network name."""
    return json.dumps(text, ensure_ascii=False)

if TYPE_CHECKING:
    from dockyard.cluster.membership import Membership

WORKER_CREATE = ("Cannot create a multi-host network from a worker node. Please create the "
                 "network from a manager node.")


class NetworkViews:
    member: Membership | None
    _store: Store | None

    def _manager_store(self) -> Store:
        raise NotImplementedError

    def networks(self) -> list[Object]:
        store = self._store
        if self.member is None or store is None:
            return []
        return store.list(NETWORKS).objects

    def network(self, ref: str) -> Object:
        """By id, name, then unique id prefix; NotFound as Docker words it."""
        found = self.networks()
        for match in (lambda o: o.id == ref, lambda o: o.spec.get("Name") == ref,
                      lambda o: bool(ref) and o.id.startswith(ref)):
            hits = [o for o in found if match(o)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise errors.InvalidArgument(f"network {ref} is ambiguous ({len(hits)} matches "
                                             "found based on ID prefix)")
        raise errors.NotFound(f"network {ref} not found")

    def create_network(self, request: NetworkRequest) -> Object:
        if self.member is None or self._store is None:
            raise errors.Unavailable(NOT_IN_SWARM)
        if not self.member.manager:
            raise errors.Forbidden(WORKER_CREATE)
        store = self._manager_store()
        for _ in range(5):
            nets = [netalloc.Net.of(o) for o in store.list(NETWORKS).objects]
            if any(n.name == request.name for n in nets):
                raise errors.Conflict(f"network with name {request.name} already exists")
            used = [n.subnet for n in nets]
            if request.subnet:
                subnet, gateway = netalloc.check_subnet(request.subnet, request.gateway, used)
            else:
                subnet = netalloc.choose_subnet(used, [IPv4Network(t, strict=False)
                                                       for t in request.taken])
                gateway = subnet.network_address + 1
            spec = netalloc.network_spec(request.name, subnet, gateway,
                                         netalloc.next_vni(nets),
                                         attachable=request.attachable,
                                         internal=request.internal, labels=request.labels,
                                         options=request.options)
            # no network added meanwhile (its subnet or VNI could be ours): every create
            # writes one marker object, with its version checked
            marker = Object(NETWORKS + "-epoch", "last", {"Networks": len(nets)})
            try:
                prior = store.get(marker.kind, marker.id)
                writes = [Put(prior.with_spec({"Networks": len(nets), "Name": request.name}))]
            except errors.NotFound:
                writes = [Put(marker)]
            obj = Object(NETWORKS, new_id(), spec)
            try:
                return store.transaction([], [*writes, Put(obj)]).objects[-1]
            except errors.Conflict:
                continue
        raise errors.Unavailable("the swarm's networks changed while creating this one: "
                                 "try again")

    def remove_network(self, ref: str) -> None:
        store = self._manager_store()
        net = self.network(ref)
        services = store.list(SERVICES).objects
        if net.spec.get("Ingress"):
            for s in services:
                if netalloc.meshed(s):
                    raise errors.InvalidArgument(
                        "rpc error: code = FailedPrecondition desc = ingress network cannot "
                        f"be removed because service {s.id} depends on it")
        for s in services:
            if any(t == net.id for t, _ in netalloc.service_networks(s.spec.get("Spec") or {})):
                raise errors.InvalidArgument(f"rpc error: code = FailedPrecondition desc = "
                                             f"network {net.id} is in use by service {s.id}")
        for t in store.list(TASKS).objects:
            # as swarmkit: tasks on their way out (desired state past running, or of a service
            # just removed, as `stack rm` does right before removing the networks) don't count
            state = str((t.spec.get("Status") or {}).get("State", "new"))
            leaving = t.spec.get("DesiredState", "running") != "running" or \
                t.spec.get("ServiceID") not in {s.id for s in services}
            if net.id in netalloc.task_addresses(t) and not terminal(state) and not leaving:
                raise errors.InvalidArgument(f"rpc error: code = FailedPrecondition desc = "
                                             f"network {net.id} is in use by task {t.id}")
        store.delete(NETWORKS, net.id, net.version)

    def _attachable(self, ref: str) -> str:
        net = self.network(ref)
        if net.spec.get("Ingress"):
            raise errors.InvalidArgument(
                "rpc error: code = InvalidArgument desc = Service cannot be explicitly "
                f"attached to the ingress network {quote(str(net.spec.get('Name', '')))}")
        return net.id

    def check_ports(self, spec: Mapping[str, Any], service_id: str = "") -> None:
        """A port published through the mesh by another service is refused, as swarmkit
        does."""
        store = self._manager_store()
        mine = {(str(p.get("Protocol") or "tcp"), int(p.get("PublishedPort") or 0))
                for p in netalloc.ingress_ports(spec.get("EndpointSpec"))}
        for s in store.list(SERVICES).objects:
            if s.id == service_id:
                continue
            theirs = [*netalloc.ingress_ports((s.spec.get("Spec") or {}).get("EndpointSpec")),
                      *netalloc.ingress_ports(s.spec.get("Endpoint"))]
            for p in theirs:
                key = (str(p.get("Protocol") or "tcp"), int(p.get("PublishedPort") or 0))
                if key[1] and key in mine:
                    name = str((s.spec.get("Spec") or {}).get("Name", ""))
                    raise errors.InvalidArgument(
                        f"rpc error: code = InvalidArgument desc = port '{key[1]}' is already "
                        f"in use by service '{name}' ({s.id}) as an ingress port")

    @staticmethod
    def ingress_network() -> Object:
        """The routing mesh's network, made with the swarm (``swarm init``)."""
        return Object(NETWORKS, new_id(), netalloc.ingress_spec())

    def resolve_networks(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(spec)
        template = dict(out.get("TaskTemplate") or {})
        for holder, key in ((template, "Networks"), (out, "Networks")):
            given = holder.get(key)
            if given:
                holder[key] = [{**n, "Target": self._attachable(str(n.get("Target") or ""))}
                               for n in given]
        if out.get("Networks") and not template.get("Networks"):
            # the deprecated ServiceSpec.Networks moves where tasks read it, as moby does
            template["Networks"] = out.pop("Networks")
        out["TaskTemplate"] = template
        return out
