"""``KVStore``: the typed :class:`~dockyard.cluster.store.Store` implemented once over any raw
``kv.KV`` (etcd or memory), so both back-ends share one encoding and one set of rules.

Layout under ``root`` (default ``/dockyard``): ``<root>/<kind>/<id>`` holds an object's JSON;
``<root>/_elections/<election>/<lease as 16 hex digits>`` are election candidates, the one with
the lowest create revision leads (etcd's own ``concurrency.Election`` scheme).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from dockyard import errors
from dockyard.cluster import election
from dockyard.cluster.kv import (KV, Compare, DeleteOp, KeyValue, Op, PutOp, RangeOp, RawEvent,
                                 RawWatch, prefix_end)
from dockyard.cluster.store import (Check, Commit, Delete, Event, Held, Leadership, Lease,
                                    Listing, Object, Put, check_name)

Clock = Callable[[], float]


def rfc3339(seconds: float) -> str:
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{base}.{int(seconds * 1e9) % 1_000_000_000:09d}Z"


def _singular(kind: str) -> str:
    return kind[:-1] if kind.endswith("s") else kind


class KVStore:
    """The cluster store over a raw KV; ``clock`` (seconds since the epoch) stamps objects."""

    def __init__(self, kv: KV, root: str = "/dockyard", clock: Clock = time.time) -> None:
        self.kv = kv
        self.root = root.rstrip("/").encode()
        self.clock = clock

    # --- keys and values -------------------------------------------------------------------
    def key(self, kind: str, id: str) -> bytes:
        check_name(kind, id)
        return b"%s/%s/%s" % (self.root, kind.encode(), id.encode())

    def _encode(self, obj: Object, now: str) -> bytes:
        return json.dumps({"kind": obj.kind, "id": obj.id, "spec": dict(obj.spec),
                           "created_at": obj.created_at or now, "updated_at": now},
                          sort_keys=True, separators=(",", ":")).encode()

    def decode(self, kv: KeyValue) -> Object:
        data = json.loads(kv.value)
        return Object(kind=data["kind"], id=data["id"], spec=data.get("spec", {}),
                      version=kv.mod_revision, created_at=data.get("created_at", ""),
                      updated_at=data.get("updated_at", ""), lease=kv.lease)

    def _name(self, key: bytes) -> tuple[str, str] | None:
        rest = key[len(self.root) + 1:].decode()
        kind, sep, id = rest.partition("/")
        return None if not sep or kind.startswith("_") else (kind, id)

    # --- reads -----------------------------------------------------------------------------
    def revision(self) -> int:
        return self.kv.range(self.root + b"/_revision")[1]

    def get(self, kind: str, id: str) -> Object:
        kvs, _ = self.kv.range(self.key(kind, id))
        if not kvs:
            raise errors.NotFound(f"no such {_singular(kind)}: {id}")
        return self.decode(kvs[0])

    def list(self, kind: str, prefix: str = "") -> Listing:
        check_name(kind)
        start = b"%s/%s/%s" % (self.root, kind.encode(), prefix.encode())
        kvs, revision = self.kv.range(start, prefix_end(start))
        return Listing([self.decode(kv) for kv in kvs], revision)

    # --- writes ----------------------------------------------------------------------------
    def create(self, obj: Object, lease: int = 0) -> Object:
        return self.transaction([], [Put(replace(obj, version=0), lease)]).objects[0]

    def update(self, obj: Object, lease: int = 0) -> Object:
        if obj.version <= 0:
            raise errors.InvalidArgument(f"update of {_singular(obj.kind)} {obj.id} needs "
                                         "the version it was read at")
        return self.transaction([], [Put(obj, lease)]).objects[0]

    def delete(self, kind: str, id: str, version: int | None = None) -> None:
        key = self.key(kind, id)
        if version is not None:
            self.transaction([], [Delete(kind, id, version)])
            return
        result = self.kv.txn([Compare(key, "create", 0)], [], [DeleteOp(key)])
        if result.succeeded:
            raise errors.NotFound(f"no such {_singular(kind)}: {id}")

    def transaction(self, checks: Sequence[Check | Held],
                    writes: Sequence[Put | Delete]) -> Commit:
        compares = [self._compare(c) for c in checks]
        ops: list[Op] = []
        now = rfc3339(self.clock())
        for write in writes:
            if isinstance(write, Put):
                obj = write.object
                key = self.key(obj.kind, obj.id)
                if write.check:
                    compares.append(self._compare(Check(obj.kind, obj.id, obj.version)))
                ops.append(PutOp(key, self._encode(obj, now), write.lease))
            else:
                key = self.key(write.kind, write.id)
                if write.version is not None:
                    compares.append(self._compare(Check(write.kind, write.id, write.version)))
                ops.append(DeleteOp(key))
        result = self.kv.txn([c for c, _ in compares], ops,
                             [RangeOp(c.key) for c, _ in compares])
        if not result.succeeded:
            raise self._failure(compares, result.ranges)
        stored = [self._stored(w, result.revision, now) for w in writes if isinstance(w, Put)]
        return Commit(result.revision, stored)

    def _stored(self, put: Put, revision: int, now: str) -> Object:
        obj = put.object
        return replace(obj, version=revision, created_at=obj.created_at or now,
                       updated_at=now, lease=put.lease)

    def _compare(self, check: Check | Held) -> tuple[Compare, str]:
        if isinstance(check, Held):
            lead = check.leadership
            return (Compare(lead.key, "create", lead.revision),
                    f"no longer the leader of election {lead.election}")
        key = self.key(check.kind, check.id)
        if check.version == 0:
            return Compare(key, "create", 0), f"{_singular(check.kind)} {check.id} already exists"
        return Compare(key, "mod", check.version), f"{_singular(check.kind)} {check.id}"

    def _failure(self, compares: Sequence[tuple[Compare, str]],
                 ranges: Sequence[Sequence[KeyValue]]) -> errors.DockyardError:
        for (compare, text), found in zip(compares, ranges):
            actual = found[0] if found else None
            if compare.target == "create":
                if (actual.create_revision if actual else 0) != compare.revision:
                    return errors.Conflict(text)
                continue
            if actual is None:
                name = self._name(compare.key)
                return errors.NotFound(f"no such {_singular(name[0])}: {name[1]}" if name
                                       else text)
            if actual.mod_revision != compare.revision:
                return errors.Conflict(f"{text} was modified: expected version "
                                       f"{compare.revision}, found {actual.mod_revision}")
        return errors.Conflict("transaction failed: the checked objects changed meanwhile")

    # --- watches ---------------------------------------------------------------------------
    def watch(self, kind: str | None = None, since: int = 0) -> ObjectWatch:
        if kind is None:
            start = self.root + b"/"
        else:
            check_name(kind)
            start = b"%s/%s/" % (self.root, kind.encode())
        return ObjectWatch(self, self.kv.watch(start, prefix_end(start), since + 1 if since
                                               else 0))

    def event(self, raw: RawEvent) -> Event | None:
        name = self._name(raw.key)
        if name is None:
            return None
        if raw.type == "put" and raw.kv is not None:
            return Event("put", self.decode(raw.kv), raw.revision)
        obj = self.decode(raw.prev) if raw.prev is not None else Object(*name)
        return Event("delete", obj, raw.revision)

    # --- leases and elections --------------------------------------------------------------
    def grant(self, ttl: int) -> Lease:
        return Lease(*self.kv.grant(ttl))

    def keepalive(self, lease: int) -> int:
        return self.kv.keepalive(lease)

    def revoke(self, lease: int) -> None:
        self.kv.revoke(lease)

    def campaign(self, election_name: str, value: str, lease: int,
                 timeout: float | None = None) -> Leadership:
        check_name(election_name)
        return election.campaign(self.kv, self._election_prefix(election_name),
                                 election_name, value, lease, timeout)

    def resign(self, leadership: Leadership) -> None:
        election.resign(self.kv, leadership)

    def leader(self, election_name: str) -> str | None:
        check_name(election_name)
        return election.leader(self.kv, self._election_prefix(election_name))

    def _election_prefix(self, name: str) -> bytes:
        return b"%s/_elections/%s/" % (self.root, name.encode())

    def compact(self, revision: int) -> None:
        self.kv.compact(revision)

    def close(self) -> None:
        self.kv.close()


class ObjectWatch:
    """Typed events from a raw watch, one at a time; ``last_revision`` is where to resume."""

    def __init__(self, store: KVStore, raw: RawWatch) -> None:
        self._store = store
        self._raw = raw
        self._pending: list[Event] = []
        self.last_revision = 0

    def next(self, timeout: float | None = None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            batch = self._raw.next(left)
            if batch is None:
                return None
            self._pending = [e for e in map(self._store.event, batch) if e is not None]
        event = self._pending.pop(0)
        self.last_revision = event.revision
        return event

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> ObjectWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
