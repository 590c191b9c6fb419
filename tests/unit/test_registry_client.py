"""Registry client: challenge parsing, the Bearer token flow against a fake token server and
fake registry on 127.0.0.1, endpoint selection, and the ``X-Registry-Auth`` header."""
from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dockyard.distribution.auth import (
    Credentials,
    decode_registry_auth,
    encode_registry_auth,
)
from dockyard.distribution.registry_client import RegistryClient, parse_challenge
from dockyard.distribution.registry_ops import fetch_manifest
from dockyard.distribution.registry_transport import endpoint_for
from dockyard.errors import InvalidArgument, NotFound, Unauthorized
from dockyard.types import reference

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'


class Fake:
    """A token server and a registry in one HTTP server; records what it was asked."""

    def __init__(self) -> None:
        self.token_queries: list[dict[str, list[str]]] = []
        self.token_auth: list[str] = []
        self.registry_auth: list[str] = []
        self.port = 0
        self.token_key = "token"


def handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            auth = self.headers.get("Authorization", "")
            if url.path == "/token":
                fake.token_queries.append(urllib.parse.parse_qs(url.query))
                fake.token_auth.append(auth)
                good = "Basic " + base64.b64encode(b"alice:secret").decode()
                if auth and auth != good:
                    self.send(401, b'{"details":"bad"}', {})
                    return
                body = json.dumps({fake.token_key: "tok123"}).encode()
                self.send(200, body, {"Content-Type": "application/json"})
                return
            fake.registry_auth.append(auth)
            if auth != "Bearer tok123":
                realm = f"http://127.0.0.1:{fake.port}/token"
                self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}', {
                    "WWW-Authenticate": f'Bearer realm="{realm}",service="fake",'
                                        'scope="repository:me/app:pull"'})
                return
            if url.path == "/v2/me/app/manifests/v1":
                self.send(200, MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest"
                                                          ".v1+json"})
                return
            self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest '
                           b'unknown"}]}', {})

    return Handler


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_parse_bearer_challenge() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.docker.io/token",'
                                'service="registry.docker.io",scope="repository:a/b:pull,push"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.docker.io/token",
                                "service": "registry.docker.io",
                                "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="r"').scheme == "basic"
    assert parse_challenge("Bearer realm=http://x/t, service=s").params == {
        "realm": "http://x/t", "service": "s"}


def test_endpoints() -> None:
    hub = endpoint_for("docker.io")
    assert (hub.host, hub.secure) == ("registry-1.docker.io", True)
    assert endpoint_for("127.0.0.1:5000").base == "http://127.0.0.1:5000"
    assert endpoint_for("127.8.9.1").secure is False
    assert endpoint_for("localhost:5000").secure is False
    assert endpoint_for("quay.io").base == "https://quay.io"
    assert endpoint_for("reg.lan:5000", ["reg.lan:5000"]).secure is False
    assert endpoint_for("10.1.2.3:5000", ["10.0.0.0/8"]).secure is False
    assert endpoint_for("11.1.2.3:5000", ["10.0.0.0/8"]).secure is True


@pytest.mark.parametrize("key", ["token", "access_token"])
def test_bearer_token_flow_anonymous(fake: Fake, key: str) -> None:
    fake.token_key = key
    repo = RegistryClient().repository(reference.parse(f"127.0.0.1:{fake.port}/me/app:v1"))
    manifest = fetch_manifest(repo, "v1", ["application/vnd.oci.image.manifest.v1+json"], "m")
    assert manifest.body == MANIFEST
    assert fake.token_queries == [{"service": ["fake"], "scope": ["repository:me/app:pull"]}]
    assert fake.token_auth == [""]
    assert fake.registry_auth == ["", "Bearer tok123"]
    # the token is reused
    fetch_manifest(repo, "v1", ["application/vnd.oci.image.manifest.v1+json"], "m")
    assert len(fake.token_queries) == 1


def test_bearer_token_flow_with_credentials_and_push_scope(fake: Fake) -> None:
    client = RegistryClient(Credentials("alice", "secret"))
    repo = client.repository(reference.parse(f"127.0.0.1:{fake.port}/me/app:v1"), push=True)
    with pytest.raises(NotFound, match="manifest unknown"):
        fetch_manifest(repo, "nope", ["x"], "manifest for nope not found")
    assert fake.token_queries[0]["scope"] == ["repository:me/app:pull,push",
                                              "repository:me/app:pull"]
    assert fake.token_auth == ["Basic " + base64.b64encode(b"alice:secret").decode()]


def test_wrong_credentials_are_unauthorized(fake: Fake) -> None:
    client = RegistryClient(Credentials("alice", "wrong"))
    repo = client.repository(reference.parse(f"127.0.0.1:{fake.port}/me/app:v1"))
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        fetch_manifest(repo, "v1", ["x"], "m")


def test_decode_registry_auth() -> None:
    creds = Credentials("bob", "pw", "https://index.docker.io/v1/")
    assert decode_registry_auth(encode_registry_auth(creds)) == creds
    unpadded = base64.urlsafe_b64encode(b'{"username":"u","password":"p?>"}').rstrip(b"=")
    assert decode_registry_auth(unpadded.decode()) == Credentials("u", "p?>")
    token = base64.b64encode(b'{"identitytoken":"abc","serveraddress":"r"}').decode()
    assert decode_registry_auth(token) == Credentials(server_address="r", identity_token="abc")
    assert decode_registry_auth("") is None
    assert decode_registry_auth(base64.b64encode(b"{}").decode()) is None
    with pytest.raises(InvalidArgument):
        decode_registry_auth(base64.b64encode(b"[1]").decode())
    with pytest.raises(InvalidArgument):
        decode_registry_auth("%%%")


class _Answer:
    """Just enough of a registry_transport.Response for registry_error."""

    def __init__(self, status: int, body: bytes = b"", challenge: str = "") -> None:
        self.status, self._body, self._challenge = status, body, challenge

    def header(self, name: str, default: str = "") -> str:
        return self._challenge if name.lower() == "www-authenticate" else default

    def read(self, size: int = -1) -> bytes:
        return self._body


def test_auth_errors_read_like_dockers() -> None:
    from dockyard.distribution.registry_transport import registry_error

    realm = 'Bearer realm="http://r/token",service="s",scope="repository:a:push"'
    # a HEAD answer has no body: say what a 401 means, not "unexpected status"
    assert str(registry_error(_Answer(401), "r").message) == \
        "r: unauthorized: authentication required"
    denied = registry_error(_Answer(401, challenge=realm + ',error="insufficient_scope"'), "r")
    assert isinstance(denied, Unauthorized)
    assert denied.message == "r: denied: requested access to the resource is denied"
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}'
    expired = registry_error(_Answer(401, body, realm + ',error="invalid_token"'), "r")
    assert expired.message == "r: unauthorized: authentication required; " \
                              "unauthorized: token expired"
    described = registry_error(_Answer(401, challenge=realm + ',error="invalid_token",'
                                       'error_description="bad signature"'), "r")
    assert described.message == "r: unauthorized: bad signature"
    # Basic challenges and other statuses keep the body's words
    plain = registry_error(_Answer(401, body, 'Basic realm="x"'), "r")
    assert plain.message == "r: unauthorized: token expired"
    assert registry_error(_Answer(502), "r").message == "r: unexpected status 502"
