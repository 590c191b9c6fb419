"""Leader election over a raw KV, etcd's ``concurrency.Election`` scheme.

Each candidate puts ``<prefix><lease as 16 hex digits>`` attached to its lease; the key with
the lowest create revision leads. A waiting candidate watches the prefix and re-checks after
every delete (a resignation, or an expired lease removing the leader's key), so handover
needs no polling and no clock of its own.
"""
from __future__ import annotations

import time

from dockyard import errors
from dockyard.cluster.kv import KV, Compare, DeleteOp, KeyValue, PutOp, RangeOp, prefix_end
from dockyard.cluster.store import Leadership


def campaign(kv: KV, prefix: bytes, name: str, value: str, lease: int,
             timeout: float | None) -> Leadership:
    key = prefix + b"%016x" % lease
    result = kv.txn([Compare(key, "create", 0)], [PutOp(key, value.encode(), lease)],
                    [RangeOp(key)])
    mine = result.revision if result.succeeded else result.ranges[0][0].create_revision
    if not result.succeeded:  # the same lease campaigns again: keep its place, new value
        kv.txn([Compare(key, "create", mine)], [PutOp(key, value.encode(), lease)])
    leadership = Leadership(name, value, lease, key, mine)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        kvs, revision = kv.range(prefix, prefix_end(prefix))
        if not any(kv_.key == key for kv_ in kvs):
            raise errors.Unavailable(f"lease {lease:x} expired while campaigning in "
                                     f"election {name}")
        if not any(kv_.create_revision < mine for kv_ in kvs):
            return leadership
        if not _wait_for_delete(kv, prefix, revision + 1, deadline):
            resign(kv, leadership)
            raise errors.Unavailable(f"timed out waiting to lead election {name}")


def _wait_for_delete(kv: KV, prefix: bytes, start: int, deadline: float | None) -> bool:
    """True once a candidate key is deleted (at or after ``start``), False at the deadline."""
    watch = kv.watch(prefix, prefix_end(prefix), start)
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            batch = watch.next(left)
            if batch and any(event.type == "delete" for event in batch):
                return True
    finally:
        watch.close()


def resign(kv: KV, leadership: Leadership) -> None:
    key = leadership.key
    kv.txn([Compare(key, "create", leadership.revision)], [DeleteOp(key)])


def leader(kv: KV, prefix: bytes) -> str | None:
    kvs, _ = kv.range(prefix, prefix_end(prefix))
    first: KeyValue | None = min(kvs, key=lambda kv_: kv_.create_revision, default=None)
    return first.value.decode() if first is not None else None
