"""Registry behaviours the other registry tests leave out: resuming an upload after the
connection dropped mid-chunk, a truncated monolithic upload, `_catalog` with `last`,
read-only mode serving reads, and zstd layers (pushed by skopeo) pulled and run through the
daemon.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from dockyard.registry.gc import collect
from dockyard.registry.storage import RegistryStorage
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_registry_server import HTTP, manifest, push_blob, put_manifest, sha, start

ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def send_truncated(address: str, method: str, target: str, declared: int, body: bytes,
                   headers: dict[str, str] | None = None) -> bytes:
    """Announce ``declared`` body bytes, send only ``body``, stop sending; the answer."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        head = [f"{method} {target} HTTP/1.1", f"Host: {address}",
                f"Content-Length: {declared}", "Connection: close",
                *(f"{k}: {v}" for k, v in (headers or {}).items())]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        s.shutdown(socket.SHUT_WR)  # the client "dies" mid-body
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def test_upload_resumes_from_the_range_after_a_dropped_chunk(tmp_path: Path) -> None:
    server = start(tmp_path)
    url = f"http://{server.address}"
    try:
        data = os.urandom(300_000)
        r = HTTP.post(f"{url}/v2/res/blobs/uploads/")
        loc = r.headers["Location"]
        r = HTTP.patch(f"{url}{loc}", data=data[:100_000],
                       headers={"Content-Range": "0-99999"})
        assert r.status_code == 202 and r.headers["Range"] == "0-99999"
        # the second chunk is cut after 50,000 of its 200,000 bytes
        answer = send_truncated(server.address, "PATCH", loc, 200_000, data[100_000:150_000],
                                {"Content-Range": "100000-299999"})
        assert answer.startswith(b"HTTP/1.1 400") and b"BLOB_UPLOAD_INVALID" in answer
        # the client asks where to go on (GET status), and resumes from there
        r = HTTP.get(f"{url}{loc}")
        assert r.status_code == 204
        have = int(r.headers["Range"].split("-")[1]) + 1
        assert have == 150_000
        assert HTTP.head(f"{url}/v2/res/blobs/{sha(data)}").status_code == 404  # not yet
        r = HTTP.patch(f"{url}{loc}", data=data[have:],
                       headers={"Content-Range": f"{have}-{len(data) - 1}"})
        assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
        r = HTTP.put(f"{url}{r.headers['Location']}", params={"digest": sha(data)})
        assert r.status_code == 201, r.text
        assert HTTP.get(f"{url}/v2/res/blobs/{sha(data)}").content == data
        # resuming from a wrong offset is refused with the range the registry holds
        loc = HTTP.post(f"{url}/v2/res/blobs/uploads/").headers["Location"]
        HTTP.patch(f"{url}{loc}", data=b"abc", headers={"Content-Range": "0-2"})
        r = HTTP.patch(f"{url}{loc}", data=b"xyz", headers={"Content-Range": "5-7"})
        assert r.status_code == 416 and r.headers["Range"] == "0-2"
    finally:
        server.stop()


def test_truncated_monolithic_upload_stores_nothing(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        data = os.urandom(10_000)
        answer = send_truncated(server.address, "POST",
                                f"/v2/trunc/blobs/uploads/?digest={sha(data)}", len(data),
                                data[:4_000])
        assert answer.startswith(b"HTTP/1.1 400") and b"BLOB_UPLOAD_INVALID" in answer
        assert HTTP.head(f"http://{server.address}/v2/trunc/blobs/{sha(data)}").status_code \
            == 404
        assert not [p for p in (tmp_path / "storage" / "blobs").rglob("*") if p.is_file()]
    finally:
        server.stop()
    # what is left is an upload session, which gc sweeps once it is old enough
    report = collect(RegistryStorage(tmp_path / "storage"), grace=0)
    assert len(report.uploads_removed) == 1 and report.deleted == []


def test_catalog_last_and_read_only_serving_reads(tmp_path: Path) -> None:
    server = start(tmp_path)
    url = f"http://{server.address}"
    config, layer = b'{"os":"linux"}', b"layer"
    body = manifest(config, [layer])
    try:
        for repo in ("a/one", "b/two", "c/three"):
            push_blob(url, repo, config)
            push_blob(url, repo, layer)
            assert put_manifest(url, repo, "1", body).status_code == 201
        r = HTTP.get(f"{url}/v2/_catalog", params={"n": "1", "last": "a/one"})
        assert r.json() == {"repositories": ["b/two"]}
        assert r.headers["Link"] == '</v2/_catalog?n=1&last=b%2Ftwo>; rel="next"'
        r = HTTP.get(f"{url}/v2/_catalog", params={"last": "b/two"})
        assert r.json() == {"repositories": ["c/three"]} and "Link" not in r.headers
        r = HTTP.get(f"{url}/v2/_catalog", params={"n": "x"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"
    finally:
        server.stop()
    server = start(tmp_path, read_only=True)  # the same storage, read-only
    url = f"http://{server.address}"
    try:
        assert HTTP.get(f"{url}/v2/a/one/manifests/1").content == body
        assert HTTP.get(f"{url}/v2/a/one/blobs/{sha(layer)}").content == layer
        assert HTTP.get(f"{url}/v2/a/one/tags/list").json()["tags"] == ["1"]
        for refused in (put_manifest(url, "a/one", "2", body),
                        HTTP.delete(f"{url}/v2/a/one/manifests/1"),
                        HTTP.delete(f"{url}/v2/a/one/blobs/{sha(layer)}"),
                        HTTP.post(f"{url}/v2/a/one/blobs/uploads/")):
            assert refused.status_code == 405
            assert refused.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert HTTP.get(f"{url}/v2/a/one/tags/list").json()["tags"] == ["1"]
    finally:
        server.stop()


@pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")
def test_zstd_layers_pushed_by_skopeo_pull_and_run(daemon: DaemonProcess, bb_image: str,
                                                   tmp_path: Path) -> None:
    server = start(tmp_path)
    host = server.address
    name = f"{host}/zstd/bb{uuid.uuid4().hex[:6]}:1"
    archive = tmp_path / "bb.tar"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(tmp_path), REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"))
    marker, local = uuid.uuid4().hex, f"zstd-src-{uuid.uuid4().hex[:8]}:1"
    box = f"zstd-box-{marker[:8]}"
    try:  # an image with a layer of its own, so the pull must download and unpack it
        made = daemon.docker("run", "--name", box, bb_image, "sh", "-c",
                             f"echo {marker} > /marker")
        assert made.returncode == 0, made.stderr
        assert daemon.docker("commit", box, local).returncode == 0
        layers_of = ("image", "inspect", "--format", "{{json .RootFS.Layers}}")
        original = daemon.docker(*layers_of, local)
        saved = daemon.docker("save", "-o", str(archive), local)
        assert saved.returncode == 0, saved.stderr
        assert daemon.docker("rm", box).returncode == 0
        assert daemon.docker("rmi", local).returncode == 0
        copied = subprocess.run(
            ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
             "--dest-compress-format", "zstd", "--format", "oci",
             f"docker-archive:{archive}", f"docker://{name}"],
            capture_output=True, text=True, timeout=120, env=env, check=False)
        assert copied.returncode == 0, copied.stderr
        repo, tag = name.removeprefix(f"{host}/").split(":")
        got = HTTP.get(f"http://{host}/v2/{repo}/manifests/{tag}",
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        layers = json.loads(got.content)["layers"]
        assert layers and {x["mediaType"] for x in layers} == {ZSTD_LAYER}
        blob = HTTP.get(f"http://{host}/v2/{repo}/blobs/{layers[0]['digest']}").content
        assert blob[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
        pulled = daemon.docker("pull", name, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        assert b"Pull complete" in pulled.stdout and b"Downloaded newer image" in pulled.stdout
        ran = daemon.docker("run", "--rm", name, "cat", "/marker", timeout=60)
        assert ran.returncode == 0 and ran.stdout == f"{marker}\n".encode(), ran.stderr
        # skopeo rewrites the config for OCI, but the unpacked layers are the very same
        assert daemon.docker(*layers_of, name).stdout == original.stdout
    finally:
        daemon.docker("rm", "-f", box)
        daemon.docker("rmi", "-f", name, local)
        server.stop()
