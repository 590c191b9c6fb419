"""The raw key-value protocol the typed store sits on: etcd's v3 data model in miniature.

Every write bumps one global *revision*; a key remembers the revision that created it
(``create_revision``) and the one that last modified it (``mod_revision``). Writes happen only
in transactions (compare → success ops, else failure ops), watches replay events from a
revision, and leases delete the keys attached to them when they expire.
``etcdstore.EtcdKV`` speaks this to a real etcd, ``memstore.MemKV`` keeps it in memory; both
run the same conformance suite (tests/conformance/test_cluster_store.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from dockyard import errors

EventType = Literal["put", "delete"]
CompareTarget = Literal["create", "mod"]


class Compacted(errors.Conflict):
    """A watch asked for history older than the store keeps; relist, then watch again."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"required revision has been compacted (oldest kept revision is "
                         f"{compact_revision}); list again and watch from the new revision")
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True)
class Compare:
    """``key``'s create or mod revision equals ``revision`` (create 0 = the key is absent)."""
    key: bytes
    target: CompareTarget
    revision: int


@dataclass(frozen=True)
class PutOp:
    key: bytes
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class DeleteOp:
    key: bytes


@dataclass(frozen=True)
class RangeOp:
    key: bytes
    end: bytes | None = None


Op = PutOp | DeleteOp | RangeOp


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    ranges: list[list[KeyValue]] = field(default_factory=list)  # one per RangeOp run


@dataclass(frozen=True)
class RawEvent:
    type: EventType
    key: bytes
    revision: int
    kv: KeyValue | None  # the new value of a put
    prev: KeyValue | None  # the value before a delete (None if unknown)


class RawWatch(Protocol):
    def next(self, timeout: float | None = None) -> list[RawEvent] | None:
        """The next events (in revision order), None on timeout; raises Compacted or
        Unavailable when the watch cannot continue."""

    def close(self) -> None: ...


class KV(Protocol):
    def range(self, key: bytes, end: bytes | None = None) -> tuple[list[KeyValue], int]:
        """Keys in [key, end) sorted by key (just ``key`` when end is None), and the
        store's revision at the time of the read."""

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult: ...

    def watch(self, key: bytes, end: bytes | None, start_revision: int) -> RawWatch:
        """Events at revisions >= start_revision (0: from the next write on)."""

    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (id, granted ttl in seconds)."""

    def keepalive(self, lease: int) -> int:
        """Refresh the lease; its ttl. NotFound once it has expired or been revoked."""

    def revoke(self, lease: int) -> None: ...

    def compact(self, revision: int) -> None: ...

    def close(self) -> None: ...


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    data = bytearray(prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\0"
