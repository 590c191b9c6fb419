"""`dockyard registry serve` over real HTTP: the distribution API, auth, TLS, and skopeo."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dockyard.registry.server import RunningServer, ServerConfig

REPO = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HTTP = requests.Session()
HTTP.trust_env = False  # never send 127.0.0.1 traffic through a proxy


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp_path: Path, **kw: Any) -> RunningServer:
    return RunningServer(ServerConfig("127.0.0.1", 0, tmp_path / "storage", **kw)).start()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    server = start(tmp_path)
    try:
        yield f"http://{server.address}"
    finally:
        server.stop()


def push_blob(url: str, name: str, data: bytes) -> str:
    r = HTTP.post(f"{url}/v2/{name}/blobs/uploads/", params={"digest": sha(data)}, data=data)
    assert r.status_code == 201, r.text
    return sha(data)


def manifest(config: bytes, layers: list[bytes], **extra: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": sha(config), "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": sha(x), "size": len(x)} for x in layers]}
    doc.update(extra)
    return json.dumps(doc).encode()


def put_manifest(url: str, name: str, ref: str, body: bytes) -> requests.Response:
    return HTTP.put(f"{url}/v2/{name}/manifests/{ref}", data=body,
                        headers={"Content-Type": OCI_MANIFEST})


def test_base_and_monolithic_blob(registry: str) -> None:
    r = HTTP.get(f"{registry}/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    digest = push_blob(registry, "a/b", b"0123456789")
    r = HTTP.head(f"{registry}/v2/a/b/blobs/{digest}")
    assert r.status_code == 200 and r.headers["Content-Length"] == "10"
    assert r.headers["Docker-Content-Digest"] == digest
    assert HTTP.get(f"{registry}/v2/a/b/blobs/{digest}").content == b"0123456789"
    r = HTTP.get(f"{registry}/v2/a/b/blobs/{digest}", headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234"
    assert r.headers["Content-Range"] == "bytes 2-4/10"
    r = HTTP.get(f"{registry}/v2/a/b/blobs/{digest}", headers={"Range": "bytes=20-"})
    assert r.status_code == 416
    r = HTTP.get(f"{registry}/v2/other/blobs/{digest}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    r = HTTP.get(f"{registry}/v2/Bad/blobs/{digest}")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "NAME_INVALID"


def test_chunked_upload_status_and_order(registry: str) -> None:
    r = HTTP.post(f"{registry}/v2/c/blobs/uploads/")
    assert r.status_code == 202 and r.headers["Range"] == "0-0"
    loc, uid = r.headers["Location"], r.headers["Docker-Upload-UUID"]
    assert uid in loc
    r = HTTP.patch(f"{registry}{loc}", data=b"hello ",
                       headers={"Content-Range": "0-5", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-5"
    r = HTTP.patch(f"{registry}{loc}", data=b"zzz", headers={"Content-Range": "2-4"})
    assert r.status_code == 416
    r = HTTP.patch(f"{registry}{loc}", data=(b"wor" for _ in range(1)))  # chunked body
    assert r.status_code == 202 and r.headers["Range"] == "0-8"
    r = HTTP.get(f"{registry}{loc}")
    assert r.status_code == 204 and r.headers["Range"] == "0-8"
    r = HTTP.put(f"{registry}{loc}", params={"digest": sha(b"hello world")}, data=b"ld")
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha(b"hello world")
    assert HTTP.get(f"{registry}{r.headers['Location']}").content == b"hello world"
    r = HTTP.get(f"{registry}{loc}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_wrong_digest_and_cancel(registry: str) -> None:
    r = HTTP.post(f"{registry}/v2/c/blobs/uploads/", params={"digest": sha(b"x")}, data=b"y")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert HTTP.head(f"{registry}/v2/c/blobs/{sha(b'y')}").status_code == 404
    loc = HTTP.post(f"{registry}/v2/c/blobs/uploads/").headers["Location"]
    assert HTTP.delete(f"{registry}{loc}").status_code == 204
    assert HTTP.patch(f"{registry}{loc}", data=b"a").status_code == 404


def test_mount_and_blob_delete(registry: str) -> None:
    digest = push_blob(registry, "src", b"shared")
    r = HTTP.post(f"{registry}/v2/dst/blobs/uploads/", params={"mount": digest, "from": "src"})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest
    assert HTTP.get(f"{registry}/v2/dst/blobs/{digest}").content == b"shared"
    r = HTTP.post(f"{registry}/v2/dst/blobs/uploads/",
                      params={"mount": sha(b"absent"), "from": "src"})
    assert r.status_code == 202 and "Location" in r.headers
    assert HTTP.delete(f"{registry}/v2/dst/blobs/{digest}").status_code == 202
    assert HTTP.head(f"{registry}/v2/dst/blobs/{digest}").status_code == 404
    assert HTTP.head(f"{registry}/v2/src/blobs/{digest}").status_code == 200
    assert HTTP.delete(f"{registry}/v2/dst/blobs/{digest}").status_code == 404


def test_manifests_tags_catalog_referrers(registry: str) -> None:
    config, layer = b"{}", b"layer"
    body = manifest(config, [layer])
    r = put_manifest(registry, "x/y", "v1", body)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    push_blob(registry, "x/y", config)
    push_blob(registry, "x/y", layer)
    for tag in ("v1", "v2", "v3", "latest"):
        r = put_manifest(registry, "x/y", tag, body)
        assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha(body)
    r = HTTP.get(f"{registry}/v2/x/y/manifests/v1")
    assert r.content == body and r.headers["Content-Type"] == OCI_MANIFEST
    r = HTTP.head(f"{registry}/v2/x/y/manifests/{sha(body)}")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(body))
    assert HTTP.get(f"{registry}/v2/x/y/manifests/nope").json()["errors"][0]["code"] \
        == "MANIFEST_UNKNOWN"
    assert put_manifest(registry, "x/y", "bad", b"{oops").json()["errors"][0]["code"] \
        == "MANIFEST_INVALID"
    assert put_manifest(registry, "x/y", "-bad", body).json()["errors"][0]["code"] \
        == "TAG_INVALID"
    r = HTTP.get(f"{registry}/v2/x/y/tags/list", params={"n": 2})
    assert r.json() == {"name": "x/y", "tags": ["latest", "v1"]}
    assert r.headers["Link"] == '</v2/x/y/tags/list?n=2&last=v1>; rel="next"'
    r = HTTP.get(f"{registry}/v2/x/y/tags/list", params={"n": "2", "last": "v1"})
    assert r.json()["tags"] == ["v2", "v3"] and "Link" not in r.headers
    assert HTTP.get(f"{registry}/v2/nobody/tags/list").status_code == 404
    put_manifest(registry, "a", "t", body)
    r = HTTP.get(f"{registry}/v2/_catalog", params={"n": 1})
    assert r.json() == {"repositories": ["a"]} and "last=a" in r.headers["Link"]
    assert HTTP.get(f"{registry}/v2/_catalog").json() == {"repositories": ["a", "x/y"]}
    subject = {"mediaType": OCI_MANIFEST, "digest": sha(body), "size": len(body)}
    sig = manifest(config, [], artifactType="application/x-sig", subject=subject)
    r = put_manifest(registry, "x/y", sha(sig), sig)
    assert r.status_code == 201 and r.headers["OCI-Subject"] == sha(body)
    r = HTTP.get(f"{registry}/v2/x/y/referrers/{sha(body)}",
                     params={"artifactType": "application/x-sig"})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sha(sig)]
    assert HTTP.get(f"{registry}/v2/x/y/referrers/{sha(sig)}").json()["manifests"] == []
    assert HTTP.delete(f"{registry}/v2/x/y/manifests/v1").status_code == 202  # untag
    assert HTTP.get(f"{registry}/v2/x/y/manifests/{sha(body)}").status_code == 200
    assert HTTP.delete(f"{registry}/v2/x/y/manifests/{sha(body)}").status_code == 202
    assert HTTP.get(f"{registry}/v2/x/y/manifests/v2").status_code == 404
    assert HTTP.get(f"{registry}/v2/x/y/tags/list").json()["tags"] == []


def htpasswd_file(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    lines = ["plain:secret", "sha:{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode()]
    try:
        import bcrypt
        lines.append("bc:" + bcrypt.hashpw(b"bpw", bcrypt.gensalt(4)).decode().replace(
            "$2b$", "$2y$"))
    except ImportError:
        pass
    path.write_text("\n".join(lines) + "\n")
    return path


def test_basic_auth_and_read_only(tmp_path: Path) -> None:
    server = start(tmp_path, htpasswd=htpasswd_file(tmp_path), read_only=True)
    url = f"http://{server.address}"
    try:
        r = HTTP.get(f"{url}/v2/")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="dockyard"'
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert HTTP.get(f"{url}/v2/", auth=("plain", "wrong")).status_code == 401
        assert HTTP.get(f"{url}/v2/", auth=("plain", "secret")).status_code == 200
        assert HTTP.get(f"{url}/v2/", auth=("sha", "pw")).status_code == 200
        if "bc:" in (tmp_path / "htpasswd").read_text():
            assert HTTP.get(f"{url}/v2/", auth=("bc", "bpw")).status_code == 200
            assert HTTP.get(f"{url}/v2/", auth=("bc", "nope")).status_code == 401
        r = HTTP.post(f"{url}/v2/a/blobs/uploads/", auth=("plain", "secret"))
        assert r.status_code == 405 and r.json()["errors"][0]["code"] == "UNSUPPORTED"
    finally:
        server.stop()


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_tls_subprocess_and_gc(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port, storage = free_port(), tmp_path / "storage"
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve",
                             "--listen", f"127.0.0.1:{port}", "--storage", str(storage),
                             "--tls-cert", str(cert), "--tls-key", str(key)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert b"listening" in (proc.stdout.readline() if proc.stdout else b"")
        url = f"https://127.0.0.1:{port}"
        assert HTTP.get(f"{url}/v2/", verify=str(cert)).status_code == 200
        r = HTTP.post(f"{url}/v2/g/blobs/uploads/", params={"digest": sha(b"junk")},
                          data=b"junk", verify=False)
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    gc = subprocess.run([sys.executable, "-m", "dockyard.registry.main", "gc", "--storage",
                         str(storage), "--grace", "0"], cwd=REPO, capture_output=True, text=True,
                        check=False)
    assert gc.returncode == 0 and f"deleted {sha(b'junk')}" in gc.stdout


def oci_layout(root: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = 3, 0
        tar.addfile(info, io.BytesIO(b"hi\n"))
    layer = buf.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
                         "config": {}}).encode()
    body = manifest(config, [layer])
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in (layer, config, body):
        (blobs / sha(data).split(":")[1]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(body), "size": len(body),
         "annotations": {"org.opencontainers.image.ref.name": "tag"}}]}))


@pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")
def test_skopeo_round_trip(tmp_path: Path, registry: str) -> None:
    src = tmp_path / "src"
    oci_layout(src)
    host = registry.removeprefix("http://")
    env = dict({k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, HOME=str(tmp_path), REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"))

    def skopeo(*args: str) -> str:
        p = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                           text=True, check=False, timeout=120, env=env)
        assert p.returncode == 0, p.stderr
        return p.stdout

    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:tag", f"docker://{host}/x/y:z")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{host}/x/y:z"))
    assert info["Architecture"] == "amd64" and len(info["Layers"]) == 1
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{host}/x/y"))
    assert tags["Tags"] == ["z"]
    skopeo("copy", "--dest-tls-verify=false", f"docker://{host}/x/y:z",
           f"docker://{host}/other/repo:copy", "--src-tls-verify=false")
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", f"docker://{host}/x/y:z", f"oci:{out}:back")
    index = json.loads((out / "index.json").read_text())
    back = index["manifests"][0]["digest"]
    assert back == info["Digest"]  # skopeo gzips the layer on push, so not the source digest
    pulled = json.loads((out / "blobs" / "sha256" / back.split(":")[1]).read_bytes())
    source = json.loads((src / "index.json").read_bytes())
    src_manifest = json.loads((src / "blobs" / "sha256" /
                               source["manifests"][0]["digest"].split(":")[1]).read_bytes())
    assert pulled["config"]["digest"] == src_manifest["config"]["digest"]
    layer = (out / "blobs" / "sha256" / pulled["layers"][0]["digest"].split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:  # gzip or plain, tarfile detects it
        member = tar.extractfile("hello.txt")
        assert member is not None and member.read() == b"hi\n"


@pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")
def test_skopeo_push_with_basic_auth(tmp_path: Path) -> None:
    src = tmp_path / "src"
    oci_layout(src)
    server = start(tmp_path, htpasswd=htpasswd_file(tmp_path))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["HOME"] = str(tmp_path)
    try:
        dest = f"docker://{server.address}/auth/img:1"
        base = ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                f"oci:{src}:tag", dest]
        denied = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env,
                                check=False)
        assert denied.returncode != 0
        ok = subprocess.run([*base, "--dest-creds", "plain:secret"], capture_output=True,
                            text=True, timeout=120, env=env, check=False)
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()
