"""The typed cluster store: versioned objects in collections, transactions, watches, leases.

Every swarm component (orchestrator, scheduler, allocator, dispatcher, agents) reads and writes
cluster state only through :class:`Store`. An object lives at ``<root>/<kind>/<id>`` as the JSON
``{"kind", "id", "spec", "created_at", "updated_at"}``; its ``version`` is the store revision of
its last write (etcd's ``mod_revision``), so versions only grow and every write is optimistic:

* ``create`` fails with Conflict if the object exists; ``update``/``delete`` take the version
  the caller read and fail with Conflict if someone wrote in between (NotFound if it is gone);
* ``transaction`` applies several writes all-or-nothing after checking several versions — e.g.
  "assign this task only if the node is still at the version I saw as ready";
* ``list`` returns the revision it read at; ``watch(kind, since=that revision)`` then streams
  every later put/delete in order. A watch resumes from the last revision the caller saw
  (after a disconnect, too); if that history was compacted it raises ``Compacted`` and the
  caller relists;
* leases expire unless kept alive, deleting the objects attached to them (node heartbeats);
  ``campaign``/``resign`` elect one leader per election among lease holders, and
  ``Held(leadership)`` fences a leader's writes.

``kvstore.KVStore`` implements this protocol once over a raw ``kv.KV``; ``etcdstore`` and
``memstore`` provide the etcd and in-memory KVs.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from dockyard import errors
from dockyard.cluster.kv import Compacted, EventType

__all__ = ["Compacted", "Object", "Event", "Listing", "Lease", "Leadership", "Check", "Held",
           "Put", "Delete", "Commit", "Watch", "Store", "check_name"]

_KIND = re.compile(r"^[a-z][a-z0-9-]*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Object:
    """One versioned object. ``kind`` is its collection ("nodes", "services", "tasks",
    "networks", …), ``spec`` any JSON object. ``version`` 0 means "not stored yet";
    the timestamps (RFC 3339, UTC) and ``lease`` are set by the store."""
    kind: str
    id: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    created_at: str = ""
    updated_at: str = ""
    lease: int = 0

    def with_spec(self, spec: Mapping[str, Any]) -> Object:
        """The same object (same version, so an update checks it) with a new spec."""
        return replace(self, spec=spec)


@dataclass(frozen=True)
class Event:
    """A put or delete seen by a watch. For a delete, ``object`` is the last stored value
    when the store still knows it (else an empty spec)."""
    type: EventType
    object: Object
    revision: int


@dataclass(frozen=True)
class Listing:
    objects: list[Object]
    revision: int  # watch(kind, since=revision) continues exactly after this list


@dataclass(frozen=True)
class Lease:
    id: int
    ttl: int  # seconds granted (etcd may round a short ttl up to its minimum)


@dataclass(frozen=True)
class Leadership:
    """Proof of having won ``election``: the candidate key and the revision that created it."""
    election: str
    value: str
    lease: int
    key: bytes
    revision: int


@dataclass(frozen=True)
class Check:
    """The object is at ``version`` (0: the object does not exist)."""
    kind: str
    id: str
    version: int


@dataclass(frozen=True)
class Held:
    """The leadership is still held (its lease alive, not resigned)."""
    leadership: Leadership


@dataclass(frozen=True)
class Put:
    """Write ``object``; unless ``check`` is False, only if it is still at ``object.version``
    (0: create — only if it does not exist)."""
    object: Object
    lease: int = 0
    check: bool = True


@dataclass(frozen=True)
class Delete:
    """Delete the object; if ``version`` is given, only if it is still at that version."""
    kind: str
    id: str
    version: int | None = None


@dataclass(frozen=True)
class Commit:
    revision: int
    objects: list[Object]  # what the transaction's Puts stored, in order


class Watch(Protocol):
    def next(self, timeout: float | None = None) -> Event | None:
        """The next event in revision order; None on timeout. Raises Compacted when the
        requested history is gone, Unavailable when the store cannot be reached any more."""

    def close(self) -> None: ...


class Store(Protocol):
    def revision(self) -> int: ...

    def get(self, kind: str, id: str) -> Object:
        """NotFound if absent."""

    def list(self, kind: str, prefix: str = "") -> Listing:
        """Objects of ``kind`` whose id starts with ``prefix``, sorted by id."""

    def create(self, obj: Object, lease: int = 0) -> Object:
        """Conflict if it exists."""

    def update(self, obj: Object, lease: int = 0) -> Object:
        """Write ``obj`` if the stored version is still ``obj.version``: Conflict if not,
        NotFound if it was deleted."""

    def delete(self, kind: str, id: str, version: int | None = None) -> None: ...

    def transaction(self, checks: Sequence[Check | Held],
                    writes: Sequence[Put | Delete]) -> Commit:
        """All writes or none: Conflict naming the first failed check (Put and versioned
        Delete check their own version too)."""

    def watch(self, kind: str | None = None, since: int = 0) -> Watch:
        """Events of ``kind`` (every kind if None) after revision ``since`` (0: from now)."""

    def grant(self, ttl: int) -> Lease: ...

    def keepalive(self, lease: int) -> int:
        """Refresh; the ttl. NotFound once the lease has expired."""

    def revoke(self, lease: int) -> None: ...

    def campaign(self, election: str, value: str, lease: int,
                 timeout: float | None = None) -> Leadership:
        """Block until this candidate leads ``election`` (Unavailable on timeout or when the
        lease expires while waiting)."""

    def resign(self, leadership: Leadership) -> None: ...

    def leader(self, election: str) -> str | None:
        """The current leader's value, None if nobody leads."""

    def compact(self, revision: int) -> None:
        """Forget history before ``revision``; watches from older revisions raise Compacted."""

    def close(self) -> None: ...


def check_name(kind: str, id: str | None = None) -> None:
    if not _KIND.match(kind):
        raise errors.InvalidArgument(f"invalid object kind {kind!r}: lower-case letters, "
                                     "digits and '-' only")
    if id is not None and not _ID.match(id):
        raise errors.InvalidArgument(f"invalid {kind} id {id!r}: letters, digits and "
                                     "'_.:-' only")
