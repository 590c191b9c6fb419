"""Garbage collection while the registry serves.

`dockyard registry serve` runs as a child process; this test process pushes new images, pulls
(and verifies) kept ones, deletes doomed ones and re-uses their orphaned layers after a HEAD
check, all in threads, while `collect()` sweeps the same storage again and again. Nothing a
manifest references may vanish, no client may see a missing or corrupt blob, a HEAD that said
"present" must stay true until the manifest is pushed, and the garbage must go.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from dockyard.registry.gc import collect
from dockyard.registry.manifests import ManifestStore, references
from dockyard.registry.storage import RegistryStorage

REPO = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GRACE = 1.0  # seconds: short, so orphans become collectable during the run
RUN_FOR = 8.0


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    url: str
    storage: Path


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    storage = tmp_path / "storage"
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             "127.0.0.1:0", "--storage", str(storage)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode() if proc.stdout else ""
        assert "listening on" in line, line
        yield Registry(f"http://{line.split()[-1]}", storage)
    finally:
        proc.terminate()  # our own child, by its handle
        proc.wait(timeout=10)


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only, never through a proxy
    return s


def upload(http: requests.Session, url: str, name: str, data: bytes, chunked: bool) -> None:
    if not chunked:
        r = http.post(f"{url}/v2/{name}/blobs/uploads/", params={"digest": sha(data)}, data=data)
        assert r.status_code == 201, r.text
        return
    r = http.post(f"{url}/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    half = len(data) // 2
    r = http.patch(f"{url}{r.headers['Location']}", data=data[:half],
                   headers={"Content-Range": f"0-{half - 1}"})
    assert r.status_code == 202, r.text
    r = http.put(f"{url}{r.headers['Location']}", params={"digest": sha(data)}, data=data[half:])
    assert r.status_code == 201, r.text


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(x), "size": len(x)} for x in layers]}).encode()


@dataclass
class Shared:
    url: str
    base: bytes
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    kept: list[tuple[str, str, list[str]]] = field(default_factory=list)  # repo, tag, blobs
    doomed: list[tuple[str, str, bytes]] = field(default_factory=list)  # repo, digest, layer
    orphans: list[tuple[float, str, bytes]] = field(default_factory=list)  # ripe at, repo, layer
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def push_image(sh: Shared, http: requests.Session, repo: str, tag: str, layers: list[bytes],
               chunked: bool) -> str:
    """HEAD each layer (the client's "already exists" check), upload the missing ones, push."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "nonce": os.urandom(8).hex()}).encode()
    for layer in layers:
        if http.head(f"{sh.url}/v2/{repo}/blobs/{sha(layer)}").status_code != 200:
            upload(http, sh.url, repo, layer, chunked)
        else:
            sh.count("head-skips" if layer is sh.base else "orphan-head-hits")
    upload(http, sh.url, repo, config, chunked=False)
    time.sleep(0.05)  # a client pushing its layers in parallel: the manifest comes later
    body = image_manifest(config, layers)
    r = http.put(f"{sh.url}/v2/{repo}/manifests/{tag}", data=body,
                 headers={"Content-Type": OCI_MANIFEST})
    if r.status_code != 201:
        sh.fail(f"push {repo}:{tag}: {r.status_code} {r.text}")
    return sha(body)


def pusher(sh: Shared) -> None:
    http, n = session(), 0
    while not sh.stop.is_set():
        n += 1
        repo = f"gc/app{n % 3}"
        fresh = os.urandom(4096 + n)
        with sh.lock:
            ripe = bool(sh.orphans) and sh.orphans[0][0] < time.monotonic()
            reuse = sh.orphans.pop(0) if ripe else None
        layers = [sh.base, fresh]
        if reuse is not None:  # same repository: its HEAD finds the orphan while it lasts
            repo = reuse[1]
            layers.append(reuse[2])
            sh.count("orphan-reuses")
        digest = push_image(sh, http, repo, f"t{n}", layers, chunked=n % 2 == 0)
        with sh.lock:
            if n % 2:
                sh.kept.append((repo, f"t{n}", [sha(x) for x in layers]))
            else:
                sh.doomed.append((repo, digest, fresh))
        sh.count("pushes")


def deleter(sh: Shared) -> None:
    http = session()
    while not sh.stop.is_set():
        with sh.lock:
            victim = sh.doomed.pop(0) if sh.doomed else None
        if victim is None:
            time.sleep(0.01)
            continue
        repo, digest, layer = victim
        r = http.delete(f"{sh.url}/v2/{repo}/manifests/{digest}")
        if r.status_code != 202:
            sh.fail(f"delete {repo}@{digest}: {r.status_code} {r.text}")
        with sh.lock:  # reused once it is older than the grace period
            # reused about when it becomes collectable: the HEAD may find it, the gc may
            # then want it before the manifest arrives
            sh.orphans.append((time.monotonic() + GRACE * random.uniform(0.8, 1.0), repo,
                               layer))
        sh.count("deletes")


def puller(sh: Shared) -> None:
    http, i = session(), 0
    while not sh.stop.is_set():
        with sh.lock:
            pick = sh.kept[i % len(sh.kept)] if sh.kept else None
        i += 1
        if pick is None:
            time.sleep(0.01)
            continue
        repo, tag, blobs = pick
        r = http.get(f"{sh.url}/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        if r.status_code != 200:
            sh.fail(f"pull {repo}:{tag}: {r.status_code} {r.text}")
            continue
        doc = r.json()
        for digest in [doc["config"]["digest"], *(x["digest"] for x in doc["layers"])]:
            blob = http.get(f"{sh.url}/v2/{repo}/blobs/{digest}")
            if blob.status_code != 200 or sha(blob.content) != digest:
                sh.fail(f"blob {repo}@{digest}: {blob.status_code}, got {sha(blob.content)}")
        sh.count("pulls")


def sweeper(sh: Shared, storage: RegistryStorage, deleted: list[str]) -> None:
    while not sh.stop.is_set():
        deleted.extend(collect(storage, grace=GRACE).deleted)
        sh.count("gc-runs")


def test_gc_runs_while_pushes_pulls_and_deletes_go_on(registry: Registry) -> None:
    http = session()
    base = os.urandom(64 << 10)
    sh = Shared(registry.url, base)
    push_image(sh, http, "gc/base", "keep", [base], chunked=False)
    storage = RegistryStorage(registry.storage)
    deleted: list[str] = []
    workers: list[tuple[Callable[..., None], tuple[object, ...]]] = [
        (pusher, (sh,)), (pusher, (sh,)), (deleter, (sh,)), (puller, (sh,)), (puller, (sh,)),
        (sweeper, (sh, storage, deleted))]
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in workers]
    for t in threads:
        t.start()
    time.sleep(RUN_FOR)
    sh.stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not [t for t in threads if t.is_alive()]
    assert sh.failures == [], sh.failures[:5]
    for what in ("pushes", "pulls", "deletes", "gc-runs", "orphan-reuses", "head-skips",
                 "orphan-head-hits"):
        assert sh.counts.get(what, 0) > 0, (what, sh.counts)
    assert deleted, "gc never collected anything while serving"

    # every revision still in the registry has every blob it references, intact
    store = ManifestStore(storage)
    referenced: set[str] = set()
    for repo in store.repositories():
        for digest in store.revisions(repo):
            m = store.get(repo, digest)
            blobs, _ = references(m.media_type, json.loads(m.data))
            referenced.update([digest, *blobs])
            for blob in blobs:
                assert storage.repo_has_blob(repo, blob), (repo, blob)
                assert sha(storage.read_blob(blob)) == blob, (repo, blob)
    # once the load stops and the grace period passes, the CLI gc removes all garbage
    time.sleep(GRACE + 0.2)
    gc = subprocess.run([sys.executable, "-m", "dockyard.registry.main", "gc", "--storage",
                         str(registry.storage), "--grace", str(GRACE)], cwd=REPO,
                        capture_output=True, text=True, check=False, timeout=60)
    assert gc.returncode == 0, gc.stderr
    assert set(storage.all_blobs()) == referenced
    assert not list((registry.storage / "_uploads").iterdir())
