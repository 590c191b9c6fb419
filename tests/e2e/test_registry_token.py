"""`dockyard registry serve --auth token`: the Bearer challenge, `GET /token`, JWT checks, and
a push/pull round trip through our own registry client (Docker Hub's token flow).

The server runs as a child process (`python -m dockyard.registry.main serve`) on a free
127.0.0.1 port and is stopped by its PID. The round trip unpacks layers, so it needs root.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from dockyard.distribution.auth import Credentials
from dockyard.distribution.pull import pull_image
from dockyard.distribution.push import push
from dockyard.distribution.registry_client import RegistryClient, parse_challenge
from dockyard.errors import NotFound, Unauthorized
from dockyard.registry.token import sign
from dockyard.types import reference

bcrypt = pytest.importorskip("bcrypt")

REPO = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SECRET = b"0123456789abcdef0123456789abcdef"
HTTP = requests.Session()
HTTP.trust_env = False  # never send 127.0.0.1 traffic through a proxy


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    host: str
    proc: subprocess.Popen[bytes]
    root: Path


def serve(root: Path, *extra: str, own_secret: bool = False) -> Iterator[Server]:
    root.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode()
    (root / "htpasswd").write_text(f"alice:{hashed}\n")
    (root / "secret").write_bytes(SECRET + b"\n")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with (root / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard.registry.main", "serve",
             "--listen", f"127.0.0.1:{port}", "--storage", str(root / "storage"),
             "--auth", "token", "--htpasswd", str(root / "htpasswd"), *extra,
             *(["--token-secret", str(root / "secret")] if own_secret else [])],
            stdout=log, stderr=log, env=env, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()
            try:
                HTTP.get(f"{url}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "registry did not start"
                time.sleep(0.05)
        yield Server(url, f"127.0.0.1:{port}", proc, root)
    finally:
        proc.terminate()  # our own child, by its PID
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("tokenreg"), own_secret=True)


@pytest.fixture(scope="module")
def anon_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("tokenanon"), "--anonymous-pull")


def basic(user: str = "alice", password: str = "s3cret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_token(server: Server, *scopes: str, auth: dict[str, str] | None = None) -> str:
    r = HTTP.get(f"{server.url}/token", headers=auth or {},
                 params=[("service", "dockyard-registry")] + [("scope", s) for s in scopes])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300 and body["issued_at"].endswith("Z")
    return str(body["token"])


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def push_blob(server: Server, name: str, data: bytes, token: str) -> requests.Response:
    return HTTP.post(f"{server.url}/v2/{name}/blobs/uploads/", params={"digest": sha(data)},
                     data=data, headers=bearer(token))


# --- challenges ---------------------------------------------------------------------------
def test_challenges_name_realm_service_and_scope(server: Server) -> None:
    realm = f'Bearer realm="{server.url}/token",service="dockyard-registry"'
    r = HTTP.get(f"{server.url}/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == realm
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    r = HTTP.get(f"{server.url}/v2/a/b/manifests/latest")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"] == realm + ',scope="repository:a/b:pull"'
    r = HTTP.head(f"{server.url}/v2/a/b/blobs/{sha(b'x')}")
    assert r.headers["WWW-Authenticate"] == realm + ',scope="repository:a/b:pull"'
    r = HTTP.post(f"{server.url}/v2/a/b/blobs/uploads/")
    assert r.headers["WWW-Authenticate"] == realm + ',scope="repository:a/b:pull,push"'
    r = HTTP.put(f"{server.url}/v2/a/b/manifests/v1", data=b"{}")
    assert r.headers["WWW-Authenticate"] == realm + ',scope="repository:a/b:pull,push"'
    r = HTTP.get(f"{server.url}/v2/_catalog")
    assert r.headers["WWW-Authenticate"] == realm + ',scope="registry:catalog:*"'
    challenge = parse_challenge(r.headers["WWW-Authenticate"])
    assert challenge.scheme == "bearer" and challenge.params["realm"] == f"{server.url}/token"
    # Basic credentials are for the token endpoint, not the registry itself
    assert HTTP.get(f"{server.url}/v2/", headers=basic()).status_code == 401


# --- the token endpoint -------------------------------------------------------------------
def test_token_with_credentials_grants_what_was_asked(server: Server) -> None:
    token = get_token(server, "repository:a/b:pull,push", "registry:catalog:*", auth=basic())
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    c = claims_of(token)
    assert c["sub"] == "alice" and c["aud"] == "dockyard-registry"
    assert c["exp"] - c["iat"] == 300
    assert c["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
                           {"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert HTTP.get(f"{server.url}/v2/", headers=bearer(token)).status_code == 200
    r = HTTP.get(f"{server.url}/v2/_catalog", headers=bearer(token))
    assert r.status_code == 200 and "repositories" in r.json()


def test_token_wrong_password_or_unknown_service(server: Server) -> None:
    r = HTTP.get(f"{server.url}/token", params={"scope": "repository:a:pull"},
                 headers=basic(password="nope"))
    assert r.status_code == 401
    r = HTTP.get(f"{server.url}/token", params={"scope": "repository:a:pull"},
                 headers=basic(user="mallory"))
    assert r.status_code == 401
    r = HTTP.get(f"{server.url}/token", params={"service": "elsewhere"}, headers=basic())
    assert r.status_code == 400
    r = HTTP.get(f"{server.url}/token", params={"scope": "nonsense"}, headers=basic())
    assert r.status_code == 400


def test_anonymous_token_grants_nothing_without_anonymous_pull(server: Server) -> None:
    token = get_token(server, "repository:a/b:pull")
    c = claims_of(token)
    assert c["sub"] == "" and c["access"] == []
    r = HTTP.get(f"{server.url}/v2/a/b/tags/list", headers=bearer(token))
    assert r.status_code == 401
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_anonymous_pull(anon_server: Server) -> None:
    s = anon_server
    token = get_token(s, "repository:pub/img:pull,push", "registry:catalog:*")
    assert claims_of(token)["access"] == [
        {"type": "repository", "name": "pub/img", "actions": ["pull"]}]
    r = HTTP.get(f"{s.url}/v2/pub/img/blobs/{sha(b'none')}", headers=bearer(token))
    assert r.status_code == 404  # authorised; the blob just isn't there
    assert push_blob(s, "pub/img", b"data", token).status_code == 401  # anonymous: challenge
    assert HTTP.get(f"{s.url}/v2/_catalog", headers=bearer(token)).status_code == 401
    # the secret was generated in the storage dir, private to the owner
    secret = s.root / "storage" / "token-secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) >= 32


# --- using tokens -------------------------------------------------------------------------
def test_push_blob_and_manifest_with_token(server: Server) -> None:
    token = get_token(server, "repository:team/app:pull,push", auth=basic())
    config, layer = b"{}", b"layer bytes"
    for data in (config, layer):
        r = push_blob(server, "team/app", data, token)
        assert r.status_code == 201, r.text
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(layer), "size": len(layer)}]}).encode()
    r = HTTP.put(f"{server.url}/v2/team/app/manifests/v1", data=body,
                 headers={"Content-Type": OCI_MANIFEST, **bearer(token)})
    assert r.status_code == 201, r.text
    r = HTTP.get(f"{server.url}/v2/team/app/manifests/v1",
                 headers={"Accept": OCI_MANIFEST, **bearer(token)})
    assert r.status_code == 200 and r.content == body

    # a pull-only token reads but may not write: authenticated, so 403 DENIED
    pull_only = get_token(server, "repository:team/app:pull", auth=basic())
    r = HTTP.get(f"{server.url}/v2/team/app/blobs/{sha(layer)}", headers=bearer(pull_only))
    assert r.status_code == 200 and r.content == layer
    r = push_blob(server, "team/app", b"more", pull_only)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    # a token for one repository does not open another
    r = HTTP.get(f"{server.url}/v2/team/other/tags/list", headers=bearer(token))
    assert r.status_code == 403
    # cross-repository mounts also need pull on the source
    other = get_token(server, "repository:team/copy:pull,push", auth=basic())
    r = HTTP.post(f"{server.url}/v2/team/copy/blobs/uploads/",
                  params={"mount": sha(layer), "from": "team/app"}, headers=bearer(other))
    assert r.status_code == 403
    both = get_token(server, "repository:team/copy:pull,push", "repository:team/app:pull",
                     auth=basic())
    r = HTTP.post(f"{server.url}/v2/team/copy/blobs/uploads/",
                  params={"mount": sha(layer), "from": "team/app"}, headers=bearer(both))
    assert r.status_code == 201


def forged(claims: dict[str, Any], secret: bytes = SECRET) -> str:
    now = int(time.time())
    base = {"iss": "x", "sub": "alice", "aud": "dockyard-registry", "iat": now, "nbf": now,
            "exp": now + 300,
            "access": [{"type": "repository", "name": "a/b", "actions": ["pull"]}]}
    return sign(base | claims, secret)


def test_expired_forged_and_misaddressed_tokens_are_rejected(server: Server) -> None:
    url = f"{server.url}/v2/a/b/tags/list"
    ok = HTTP.get(url, headers=bearer(forged({})))
    assert ok.status_code == 404  # valid token (signed with the server's secret): no such repo
    now = int(time.time())
    bad = {
        "expired": forged({"iat": now - 600, "nbf": now - 600, "exp": now - 1}),
        "wrong secret": forged({}, secret=b"not-the-server-secret-at-all!!!!"),
        "wrong audience": forged({"aud": "someone-else"}),
        "garbage": "not.a.jwt",
    }
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    bad["alg none"] = none_header + "." + forged({}).split(".")[1] + "."
    token = get_token(server, "repository:a/b:pull", auth=basic())
    head, claims, sig = token.split(".")
    grown = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    grown["access"][0]["actions"] = ["pull", "push"]
    bad["tampered claims"] = ".".join(
        [head, base64.urlsafe_b64encode(json.dumps(grown).encode()).rstrip(b"=").decode(), sig])
    for what, jwt in bad.items():
        r = HTTP.get(url, headers=bearer(jwt))
        assert r.status_code == 401, what
        assert r.headers["WWW-Authenticate"].startswith("Bearer realm="), what
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], what


# --- end to end through the daemon's registry client ---------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="unpacking pulled layers needs root")
def test_push_and_pull_image_through_token_flow(server: Server, tmp_path: Path) -> None:
    from tests.e2e.test_pull_push import LAYER_APP, LAYER_BASE, build, make_env

    src, dst = make_env(tmp_path / "src"), make_env(tmp_path / "dst")
    name = f"{server.host}/team/image:v1"
    image = build(src, [LAYER_BASE, LAYER_APP], name)
    ref = reference.parse(name)
    creds = Credentials(username="alice", password="s3cret")
    result = push(src.store, ref, RegistryClient(creds), src.messages.append)
    assert src.statuses().count("Pushed") == 2

    pulled = pull_image(dst.store, ref, RegistryClient(creds), dst.messages.append)
    assert pulled.image.id == image.id and pulled.repo_digest == result.digest
    assert dst.store.resolve(str(ref)).id == image.id

    with pytest.raises(Unauthorized, match="incorrect username or password"):
        pull_image(make_env(tmp_path / "bad").store, ref,
                   RegistryClient(Credentials(username="alice", password="wrong")),
                   lambda _m: None)
    # anonymous pull is off on this server: the registry says DENIED (insufficient scope),
    # which Docker reports as a not-found "pull access denied"
    with pytest.raises(NotFound, match="pull access denied for .*/team/image"):
        pull_image(make_env(tmp_path / "anon").store, ref, RegistryClient(), lambda _m: None)
