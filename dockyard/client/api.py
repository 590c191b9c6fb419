"""The Engine API client: version negotiation, JSON helpers, streams and hijacking."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from dockyard.client.errors import APIError, ProtocolError
from dockyard.client.http import Body, Response, exchange
from dockyard.client.transport import Endpoint, TLSOptions, connect, parse_host

MAX_API_VERSION = "1.50"
MIN_API_VERSION = "1.24"
USER_AGENT = "Docker-Client/28.2.2 (linux) dockyard"

Query = Mapping[str, Any] | None


def _vtuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def pick_version(server: str | None) -> str:
    """The highest version both sides speak (``API-Version`` from ``/_ping``)."""
    if not server:
        return MIN_API_VERSION
    return server if _vtuple(server) < _vtuple(MAX_API_VERSION) else MAX_API_VERSION


def encode_query(query: Query) -> str:
    """Docker's conventions: bools as 1/0, dicts as JSON, lists as repeated keys, None skipped."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, dict):
            pairs.append((key, json.dumps(value, separators=(",", ":"), sort_keys=True)))
        elif isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    pairs.sort(key=lambda pair: pair[0])  # Go's url.Values.Encode orders by key
    return urlencode(pairs) if pairs else ""


def encode_json(value: Any) -> bytes:
    """Like Go's json.Encoder: compact, newline-terminated."""
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def error_message(resp: Response) -> str:
    data = resp.read()
    try:
        body = json.loads(data)
        if isinstance(body, dict) and "message" in body:
            return str(body["message"])
    except ValueError:
        pass
    text = data.decode("utf-8", "replace").strip()
    return text or f"{resp.status} {resp.reason}".strip()


class APIClient:
    """One daemon endpoint; each request uses its own connection."""

    def __init__(self, host: str, tls: TLSOptions | None = None,
                 version: str | None = None, timeout: float | None = None) -> None:
        self.endpoint: Endpoint = parse_host(host, tls)
        self.host = host
        self.timeout = timeout
        self._version = version
        self.ping_headers: dict[str, str] = {}

    # -- version ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        if self._version is None:
            self._version = pick_version(self.ping().get("api-version"))
        return self._version

    def ping(self) -> dict[str, str]:
        resp = self._send("GET", "/_ping", None, {}, None)
        try:
            resp.read()
        finally:
            resp.close()
        self.ping_headers = resp.headers
        return resp.headers

    def path(self, path: str, query: Query = None) -> str:
        qs = encode_query(query)
        return f"/v{self.version}{path}" + (f"?{qs}" if qs else "")

    # -- raw requests ----------------------------------------------------------------------
    def _send(self, method: str, target: str, query: Query, headers: Mapping[str, str],
              body: Body) -> Response:
        qs = encode_query(query)
        if qs:
            target = f"{target}?{qs}"
        host = "api.moby.localhost" if self.endpoint.scheme == "unix" else \
            f"{self.endpoint.address[0]}:{self.endpoint.address[1]}"
        all_headers = {"Host": host, "User-Agent": USER_AGENT, **headers}
        sock = connect(self.endpoint, self.timeout)
        try:
            return exchange(sock, method, target, all_headers, body)
        except (OSError, ProtocolError):
            sock.close()
            raise

    def request(self, method: str, path: str, query: Query = None, body: Body = None,
                headers: Mapping[str, str] | None = None, json_body: Any = None) -> Response:
        """Send; raise APIError on a non-2xx status. The caller reads and closes."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = encode_json(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        resp = self._send(method, f"/v{self.version}{path}", query, hdrs, body)
        if resp.status >= 300 and resp.status != 304:
            try:
                raise APIError(resp.status, error_message(resp))
            finally:
                resp.close()
        return resp

    # -- helpers ---------------------------------------------------------------------------
    def call(self, method: str, path: str, query: Query = None, json_body: Any = None,
             body: Body = None, headers: Mapping[str, str] | None = None) -> Any:
        """Request and decode a JSON answer (None for an empty body)."""
        with self.request(method, path, query, body, headers, json_body) as resp:
            return resp.json()

    def get(self, path: str, query: Query = None) -> Any:
        return self.call("GET", path, query)

    def post(self, path: str, query: Query = None, json_body: Any = None) -> Any:
        return self.call("POST", path, query, json_body)

    def delete(self, path: str, query: Query = None) -> Any:
        return self.call("DELETE", path, query)

    def stream(self, method: str, path: str, query: Query = None, body: Body = None,
               headers: Mapping[str, str] | None = None, json_body: Any = None) -> Response:
        return self.request(method, path, query, body, headers, json_body)

    def hijack(self, path: str, query: Query = None, json_body: Any = None) -> Response:
        """POST with ``Upgrade: tcp``; the returned Response's socket is the raw duplex."""
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        body: Body = None
        if json_body is not None:
            body = encode_json(json_body)
            headers["Content-Type"] = "application/json"
        resp = self._send("POST", f"/v{self.version}{path}", query, headers, body)
        if resp.status not in (101, 200):
            try:
                raise APIError(resp.status, error_message(resp))
            finally:
                resp.close()
        return resp
