"""``EtcdKV``: the raw ``kv.KV`` over etcd's v3 JSON gateway, and ``EtcdStore``, the typed
cluster store over it. Keys and values travel base64-encoded, revisions as decimal strings.

Watches run one reader thread each on a dedicated streamed connection (``POST /v3/watch``).
After a disconnect the reader reconnects (to any endpoint) and resumes from the revision after
the last batch it delivered, so no event is lost or repeated; if that history has been
compacted meanwhile, the watch raises ``Compacted`` and the caller relists.
"""
from __future__ import annotations

import base64
import http.client
import json
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from dockyard import errors
from dockyard.cluster.etcdhttp import EtcdHTTP, EtcdTLS, Json, error_for, shutdown
from dockyard.cluster.kv import (Compacted, Compare, DeleteOp, KeyValue, Op, PutOp,
                                 RawEvent, TxnResult)
from dockyard.cluster.kvstore import Clock, KVStore

__all__ = ["EtcdKV", "EtcdStore", "EtcdTLS", "EtcdWatch"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kv(data: Json) -> KeyValue:
    return KeyValue(base64.b64decode(data.get("key", "")), base64.b64decode(data.get("value", "")),
                    int(data.get("create_revision", 0)), int(data.get("mod_revision", 0)),
                    int(data.get("lease", 0)))


def _revision(answer: Json) -> int:
    return int(answer.get("header", {}).get("revision", 0))


def _op(op: Op) -> Json:
    if isinstance(op, PutOp):
        put: Json = {"key": _b64(op.key), "value": _b64(op.value)}
        if op.lease:
            put["lease"] = str(op.lease)
        return {"request_put": put}
    if isinstance(op, DeleteOp):
        return {"request_delete_range": {"key": _b64(op.key)}}
    request: Json = {"key": _b64(op.key)}
    if op.end is not None:
        request["range_end"] = _b64(op.end)
    return {"request_range": request}


def _compare(compare: Compare) -> Json:
    field = "create_revision" if compare.target == "create" else "mod_revision"
    return {"key": _b64(compare.key), "target": compare.target.upper(), "result": "EQUAL",
            field: str(compare.revision)}


class EtcdKV:
    def __init__(self, endpoints: Sequence[str], tls: EtcdTLS | None = None,
                 timeout: float = 5.0, retry_for: float = 5.0) -> None:
        self.http = EtcdHTTP(endpoints, tls, timeout, retry_for)

    def range(self, key: bytes, end: bytes | None = None) -> tuple[list[KeyValue], int]:
        body: Json = {"key": _b64(key)}
        if end is not None:
            body["range_end"] = _b64(end)
        answer = self.http.call("/v3/kv/range", body)
        return [_kv(kv) for kv in answer.get("kvs", [])], _revision(answer)

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult:
        answer = self.http.call("/v3/kv/txn", {
            "compare": [_compare(c) for c in compares],
            "success": [_op(op) for op in success],
            "failure": [_op(op) for op in failure]})
        ranges = [[_kv(kv) for kv in response["response_range"].get("kvs", [])]
                  for response in answer.get("responses", []) if "response_range" in response]
        return TxnResult(bool(answer.get("succeeded", False)), _revision(answer), ranges)

    def grant(self, ttl: int) -> tuple[int, int]:
        answer = self.http.call("/v3/lease/grant", {"TTL": str(ttl)})
        return int(answer["ID"]), int(answer.get("TTL", ttl))

    def keepalive(self, lease: int) -> int:
        answer = self.http.call("/v3/lease/keepalive", {"ID": str(lease)})
        ttl = int(answer.get("result", answer).get("TTL", 0))
        if ttl <= 0:
            raise errors.NotFound(f"requested lease not found: {lease:x}")
        return ttl

    def revoke(self, lease: int) -> None:
        self.http.call("/v3/lease/revoke", {"ID": str(lease)})

    def compact(self, revision: int) -> None:
        self.http.call("/v3/kv/compaction", {"revision": str(revision)})

    def watch(self, key: bytes, end: bytes | None, start_revision: int) -> EtcdWatch:
        return EtcdWatch(self.http, key, end, start_revision)

    def close(self) -> None:
        self.http.close()


class EtcdWatch:
    """One watch: a reader thread fills a queue with event batches or a final error."""

    def __init__(self, transport: EtcdHTTP, key: bytes, end: bytes | None,
                 start: int) -> None:
        self._http = transport
        self._request: Json = {"key": _b64(key), "prev_kv": True}
        if end is not None:
            self._request["range_end"] = _b64(end)
        self._next = start  # the first revision still to deliver (0: not known yet)
        self._queue: queue.Queue[list[RawEvent] | Exception] = queue.Queue()
        self._failure: Exception | None = None
        self._closed = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._created = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._thread.start()
        self._created.wait(transport.timeout)  # events written after watch() returns are seen

    def next(self, timeout: float | None = None) -> list[RawEvent] | None:
        if self._failure is not None:
            raise self._failure
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            self._failure = item
            raise item
        return item

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            shutdown(conn)

    def _run(self) -> None:
        down_since: float | None = None
        while not self._closed.is_set():
            try:
                self._follow()
                down_since = None
            except (Compacted, errors.InvalidArgument, errors.NotFound) as failure:
                self._queue.put(failure)
                return
            except Exception:  # noqa: BLE001 - disconnects, no leader: reconnect and resume
                down_since = down_since or time.monotonic()
            if self._closed.is_set():
                return
            if down_since and time.monotonic() - down_since > self._http.retry_for:
                self._queue.put(errors.Unavailable("etcd watch lost: no endpoint answers"))
                return
            time.sleep(0.1)

    def _follow(self) -> None:
        request = dict(self._request, start_revision=str(self._next))
        conn, response = self._http.stream("/v3/watch", {"create_request": request})
        with self._lock:
            self._conn = conn
        if self._closed.is_set():
            shutdown(conn)
        try:
            while not self._closed.is_set():
                line = response.readline()
                if not line:
                    return
                self._handle(json.loads(line))
        finally:
            conn.close()

    def _handle(self, message: Json) -> None:
        if "error" in message:
            failure = message["error"]
            detail: Any = failure.get("message", "") if isinstance(failure, dict) else failure
            code = int(failure.get("code", 14)) if isinstance(failure, dict) else 14
            raise error_for(code, str(detail))
        result = message.get("result", {})
        if int(result.get("compact_revision", 0)):
            raise Compacted(int(result["compact_revision"]))
        if result.get("created"):
            if not self._next:
                self._next = _revision(result) + 1
            self._created.set()
        if result.get("canceled"):
            raise errors.Unavailable(f"etcd canceled the watch: {result.get('cancel_reason')}")
        events = [self._event(e) for e in result.get("events", [])]
        if events:
            self._next = events[-1].revision + 1
            self._queue.put(events)

    @staticmethod
    def _event(data: Json) -> RawEvent:
        kv = _kv(data["kv"])
        prev = _kv(data["prev_kv"]) if "prev_kv" in data else None
        if data.get("type") == "DELETE":
            return RawEvent("delete", kv.key, kv.mod_revision, None, prev)
        return RawEvent("put", kv.key, kv.mod_revision, kv, prev)


class EtcdStore(KVStore):
    """The typed cluster store on etcd (``endpoints`` like ``http://127.0.0.1:2379``)."""

    def __init__(self, endpoints: Sequence[str], tls: EtcdTLS | None = None,
                 root: str = "/dockyard", clock: Clock = time.time,
                 timeout: float = 5.0, retry_for: float = 5.0) -> None:
        super().__init__(EtcdKV(endpoints, tls, timeout, retry_for), root=root, clock=clock)
