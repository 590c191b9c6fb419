"""The in-memory twin of etcd: same revisions, transactions, watches, leases and compaction
rules as ``etcdstore``, for unit tests of the manager (orchestrator, scheduler, …).

Leases follow an injectable ``clock`` (monotonic seconds): a fake clock lets a test expire a
lease by advancing time. Expiry is applied lazily by every call, and by waiting watches
(which re-check every ``poll`` seconds of real time), so no background thread exists.
"""
from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dockyard import errors
from dockyard.cluster.kv import (Compacted, Compare, KeyValue, Op, PutOp, RangeOp,
                                 RawEvent, TxnResult)
from dockyard.cluster.kvstore import KVStore

Clock = Callable[[], float]


@dataclass
class _Lease:
    ttl: int
    deadline: float
    keys: set[bytes] = field(default_factory=set)


def _in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    return key == start if end is None else start <= key < end


class MemKV:
    """A ``kv.KV`` in memory; thread-safe (one lock, one condition for watchers)."""

    def __init__(self, clock: Clock = time.monotonic, poll: float = 0.02) -> None:
        self.clock = clock
        self.poll = poll
        self._cond = threading.Condition()
        self._data: dict[bytes, KeyValue] = {}
        self._revision = 1
        self._history: list[RawEvent] = []
        self._compacted = 0
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(0x7E57_0000_0001)

    # --- reads and writes ------------------------------------------------------------------
    def range(self, key: bytes, end: bytes | None = None) -> tuple[list[KeyValue], int]:
        with self._cond:
            self._expire()
            return self._range(key, end), self._revision

    def _range(self, key: bytes, end: bytes | None) -> list[KeyValue]:
        if end is None:
            found = self._data.get(key)
            return [found] if found else []
        return [self._data[k] for k in sorted(self._data) if _in_range(k, key, end)]

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult:
        with self._cond:
            self._expire()
            ok = all(self._holds(c) for c in compares)
            ops = success if ok else failure
            for op in ops:
                if isinstance(op, PutOp) and op.lease and op.lease not in self._leases:
                    raise errors.NotFound(f"requested lease not found: {op.lease:x}")
            events: list[RawEvent] = []
            ranges: list[list[KeyValue]] = []
            revision = self._revision + 1
            for op in ops:
                if isinstance(op, RangeOp):
                    ranges.append(self._range(op.key, op.end))
                elif isinstance(op, PutOp):
                    events.append(self._put(op, revision))
                else:
                    events += self._delete(op.key, revision)
            self._commit(events)
            return TxnResult(ok, self._revision, ranges)

    def _holds(self, compare: Compare) -> bool:
        found = self._data.get(compare.key)
        if compare.target == "create":
            return (found.create_revision if found else 0) == compare.revision
        return (found.mod_revision if found else 0) == compare.revision

    def _put(self, op: PutOp, revision: int) -> RawEvent:
        old = self._data.get(op.key)
        if old is not None and old.lease in self._leases:
            self._leases[old.lease].keys.discard(op.key)
        kv = KeyValue(op.key, op.value, old.create_revision if old else revision, revision,
                      op.lease)
        self._data[op.key] = kv
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        return RawEvent("put", op.key, revision, kv, old)

    def _delete(self, key: bytes, revision: int) -> list[RawEvent]:
        old = self._data.pop(key, None)
        if old is None:
            return []
        if old.lease in self._leases:
            self._leases[old.lease].keys.discard(key)
        return [RawEvent("delete", key, revision, None, old)]

    def _commit(self, events: list[RawEvent]) -> None:
        if events:
            self._revision += 1
            self._history += events
            self._cond.notify_all()

    def compact(self, revision: int) -> None:
        with self._cond:
            if revision > self._revision:
                raise errors.InvalidArgument("mvcc: required revision is a future revision")
            if revision <= self._compacted:
                raise Compacted(self._compacted)
            self._compacted = revision
            cut = bisect.bisect_left([e.revision for e in self._history], revision)
            del self._history[:cut]

    # --- leases ----------------------------------------------------------------------------
    def grant(self, ttl: int) -> tuple[int, int]:
        with self._cond:
            self._expire()
            lease = next(self._lease_ids)
            self._leases[lease] = _Lease(ttl, self.clock() + ttl)
            return lease, ttl

    def keepalive(self, lease: int) -> int:
        with self._cond:
            self._expire()
            found = self._leases.get(lease)
            if found is None:
                raise errors.NotFound(f"requested lease not found: {lease:x}")
            found.deadline = self.clock() + found.ttl
            return found.ttl

    def revoke(self, lease: int) -> None:
        with self._cond:
            self._expire()
            if lease not in self._leases:
                raise errors.NotFound(f"requested lease not found: {lease:x}")
            self._revoke(lease)

    def _revoke(self, lease: int) -> None:
        keys = sorted(self._leases.pop(lease).keys)
        revision = self._revision + 1
        self._commit([e for key in keys for e in self._delete(key, revision)])

    def _expire(self) -> None:
        now = self.clock()
        for lease in [k for k, v in self._leases.items() if v.deadline <= now]:
            self._revoke(lease)

    # --- watches ---------------------------------------------------------------------------
    def watch(self, key: bytes, end: bytes | None, start_revision: int) -> MemWatch:
        with self._cond:
            self._expire()
            return MemWatch(self, key, end, start_revision or self._revision + 1)

    def _events_from(self, cursor: int, key: bytes, end: bytes | None) -> list[RawEvent]:
        if cursor < self._compacted:
            raise Compacted(self._compacted)
        first = bisect.bisect_left([e.revision for e in self._history], cursor)
        return [e for e in self._history[first:] if _in_range(e.key, key, end)]

    def close(self) -> None:
        pass


class MemWatch:
    def __init__(self, kv: MemKV, key: bytes, end: bytes | None, cursor: int) -> None:
        self._kv, self._key, self._end, self._cursor = kv, key, end, cursor
        self._closed = False

    def next(self, timeout: float | None = None) -> list[RawEvent] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        kv = self._kv
        with kv._cond:
            while not self._closed:
                kv._expire()
                events = kv._events_from(self._cursor, self._key, self._end)
                self._cursor = kv._revision + 1
                if events:
                    return events
                left = kv.poll if deadline is None else min(kv.poll,
                                                            deadline - time.monotonic())
                if left <= 0:
                    return None
                kv._cond.wait(left)
            raise errors.Unavailable("watch closed")

    def close(self) -> None:
        with self._kv._cond:
            self._closed = True
            self._kv._cond.notify_all()


class MemStore(KVStore):
    """The typed store over a fresh ``MemKV``. ``clock`` drives leases (monotonic seconds),
    ``wall`` stamps objects (seconds since the epoch)."""

    def __init__(self, clock: Clock = time.monotonic, wall: Clock = time.time,
                 root: str = "/dockyard") -> None:
        super().__init__(MemKV(clock), root=root, clock=wall)

