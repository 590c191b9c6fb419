"""Push and pull against a real registry: Debian's ``docker-registry`` on 127.0.0.1.

Images are built in a temp store from layer tars, pushed, and pulled into a second fresh
store. A second registry with htpasswd auth checks credentials. Needs root (layers are
unpacked with chown) and ``/usr/bin/docker-registry``.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.content.store import ContentStore
from dockyard.distribution.auth import Credentials
from dockyard.distribution.pull import OCI_INDEX, pull, pull_image
from dockyard.distribution.push import push
from dockyard.distribution.registry_client import RegistryClient
from dockyard.errors import InvalidArgument, NotFound, Unauthorized
from dockyard.image.model import Image, new_config
from dockyard.image.store import ImageStore, canonical_json
from dockyard.metadata.db import Database
from dockyard.snapshots.overlay import Snapshotter
from dockyard.types import reference

REGISTRY = "/usr/bin/docker-registry"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(REGISTRY),
                                reason="needs root and docker-registry")
CREATED = "2024-01-02T03:04:05Z"


def make_tar(files: dict[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


LAYER_BASE = make_tar({"etc/": None, "etc/os-release": b"NAME=test\n"})
LAYER_APP = make_tar({"app/": None, "app/run.sh": b"#!/bin/sh\necho hi\n",
                      "app/big": os.urandom(3 << 20)})


@dataclass
class Env:
    store: ImageStore
    root: Path
    messages: list[dict[str, Any]] = field(default_factory=list)

    def statuses(self) -> list[str]:
        return [m.get("status", "") for m in self.messages]


def make_env(root: Path) -> Env:
    root.mkdir(parents=True)
    db = Database(root / "db.sqlite")
    return Env(ImageStore(db, ContentStore(root / "content"),
                          Snapshotter(root / "snapshots", db)), root)


def build(env: Env, layers: list[bytes], tag: str, cmd: str = "sh",
          arch: str = "amd64") -> Image:
    store = env.store
    with store.lock:
        parent, diff_ids = "", list[str]()
        for data in layers:
            layer = store.add_layer(io.BytesIO(data), parent)
            parent, diff_ids = layer.chain_id, diff_ids + [layer.diff_id]
        history = [{"created": CREATED, "created_by": f"layer {i}"} for i in range(len(layers))]
        config = new_config({"Cmd": [cmd]}, diff_ids, history, CREATED, architecture=arch)
        image = store.create(config)
    store.tag(image.id, reference.parse(tag))
    return image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    host: str
    proc: subprocess.Popen[bytes]
    data: Path


def start_registry(root: Path, auth: str = "") -> Iterator[Registry]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
    with (root / "registry.log").open("wb") as log:
        proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
        try:
            _wait(f"http://127.0.0.1:{port}/v2/", proc)
            yield Registry(f"127.0.0.1:{port}", proc, root / "data")
        finally:
            proc.terminate()  # our own child, by its Popen handle (PID)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, wants auth
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("docker-registry did not start")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from start_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import bcrypt

    root = tmp_path_factory.mktemp("authreg")
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=5)).decode()
    (root / "htpasswd").write_text(f"alice:{hashed}\n")
    auth = (f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {root / 'htpasswd'}\n")
    yield from start_registry(root, auth)


@pytest.fixture
def src(tmp_path: Path) -> Env:
    return make_env(tmp_path / "src")


@pytest.fixture
def dst(tmp_path: Path) -> Env:
    return make_env(tmp_path / "dst")


def test_push_then_pull_gives_the_same_image(registry: Registry, src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], f"{registry.host}/user/repo:v1")
    ref = reference.parse(f"{registry.host}/user/repo:v1")
    result = push(src.store, ref, RegistryClient(), src.messages.append)
    statuses = src.statuses()
    assert statuses[0] == f"The push refers to repository [{registry.host}/user/repo]"
    assert statuses.count("Pushed") == 2
    assert statuses[-2] == f"v1: digest: {result.digest} size: {result.size}"
    assert src.messages[-1]["aux"]["Digest"] == result.digest

    pulled = pull_image(dst.store, ref, RegistryClient(), dst.messages.append)
    assert pulled.image.id == image.id
    assert pulled.image.diff_ids == image.diff_ids
    assert pulled.repo_digest == result.digest
    assert dst.store.resolve(str(ref)).id == image.id
    assert dst.store.snapshots.get(image.chain_id) is not None
    statuses = dst.statuses()
    assert statuses[0] == "Pulling from user/repo"
    assert dst.messages[0]["id"] == "v1"
    assert statuses.count("Pulling fs layer") == 2
    assert statuses.count("Download complete") == 2
    assert statuses.count("Pull complete") == 2
    assert "Downloading" in statuses
    assert statuses[-2:] == [f"Digest: {result.digest}",
                             f"Status: Downloaded newer image for {ref.familiar()}"]
    for message in dst.messages:
        json.dumps(message)

    dst.messages.clear()
    again = pull(dst.store, ref, RegistryClient(), dst.messages.append)
    assert again.id == image.id
    assert dst.statuses().count("Already exists") == 2
    assert dst.statuses()[-1] == f"Status: Image is up to date for {ref.familiar()}"


def test_push_again_reports_layers_already_exist(registry: Registry, src: Env) -> None:
    build(src, [LAYER_BASE, LAYER_APP], f"{registry.host}/user/again:1")
    ref = reference.parse(f"{registry.host}/user/again:1")
    first = push(src.store, ref, RegistryClient(), src.messages.append)
    src.messages.clear()
    second = push(src.store, ref, RegistryClient(), src.messages.append)
    assert src.statuses().count("Layer already exists") == 2
    assert "Pushed" not in src.statuses()
    assert second.digest == first.digest


def test_pull_shares_existing_base_layer(registry: Registry, src: Env, dst: Env) -> None:
    build(src, [LAYER_BASE], f"{registry.host}/user/base:1")
    app = build(src, [LAYER_BASE, LAYER_APP], f"{registry.host}/user/app:1")
    for name in ("base:1", "app:1"):
        push(src.store, reference.parse(f"{registry.host}/user/{name}"), RegistryClient(),
             src.messages.append)
    pull(dst.store, reference.parse(f"{registry.host}/user/base:1"), RegistryClient(),
         dst.messages.append)
    dst.messages.clear()
    got = pull(dst.store, reference.parse(f"{registry.host}/user/app:1"), RegistryClient(),
               dst.messages.append)
    assert got.id == app.id
    assert dst.statuses().count("Already exists") == 1
    assert dst.statuses().count("Pull complete") == 1


def test_manifest_list_resolves_to_amd64(registry: Registry, src: Env, dst: Env) -> None:
    amd = build(src, [LAYER_BASE], f"{registry.host}/user/multi:amd64", cmd="amd")
    arm = build(src, [LAYER_APP], f"{registry.host}/user/multi:arm64", cmd="arm",
                arch="arm64")
    pushed = {}
    for arch in ("amd64", "arm64"):
        pushed[arch] = push(src.store, reference.parse(f"{registry.host}/user/multi:{arch}"),
                            RegistryClient(), src.messages.append)
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "digest": pushed[arch].digest, "size": pushed[arch].size,
         "platform": {"os": "linux", "architecture": arch}} for arch in ("arm64", "amd64")]})
    request = urllib.request.Request(
        f"http://{registry.host}/v2/user/multi/manifests/latest", data=index, method="PUT",
        headers={"Content-Type": OCI_INDEX})
    urllib.request.urlopen(request, timeout=10).close()

    ref = reference.parse(f"{registry.host}/user/multi:latest")
    result = pull_image(dst.store, ref, RegistryClient(), dst.messages.append)
    assert result.image.id == amd.id != arm.id
    assert result.repo_digest == "sha256:" + __import__("hashlib").sha256(index).hexdigest()
    other = make_env(dst.root.parent / "arm")
    assert pull(other.store, ref, RegistryClient(), other.messages.append,
                platform="linux/arm64").id == arm.id
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        pull(other.store, ref, RegistryClient(), other.messages.append, platform="linux/s390x")


def test_pull_unknown_tag_is_not_found(registry: Registry, dst: Env) -> None:
    ref = reference.parse(f"{registry.host}/user/nothing:here")
    with pytest.raises(NotFound, match="manifest for .*nothing:here not found"):
        pull(dst.store, ref, RegistryClient(), dst.messages.append)
    assert dst.store.list() == []


def test_credentials(auth_registry: Registry, src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE], f"{auth_registry.host}/alice/img:1")
    ref = reference.parse(f"{auth_registry.host}/alice/img:1")
    with pytest.raises(Unauthorized):
        push(src.store, ref, RegistryClient(), src.messages.append)
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        push(src.store, ref, RegistryClient(Credentials("alice", "wrong")),
             src.messages.append)
    good = RegistryClient(Credentials("alice", "secret"))
    push(src.store, ref, good, src.messages.append)
    assert pull(dst.store, ref, good, dst.messages.append).id == image.id
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        pull(make_env(dst.root.parent / "x").store, ref, RegistryClient(Credentials("a", "b")),
             dst.messages.append)
    with pytest.raises(Unauthorized, match="pull access denied for 127.0.0.1:.*/alice/img"):
        pull(make_env(dst.root.parent / "y").store, ref, RegistryClient(), dst.messages.append)



def test_uncompressed_oci_push_pulls_back(registry: Registry, src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], f"{registry.host}/user/plain:1")
    ref = reference.parse(f"{registry.host}/user/plain:1")
    result = push(src.store, ref, RegistryClient(), src.messages.append, compress=False)
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{registry.host}/v2/user/plain/manifests/1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}), timeout=10) as r:
        manifest = json.loads(r.read())
    assert [layer["digest"] for layer in manifest["layers"]] == image.diff_ids
    assert pull_image(dst.store, ref, RegistryClient(), dst.messages.append).repo_digest \
        == result.digest


def test_corrupt_blob_is_refused(registry: Registry, src: Env, dst: Env) -> None:
    build(src, [LAYER_BASE, LAYER_APP], f"{registry.host}/user/bad:1")
    ref = reference.parse(f"{registry.host}/user/bad:1")
    push(src.store, ref, RegistryClient(), src.messages.append, compress=False)
    layer = build(src, [LAYER_APP], "scratch:1").diff_ids[0]
    blob = registry.data / "docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:] / "data"
    blob.write_bytes(blob.read_bytes()[:-1] + b"x")
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        pull(dst.store, ref, RegistryClient(), dst.messages.append)
    assert dst.store.list() == []
    assert dst.store.snapshots.all() == []
