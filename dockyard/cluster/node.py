"""This daemon as a swarm node: init/join/leave, the loops it runs, and the API backend.

A manager runs an etcd member (``host.etcd``) and the :class:`~dockyard.cluster.manager.Manager`
campaign; every node runs a heartbeat (a key on a short lease: its presence is the node's
``ready``) and its :class:`~dockyard.cluster.agent.Agent`. All of them only talk to the
cluster store. The membership survives daemon restarts (``membership``); ``boot`` resumes it.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.cluster import etcdmembers
from dockyard.cluster import membership as ms
from dockyard.cluster.agent import Agent, Executor
from dockyard.cluster.agentnet import DEFAULT_DATA_PORT
from dockyard.types.swarm import (ALREADY_IN_SWARM, NOT_A_MANAGER, NOT_IN_SWARM, InitRequest,
                                  JoinRequest)
from dockyard.cluster.etcdstore import EtcdStore
from dockyard.cluster.manager import Manager
from dockyard.cluster.nodeviews import NodeViews, cluster_spec
from dockyard.cluster.objects import (CLUSTER, CLUSTER_ID, HEARTBEATS, LEADER_ELECTION, NODES,
                                      new_id)
from dockyard.cluster.store import Object, Put, Store
from dockyard.host import etcd, netaddr
from dockyard.util.timefmt import now_rfc3339

log = logging.getLogger("dockyard.cluster")

ROOT = "/dockyard-swarm"
HEARTBEAT_TTL = 5
TICK = 0.5


class SwarmNode(NodeViews):
    def __init__(self, directory: Path, executor: Executor,
                 describe: Callable[[], dict[str, Any]],
                 data_port: int = DEFAULT_DATA_PORT) -> None:
        super().__init__()
        self.directory, self.executor, self.describe = directory, executor, describe
        self.data_port = data_port  # this node's VXLAN port, advertised in its node object
        self.state_file = directory / "state.json"
        self.member: ms.Membership | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lease = 0
        self._manager: Manager | None = None
        self._role_retry = 0.0  # monotonic time before which a failed role change waits

    # -- lifecycle ----------------------------------------------------------------------
    def boot(self) -> None:
        member = ms.load(self.state_file)
        if member is None:
            return
        try:
            self._connect(member)
        except errors.DockyardError as exc:
            log.error("swarm: cannot resume membership: %s", exc)
            self.error = str(exc)
            self.member = member

    def close(self) -> None:
        """Daemon shutdown: stop the loops and this manager's etcd member; stay a member."""
        self._halt()
        self._release_networks(False)
        if self.member is not None and self.member.manager:
            etcd.stop(self.directory / "etcd")

    def state(self) -> str:
        if self.member is None:
            return "inactive"
        return "error" if self.error else "active"

    def ping(self) -> str:
        member, state = self.member, self.state()
        if member is None or state != "active":
            return state
        return f"active/{member.role}"

    def init(self, request: InitRequest) -> str:
        with self._lock:
            if self.member is not None:
                raise errors.Unavailable(ALREADY_IN_SWARM)
            host, port = ms.split_addr(request.listen_addr)
            addr = ms.split_addr(request.advertise_addr, port)[0] if request.advertise_addr \
                else _advertise_for(host)
            node_id = new_id()
            listen = addr if host in ("0.0.0.0", "::", "") else host
            member = ms.Membership(node_id, "manager", addr, [f"http://{addr}:{port}"],
                                   f"{listen}:{port}", f"{listen}:{port + 1}",
                                   f"{listen}:{port}")
            etcd.start(etcd.Member(self.directory / "etcd", node_id, member.member_client,
                                   member.member_peer))
            try:
                store = EtcdStore(member.endpoints, root=ROOT)
                now = now_rfc3339()
                store.create(Object(CLUSTER, CLUSTER_ID, {
                    "Spec": cluster_spec(request.spec),
                    "JoinTokens": ms.new_tokens(), "CreatedAt": now,
                    "RootRotationInProgress": False}))
                store.create(self.ingress_network())
                self._register(store, member)
                store.close()
                self._connect(member, start_member=False)
            except BaseException:
                self._halt()
                etcd.stop(self.directory / "etcd")
                raise
            ms.save(self.state_file, member)
            return node_id

    def join(self, request: JoinRequest) -> None:
        with self._lock:
            if self.member is not None:
                raise errors.Unavailable(ALREADY_IN_SWARM)
            ms.check_token(request.join_token)
            if not request.remote_addrs:
                raise errors.InvalidArgument("at least 1 RemoteAddr is required to join")
            endpoints = [f"http://{h}:{p}" for h, p in
                         (ms.split_addr(a) for a in request.remote_addrs)]
            role = self._role_for(endpoints, request)
            host = ms.split_addr(request.remote_addrs[0])[0]
            addr = ms.split_addr(request.advertise_addr)[0] if request.advertise_addr \
                else _advertise_for(host)
            member = ms.Membership(new_id(), role, addr, endpoints,
                                   listen_addr=request.listen_addr)
            if role == "manager":
                member = self._add_member(member, request.listen_addr)
            else:
                member = replace(member, endpoints=_client_urls(endpoints))
            store = EtcdStore(member.endpoints, root=ROOT, retry_for=2.0)
            try:
                self._register(store, member)
                self._connect(member, start_member=False)
            except BaseException:
                self._halt()
                if member.manager:
                    etcd.stop(self.directory / "etcd")
                raise
            finally:
                store.close()
            ms.save(self.state_file, member)

    @staticmethod
    def _role_for(endpoints: list[str], request: JoinRequest) -> str:
        store = EtcdStore(endpoints, root=ROOT, retry_for=2.0)
        try:
            tokens = store.get(CLUSTER, CLUSTER_ID).spec.get("JoinTokens") or {}
        except errors.DockyardError as exc:
            raise errors.Unavailable(f"could not reach the swarm at "
                                     f"{', '.join(request.remote_addrs)}: {exc}") from exc
        finally:
            store.close()
        for role, token in (("manager", tokens.get("Manager")),
                            ("worker", tokens.get("Worker"))):
            if token and request.join_token == token:
                return role
        raise errors.InvalidArgument("invalid join token")

    def _add_member(self, member: ms.Membership, listen_addr: str) -> ms.Membership:
        """Join the managers' etcd cluster: announce this member, then start it."""
        host, port = ms.split_addr(listen_addr)
        listen = member.addr if host in ("0.0.0.0", "::", "") else host
        client, peer = f"{listen}:{port}", f"{listen}:{port + 1}"
        initial = etcdmembers.add(member.endpoints, member.node_id, f"http://{peer}")
        try:
            etcd.start(etcd.Member(self.directory / "etcd", member.node_id, client, peer,
                                   initial, existing=True))
        except BaseException:
            etcdmembers.remove_peer(member.endpoints, f"http://{peer}")
            raise
        return replace(member, endpoints=_client_urls([f"http://{client}", *member.endpoints]),
                       member_client=client, member_peer=peer)

    def leave(self, force: bool) -> None:
        with self._lock:
            member = self.member
            if member is None:
                raise errors.Unavailable("This node is not part of a swarm")
            if member.manager and not force:
                raise errors.Unavailable(
                    "You are attempting to leave the swarm on a node that is participating "
                    "as a manager. Removing the last manager erases all current state of the "
                    "swarm. Use `--force` to ignore this message. ")
            store = self._store
            if store is not None:
                try:
                    store.delete(HEARTBEATS, member.node_id)
                except errors.DockyardError:
                    pass
            if member.manager:
                self._leave_raft(member)
            self._halt()
            for cid in self.executor.containers().values():
                try:
                    self.executor.remove(cid)
                except errors.DockyardError:
                    pass
            self._release_networks(True)
            if member.manager:
                etcd.stop(self.directory / "etcd")
                shutil.rmtree(self.directory / "etcd", ignore_errors=True)
            ms.forget(self.state_file)
            self.member, self.error = None, ""

    @staticmethod
    def _leave_raft(member: ms.Membership) -> None:
        """Other managers carry on without us: leave their etcd cluster (the last one
        cannot, and need not — its data is erased)."""
        try:
            if len(etcdmembers.members(member.endpoints)) > 1:
                etcdmembers.remove(member.endpoints, member.node_id)
        except errors.DockyardError as exc:
            log.warning("swarm leave: could not leave the etcd cluster: %s", exc)

    # -- promotion and demotion ---------------------------------------------------------
    def _role_loop(self) -> None:
        """Watch this node's desired role (``Spec.Role``, written by ``update_node``); a
        change is made by a thread of its own, as it restarts every loop (this one too)."""
        while not self._stop.wait(1.0):
            wanted = self._wanted_role()
            if wanted:
                threading.Thread(target=self._change_role, args=(wanted,), name="swarm-role",
                                 daemon=True).start()
                return

    def _wanted_role(self) -> str | None:
        member, store = self.member, self._store
        if member is None or store is None or time.monotonic() < self._role_retry:
            return None
        try:
            role = (store.get(NODES, member.node_id).spec.get("Spec") or {}).get("Role")
        except errors.DockyardError:
            return None
        return str(role) if role in ("manager", "worker") and role != member.role else None

    def _change_role(self, role: str) -> None:
        with self._lock:
            member, store = self.member, self._store
            if member is None or store is None or member.role == role:
                return
            try:
                others = [f"http://{n.spec['ManagerAddr']}" for n in store.list(NODES).objects
                          if n.spec.get("ManagerAddr") and n.id != member.node_id]
            except errors.DockyardError as exc:
                log.warning("swarm: cannot read the managers: %s", exc)
                others = []
            self._halt()
            changed = member
            try:
                changed = self._promoted(member, others) if role == "manager" \
                    else self._demoted(member, others)
                ms.save(self.state_file, changed)
                log.info("swarm: this node is now a %s", role)
            except errors.DockyardError as exc:
                log.error("swarm: cannot become a %s: %s", role, exc)
                self._role_retry = time.monotonic() + 5.0
            self._connect(changed, start_member=False)
            if changed is not member:
                self._set_manager_addr(_manager_addr(changed))

    def _promoted(self, member: ms.Membership, others: list[str]) -> ms.Membership:
        """Join the managers' Raft group with an etcd member of our own."""
        joined = self._add_member(replace(member, endpoints=others or member.endpoints),
                                  member.listen_addr or "0.0.0.0:2377")
        return replace(joined, role="manager")

    def _demoted(self, member: ms.Membership, others: list[str]) -> ms.Membership:
        """Leave the Raft group (the other managers carry it on) and stop our member."""
        if not others:
            raise errors.Unavailable("no other manager to hand the swarm to")
        etcdmembers.remove(others, member.node_id)
        etcd.stop(self.directory / "etcd")
        shutil.rmtree(self.directory / "etcd", ignore_errors=True)
        return replace(member, role="worker", endpoints=others, member_client="",
                       member_peer="", listen_addr=member.member_client or member.listen_addr)

    def _set_manager_addr(self, addr: str) -> None:
        for _ in range(10):
            store, member = self._store, self.member
            if store is None or member is None:
                return
            try:
                node = store.get(NODES, member.node_id)
                if node.spec.get("ManagerAddr", "") != addr:
                    store.update(node.with_spec({**node.spec, "ManagerAddr": addr}))
                return
            except errors.Conflict:
                continue
            except errors.DockyardError as exc:
                log.warning("swarm: cannot record the manager address: %s", exc)
                return

    # -- internals ----------------------------------------------------------------------
    def _release_networks(self, force: bool) -> None:
        try:
            self.executor.release_networks(force)
        except errors.DockyardError as exc:
            log.warning("swarm networks: %s", exc)
    def _register(self, store: Store, member: ms.Membership) -> None:
        description = self.describe()
        store.create(Object(NODES, member.node_id, {
            "Spec": {"Labels": {}, "Role": member.role, "Availability": "active"},
            "Description": description, "Addr": member.addr, "DataPort": self.data_port,
            "ManagerAddr": _manager_addr(member)}))

    def _connect(self, member: ms.Membership, start_member: bool = True) -> None:
        if member.manager and start_member:
            etcd.start(etcd.Member(self.directory / "etcd", member.node_id,
                                   member.member_client, member.member_peer))
        store = EtcdStore(member.endpoints, root=ROOT)
        self._store, self.member, self.error = store, member, ""
        self._stop = threading.Event()
        self._heartbeat_once()
        agent = Agent(store, member.node_id, self.executor, now_rfc3339)
        self._spawn("swarm-heartbeat", self._heartbeat_loop)
        self._spawn("swarm-agent", lambda: self._loop(agent.tick))
        self._spawn("swarm-role", self._role_loop)
        if member.manager:
            self._manager = Manager(store, member.node_id, lambda: self._lease)
            self._manager.start()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _halt(self) -> None:
        self._stop.set()
        if self._manager is not None:
            self._manager.stop()
            self._manager = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._store is not None:
            self._store.close()
            self._store = None

    def _heartbeat_once(self) -> None:
        assert self._store is not None and self.member is not None
        lease = self._store.grant(HEARTBEAT_TTL)
        self._lease = lease.id
        self._store.transaction([], [Put(Object(HEARTBEATS, self.member.node_id, {
            "At": now_rfc3339()}), lease=lease.id, check=False)])

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(1.0):
            store = self._store
            if store is None:
                return
            try:
                store.keepalive(self._lease)
            except errors.NotFound:
                self._try(self._heartbeat_once)
            except errors.DockyardError as exc:
                log.warning("swarm heartbeat: %s", exc)

    def _loop(self, work: Callable[[], None]) -> None:
        while not self._stop.wait(TICK):
            self._try(work)

    def _try(self, work: Callable[[], None]) -> None:
        try:
            work()
        except errors.DockyardError as exc:
            log.warning("swarm: %s", exc)
        except Exception:  # noqa: BLE001 - a loop must survive one bad round
            log.exception("swarm: unexpected error")

    def _manager_store(self) -> Store:
        if self.member is None or self._store is None:
            raise errors.Unavailable(NOT_IN_SWARM)
        if not self.member.manager:
            raise errors.Unavailable(NOT_A_MANAGER)
        return self._store

    def _leader(self) -> str | None:
        manager = self._manager
        store = self._store
        if manager is None or store is None:
            return None
        try:
            return store.leader(LEADER_ELECTION)
        except errors.DockyardError:
            return None


def _manager_addr(member: ms.Membership) -> str:
    """The node object's ManagerAddr: this manager's etcd client address, as advertised."""
    return f"{member.addr}:{member.member_client.rpartition(':')[2]}" if member.manager else ""


def _client_urls(endpoints: list[str]) -> list[str]:
    """Every manager's client URL (so losing one manager keeps this node connected)."""
    try:
        found = [u for m in etcdmembers.members(endpoints) for u in m.client_urls]
    except errors.DockyardError:
        found = []
    return list(dict.fromkeys([*found, *endpoints]))


def _advertise_for(listen_host: str) -> str:
    """The address to advertise: the listen host if concrete, else the default route's."""
    if listen_host not in ("0.0.0.0", "::", ""):
        return listen_host
    address = netaddr.default_address()
    if address is None:
        raise errors.InvalidArgument("could not choose an IP address to advertise since this "
                                     "system has no default route: use --advertise-addr")
    return address


