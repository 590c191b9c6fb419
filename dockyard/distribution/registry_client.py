"""A small OCI distribution (``/v2/``) HTTP client on ``http.client``.

One :class:`RegistryClient` holds the credentials and the insecure-registry list; it opens a
:class:`Repository` per image repository, which authenticates lazily: the first ``401``
carries ``WWW-Authenticate`` — ``Bearer realm=…,service=…,scope=…`` (fetch a token from the
realm with the repository's ``pull``/``pull,push`` scope, using basic credentials if given)
or ``Basic`` (send the credentials). Registries on ``127.0.0.0/8``, ``localhost`` and the
configured ``insecure_registries`` are spoken to over plain HTTP, others over HTTPS.
Every request uses its own connection, so a repository can be used from several threads.
Connections, endpoints and error mapping are in ``registry_transport``; the manifest and
blob calls that pull and push make through a repository are in ``registry_ops``.
"""
from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
from collections.abc import Sequence
from typing import BinaryIO

from dockyard.distribution.auth import Credentials
from dockyard.distribution.registry_transport import (
    Challenge,
    Endpoint,
    Response,
    endpoint_for,
    offers_tls,
    open_url,
    parse_challenge,
    registry_error,
    unverified,
)
from dockyard.errors import Unauthorized, Unavailable
from dockyard.types.reference import Reference

_REDIRECTS = {301, 302, 303, 307, 308}


class RegistryClient:
    """Credentials and transport settings shared by every repository we talk to."""

    def __init__(self, credentials: Credentials | None = None,
                 insecure_registries: Sequence[str] = (), timeout: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.credentials = credentials
        self.insecure_registries = tuple(insecure_registries)
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._schemes: dict[str, bool] = {}  # insecure host -> speaks TLS

    def repository(self, ref: Reference, push: bool = False) -> Repository:
        endpoint = self.endpoint(ref.domain)
        return Repository(self, endpoint, ref.path, ("pull", "push") if push else ("pull",))

    def endpoint(self, domain: str) -> Endpoint:
        """Like Docker: an insecure registry is still spoken to over HTTPS (without checking
        its certificate) when it offers TLS, else over plain HTTP."""
        endpoint = endpoint_for(domain, self.insecure_registries)
        if endpoint.secure:
            return endpoint
        if endpoint.host not in self._schemes:
            self._schemes[endpoint.host] = offers_tls(endpoint.host, min(self.timeout, 5.0))
        return Endpoint(endpoint.host, self._schemes[endpoint.host])

    def context_for(self, url: str) -> ssl.SSLContext | None:
        host = urllib.parse.urlsplit(url).netloc
        if self._schemes.get(host):
            return unverified()
        return self.ssl_context

    def ping(self, domain: str) -> int:
        """``GET /v2/``: the status (200, or 401 when the registry wants credentials)."""
        endpoint = self.endpoint(domain)
        with open_url(endpoint.base + "/v2/", "GET", {}, None, self.timeout,
                   self.context_for(endpoint.base)) as resp:
            resp.read()
            if resp.status not in (200, 401):
                raise Unavailable(f"registry {domain} answered {resp.status} on /v2/")
            return resp.status


class Repository:
    """Requests against ``/v2/<name>/…`` with the authorisation the registry asks for."""

    def __init__(self, client: RegistryClient, endpoint: Endpoint, name: str,
                 actions: tuple[str, ...]) -> None:
        self.client = client
        self.endpoint = endpoint
        self.name = name
        self.scope = f"repository:{name}:{','.join(actions)}"
        self._auth = ""
        self.scheme = ""  # the scheme of the last challenge answered ("bearer", "basic")
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"{self.endpoint.base}/v2/{self.name}/{path}"

    # -- requests -------------------------------------------------------------------------
    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None, redirects: int = 5) -> Response:
        """Send, authenticating on the first 401 and following redirects (GET/HEAD)."""
        headers = dict(headers or {})
        resp = self._send(method, url, headers, body)
        if resp.status == 401 and self._can_retry(body):
            challenge = resp.header("WWW-Authenticate")
            resp.close()
            self._authenticate(challenge)
            if hasattr(body, "seek"):
                body.seek(0)  # type: ignore[union-attr]
            resp = self._send(method, url, headers, body)
            if resp.status == 401:
                self._refused(resp)
        if resp.status in _REDIRECTS and method in ("GET", "HEAD") and redirects > 0:
            location = urllib.parse.urljoin(url, resp.header("Location"))
            resp.close()
            return self._redirect(method, location, headers, redirects - 1)
        return resp

    def _refused(self, resp: Response) -> None:
        """Still 401 after authenticating: the credentials are wrong (or missing)."""
        creds = self.client.credentials
        try:
            error = registry_error(resp, self.endpoint.host)
        finally:
            resp.close()
        if creds is not None and (creds.has_basic or creds.identity_token):
            raise Unauthorized(f"{self.endpoint.host}: unauthorized: incorrect username or "
                               "password")
        raise Unauthorized(error.message)

    def _can_retry(self, body: bytes | BinaryIO | None) -> bool:
        return body is None or isinstance(body, bytes) or hasattr(body, "seek")

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: bytes | BinaryIO | None) -> Response:
        if self._auth and self._same_host(url):
            headers = {"Authorization": self._auth, **headers}
        return open_url(url, method, headers, body, self.client.timeout,
                     self.client.context_for(url))

    def _redirect(self, method: str, url: str, headers: dict[str, str],
                  redirects: int) -> Response:
        if self._same_host(url):
            return self.request(method, url, headers, None, redirects)
        resp = open_url(url, method, headers, None, self.client.timeout, self.client.ssl_context)
        if resp.status in _REDIRECTS and redirects > 0:
            location = urllib.parse.urljoin(url, resp.header("Location"))
            resp.close()
            return self._redirect(method, location, headers, redirects - 1)
        return resp

    def _same_host(self, url: str) -> bool:
        return urllib.parse.urlsplit(url).netloc == self.endpoint.host

    # -- authentication -------------------------------------------------------------------
    def _authenticate(self, header: str) -> None:
        challenge = parse_challenge(header) if header else Challenge("basic")
        creds = self.client.credentials
        with self._lock:
            self.scheme = challenge.scheme
            if challenge.scheme == "bearer":
                self._auth = "Bearer " + self._token(challenge, creds)
            elif challenge.scheme == "basic":
                if creds is None or not creds.has_basic:
                    raise Unauthorized(f"{self.endpoint.host}: authentication required "
                                       "(no basic auth credentials)")
                self._auth = creds.basic_header()
            else:
                raise Unauthorized(f"unsupported authentication scheme {challenge.scheme!r}")

    def _token(self, challenge: Challenge, creds: Credentials | None) -> str:
        if creds is not None and creds.registry_token:
            return creds.registry_token
        realm = challenge.params.get("realm")
        if not realm:
            raise Unauthorized("bearer challenge without a realm")
        scopes = [self.scope]
        extra = challenge.params.get("scope", "")
        if extra and extra != self.scope:
            scopes.append(extra)
        service = challenge.params.get("service", "")
        if creds is not None and creds.identity_token:
            return _oauth_token(self, realm, service, scopes, creds.identity_token)
        query = urllib.parse.urlencode(
            [("service", service)] * bool(service) + [("scope", s) for s in scopes])
        url = realm + ("&" if "?" in realm else "?") + query
        headers = {"Authorization": creds.basic_header()} if creds and creds.has_basic else {}
        with open_url(url, "GET", headers, None, self.client.timeout,
                   self.client.ssl_context) as resp:
            return _token_from(resp, realm)


def _oauth_token(repo: Repository, realm: str, service: str, scopes: list[str],
                 refresh: str) -> str:
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh,
                                   "service": service, "client_id": "dockyard",
                                   "scope": " ".join(scopes)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with open_url(realm, "POST", headers, form, repo.client.timeout,
               repo.client.ssl_context) as resp:
        return _token_from(resp, realm)


def _token_from(resp: Response, realm: str) -> str:
    if resp.status in (401, 403):
        raise Unauthorized(f"get token from {realm}: unauthorized: "
                           "incorrect username or password")
    if resp.status != 200:
        raise registry_error(resp, f"get token from {realm}")
    try:
        body = json.loads(resp.read(1 << 20))
    except ValueError:
        raise Unauthorized(f"token server {realm} sent invalid JSON") from None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise Unauthorized(f"token server {realm} sent no token")
    return token

