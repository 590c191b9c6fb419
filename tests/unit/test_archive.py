"""docker save / docker load: docker-archive and OCI image-layout tarballs on a real store.

Images are built in a temp store from tars made here, saved, and loaded into a second fresh
store; handcrafted archives (old-style docker-archive, OCI layout with a manifest list,
broken ones) check the reader. Needs root (layers are unpacked with chown and whiteouts).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockyard.content.store import ContentStore
from dockyard.distribution import archive
from dockyard.distribution.oci_layout import host_platform
from dockyard.errors import InvalidArgument, NotFound
from dockyard.image.model import Image, new_config
from dockyard.image.store import ImageStore, canonical_json
from dockyard.metadata.db import Database
from dockyard.snapshots.overlay import Snapshotter
from dockyard.types import reference

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CREATED = "2024-01-02T03:04:05Z"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.split(":", 1)[1]


def make_tar(files: dict[str, bytes | str | None]) -> bytes:
    """A tar: bytes → file, str → symlink target, None → directory (sorted, fixed mtime)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


LAYER_BASE = make_tar({"etc/": None, "etc/os-release": b"NAME=test\n", "bin/": None})
LAYER_APP = make_tar({"app/": None, "app/run.sh": b"#!/bin/sh\necho hi\n"})
LAYER_OTHER = make_tar({"srv/": None, "srv/data": b"other\n"})


@dataclass
class Env:
    store: ImageStore
    root: Path
    messages: list[str]

    def load(self, data: bytes, **kw: Any) -> list[str]:
        return archive.load(self.store, io.BytesIO(data), self.messages.append,
                            tmp_dir=self.root, **kw)

    def tags(self) -> dict[str, str]:
        rows = self.store.db.query("SELECT ref, image_id FROM tags ORDER BY ref")
        return {reference.parse(r).familiar(): i for r, i in rows}


def _make_env(root: Path) -> Env:
    root.mkdir(parents=True)
    db = Database(root / "db.sqlite")
    store = ImageStore(db, ContentStore(root / "content"), Snapshotter(root / "snapshots", db))
    return Env(store, root, [])


@pytest.fixture
def src(tmp_path: Path) -> Env:
    return _make_env(tmp_path / "src")


@pytest.fixture
def dst(tmp_path: Path) -> Env:
    return _make_env(tmp_path / "dst")


def build(env: Env, layers: list[bytes], tags: list[str], cmd: str = "sh") -> Image:
    store = env.store
    with store.lock:
        parent, diff_ids = "", []
        for data in layers:
            layer = store.add_layer(io.BytesIO(data), parent)
            parent = layer.chain_id
            diff_ids.append(layer.diff_id)
        history = [{"created": CREATED, "created_by": f"layer {i}"} for i in range(len(layers))]
        image = store.create(new_config({"Cmd": [cmd]}, diff_ids, history, CREATED))
    for tag in tags:
        store.tag(image.id, reference.parse(tag))
    return store.get(image.id) or image


def saved(env: Env, names: list[str]) -> bytes:
    out = io.BytesIO()
    archive.save(env.store, names, out)
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


def rewrite(data: bytes, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> bytes:
    return make_tar(change(members(data)))  # type: ignore[arg-type]


def assert_untouched(env: Env) -> None:
    """A fresh store after a failed load: no image, no tag, no blob, no snapshot."""
    assert env.store.list() == []
    assert env.tags() == {}
    assert env.store.content.all() == []
    assert env.store.snapshots.all() == []


# -- save ------------------------------------------------------------------------------------
def test_save_layout_is_docker_archive_and_oci_layout(src: Env) -> None:
    base = build(src, [LAYER_BASE], ["bb:latest"])
    app = build(src, [LAYER_BASE, LAYER_APP], ["me/bb:1"], cmd="app")
    files = members(saved(src, ["bb", "me/bb:1"]))

    blobs = sorted(n for n in files if n.startswith("blobs/sha256/") and n != "blobs/sha256/")
    # two configs, two manifests, two distinct layers (the shared base written once)
    assert len(blobs) == 6
    for name in blobs:
        assert sha(files[name]) == "sha256:" + name.rsplit("/", 1)[1]
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {"Config": f"blobs/sha256/{hexof(base.id)}", "RepoTags": ["bb:latest"],
         "Layers": [f"blobs/sha256/{hexof(d)}" for d in base.diff_ids]},
        {"Config": f"blobs/sha256/{hexof(app.id)}", "RepoTags": ["me/bb:1"],
         "Layers": [f"blobs/sha256/{hexof(d)}" for d in app.diff_ids]},
    ]
    assert json.loads(files["repositories"]) == {
        "bb": {"latest": hexof(base.diff_ids[-1])}, "me/bb": {"1": hexof(app.diff_ids[-1])}}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert [d["annotations"] for d in index["manifests"]] == [
        {"io.containerd.image.name": "docker.io/library/bb:latest",
         "org.opencontainers.image.ref.name": "latest"},
        {"io.containerd.image.name": "docker.io/me/bb:1",
         "org.opencontainers.image.ref.name": "1"}]
    for desc in index["manifests"]:
        body = files["blobs/sha256/" + hexof(desc["digest"])]
        assert desc["size"] == len(body)
        assert json.loads(body)["config"]["digest"] in (base.id, app.id)
    assert files["blobs/sha256/" + hexof(base.diff_ids[0])] == LAYER_BASE


def test_save_is_deterministic_and_streams_a_valid_tar(src: Env) -> None:
    build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    first, second = saved(src, ["bb:latest"]), saved(src, ["bb:latest"])
    assert first == second
    assert len(first) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos][:2] == ["blobs", "blobs/sha256"]
    assert [i.name for i in infos][-4:] == ["index.json", "manifest.json", "oci-layout",
                                            "repositories"]
    assert {(i.mtime, i.uid, i.gid) for i in infos} == {(0, 0, 0)}


def test_save_by_id_has_no_tags(src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE], ["bb:latest"])
    files = members(saved(src, [hexof(image.id)[:12]]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]
    assert "repositories" not in files
    assert dst.load(saved(src, [image.id])) == [image.id]
    assert dst.messages == [f"Loaded image ID: {image.id}"]
    assert dst.tags() == {}


def test_save_repository_name_saves_every_tag(src: Env) -> None:
    one = build(src, [LAYER_BASE], ["bb:1", "bb:latest"])
    two = build(src, [LAYER_APP], ["bb:2", "other:x"])
    items = json.loads(members(saved(src, ["bb"]))["manifest.json"])
    assert {i["Config"]: i["RepoTags"] for i in items} == {
        f"blobs/sha256/{hexof(one.id)}": ["bb:1", "bb:latest"],
        f"blobs/sha256/{hexof(two.id)}": ["bb:2"]}


def test_save_unknown_name_raises_before_writing(src: Env) -> None:
    build(src, [LAYER_BASE], ["bb:latest"])
    out = io.BytesIO()
    with pytest.raises(NotFound):
        archive.save(src.store, ["bb:latest", "nope:1"], out)
    assert out.getvalue() == b""


# -- round trip ------------------------------------------------------------------------------
def test_save_load_round_trip(src: Env, dst: Env) -> None:
    base = build(src, [LAYER_BASE], ["bb:latest"])
    app = build(src, [LAYER_BASE, LAYER_APP], ["me/bb:1", "me/bb:2"], cmd="app")
    data = saved(src, ["bb:latest", "me/bb"])

    assert dst.load(data) == [base.id, app.id]
    assert dst.messages == ["Loaded image: bb:latest", "Loaded image: me/bb:1",
                            "Loaded image: me/bb:2"]
    assert dst.tags() == {"bb:latest": base.id, "me/bb:1": app.id, "me/bb:2": app.id}
    loaded = dst.store.resolve("me/bb:1")
    assert loaded.config == app.config and loaded.diff_ids == app.diff_ids
    assert loaded.manifest_digest == app.manifest_digest
    top = dst.store.snapshots.get(loaded.chain_id)
    assert top is not None and (top.dir / "app" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    # loading again changes nothing and says the same
    dst.messages.clear()
    assert dst.load(data) == [base.id, app.id]
    assert dst.messages[0] == "Loaded image: bb:latest"
    assert len(dst.store.list()) == 2


def test_round_trip_keeps_parent_links_and_layerless_images(src: Env, dst: Env) -> None:
    base = build(src, [LAYER_BASE], ["bb:latest"])
    with src.store.lock:
        layer = src.store.add_layer(io.BytesIO(LAYER_APP), base.chain_id)
        child = src.store.create(new_config({"Cmd": ["x"]}, [*base.diff_ids, layer.diff_id], [],
                                            CREATED), parent=base.id)
        empty = src.store.create(new_config({"Cmd": ["y"]}, [], [], CREATED))
    src.store.tag(child.id, reference.parse("child:1"))
    data = saved(src, ["child:1", "bb", empty.id])  # the child comes before its parent
    items = json.loads(members(data)["manifest.json"])
    assert items[0]["Parent"] == base.id and "Parent" not in items[1]
    assert items[2]["Layers"] == [] and items[2]["RepoTags"] is None
    assert dst.load(data) == [child.id, base.id, empty.id]
    assert dst.store.get(child.id).parent == base.id  # type: ignore[union-attr]
    assert dst.messages[-1] == f"Loaded image ID: {empty.id}"


def test_load_gzip_compressed_archive(src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    assert dst.load(gzip.compress(saved(src, ["bb"]))) == [image.id]
    assert dst.tags() == {"bb:latest": image.id}


def test_load_moves_an_existing_tag(src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    old = build(dst, [LAYER_OTHER], ["bb:latest"])
    dst.load(saved(src, ["bb:latest"]))
    assert dst.messages == [
        (f"The image bb:latest already exists, renaming the old one with ID {old.id} to empty "
         "string"), "Loaded image: bb:latest"]
    assert dst.tags() == {"bb:latest": image.id}
    assert dst.store.get(old.id) is not None and dst.store.get(old.id).tags == ()  # type: ignore[union-attr]


# -- handcrafted archives --------------------------------------------------------------------
def _config(diff_ids: list[str], arch: str = "amd64") -> bytes:
    return canonical_json(new_config({"Cmd": ["sh"]}, diff_ids, [], CREATED, architecture=arch))


def old_style_archive(tags: list[str]) -> tuple[bytes, str]:
    """Docker < 25: ``<v1id>/layer.tar`` (the second a symlink to a third dir), ``<id>.json``."""
    diffs = [sha(LAYER_BASE), sha(LAYER_APP)]
    config = _config(diffs)
    v1 = [hashlib.sha256(b"v1-%d" % i).hexdigest() for i in range(3)]
    files: dict[str, bytes | str | None] = {
        f"{v1[0]}/": None, f"{v1[0]}/VERSION": b"1.0", f"{v1[0]}/layer.tar": LAYER_BASE,
        f"{v1[1]}/": None, f"{v1[1]}/layer.tar": f"../{v1[2]}/layer.tar",
        f"{v1[2]}/": None, f"{v1[2]}/layer.tar": LAYER_APP,
        f"{hexof(sha(config))}.json": config,
        "manifest.json": json.dumps([{"Config": f"{hexof(sha(config))}.json",
                                      "RepoTags": tags,
                                      "Layers": [f"{v1[0]}/layer.tar", f"{v1[1]}/layer.tar"]}
                                     ]).encode(),
        "repositories": json.dumps({"old": {"1": v1[1]}}).encode(),
    }
    return make_tar(files), sha(config)


def test_load_old_style_docker_archive(dst: Env) -> None:
    data, image_id = old_style_archive(["old:1"])
    assert dst.load(data) == [image_id]
    assert dst.messages == ["Loaded image: old:1"]
    assert dst.tags() == {"old:1": image_id}
    assert dst.store.resolve("old:1").diff_ids == [sha(LAYER_BASE), sha(LAYER_APP)]


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(blob), "size": len(blob)} for blob in layers]}).encode()


def oci_multiplatform_archive() -> tuple[bytes, dict[str, str]]:
    """An OCI layout: index.json → image index → linux/amd64 and linux/arm64 manifests."""
    blobs: dict[str, bytes] = {}
    descriptors, ids = [], {}
    for arch, layers in (("amd64", [LAYER_BASE, LAYER_APP]), ("arm64", [LAYER_OTHER])):
        gz = [gzip.compress(layer, mtime=0) for layer in layers]
        config = _config([sha(layer) for layer in layers], arch)
        manifest = _manifest(config, gz)
        for blob in (*gz, config, manifest):
            blobs[sha(blob)] = blob
        descriptors.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": sha(manifest), "size": len(manifest),
                            "platform": {"os": "linux", "architecture": arch}})
        ids[f"linux/{arch}"] = sha(config)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descriptors}).encode()
    blobs[sha(index)] = index
    top = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(index),
        "size": len(index), "annotations": {"io.containerd.image.name": "docker.io/library/multi:1",
                                            "org.opencontainers.image.ref.name": "1"}}]}
    files: dict[str, bytes | str | None] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                                            "index.json": json.dumps(top).encode()}
    files.update({"blobs/sha256/" + hexof(d): b for d, b in blobs.items()})
    return make_tar(files), ids


@pytest.mark.parametrize("platform", [None, "linux/amd64", "linux/arm64"])
def test_load_oci_layout_with_gzip_layers_and_manifest_list(dst: Env, platform: str | None) -> None:
    data, ids = oci_multiplatform_archive()
    expected = ids[platform or host_platform()]
    assert dst.load(data, platform=platform) == [expected]
    assert dst.tags() == {"multi:1": expected}
    assert dst.messages == ["Loaded image: multi:1"]
    image = dst.store.get(expected)
    assert image is not None and dst.store.snapshots.get(image.chain_id) is not None


def test_load_oci_layout_without_matching_platform(dst: Env) -> None:
    data, _ = oci_multiplatform_archive()
    with pytest.raises(InvalidArgument, match="no matching manifest for linux/s390x"):
        dst.load(data, platform="linux/s390x")
    assert_untouched(dst)


def test_load_oci_layout_saved_by_us_without_manifest_json(src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], ["me/bb:1"])
    data = rewrite(saved(src, ["me/bb:1"]),
                   lambda f: {k: v for k, v in f.items()
                              if k not in ("manifest.json", "repositories") and v})
    assert dst.load(data) == [image.id]
    assert dst.tags() == {"me/bb:1": image.id}


# -- bad input -------------------------------------------------------------------------------
def _corrupt_layer(files: dict[str, bytes], layer: bytes) -> dict[str, bytes]:
    files["blobs/sha256/" + hexof(sha(layer))] = layer.replace(b"echo hi", b"echo HI")
    return files


def _wrong_diff_id(files: dict[str, bytes]) -> dict[str, bytes]:
    items = json.loads(files["manifest.json"])
    config = json.loads(files[items[0]["Config"]])
    config["rootfs"]["diff_ids"][-1] = sha(b"something else")
    raw = canonical_json(config)
    files["blobs/sha256/" + hexof(sha(raw))] = raw
    items[0]["Config"] = "blobs/sha256/" + hexof(sha(raw))
    files["manifest.json"] = json.dumps(items).encode()
    return files


BAD_CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "garbage": (lambda d: os.urandom(5000), "not a tar file"),
    "empty": (lambda d: b"", "not a tar file"),
    "bad gzip": (lambda d: gzip.compress(d)[:-200], "cannot decompress"),
    "truncated": (lambda d: d[:len(d) // 2], "invalid archive"),
    "blob digest mismatch": (lambda d: rewrite(d, lambda f: _corrupt_layer(f, LAYER_APP)),
                             "digest mismatch"),
    "diff_id mismatch": (lambda d: rewrite(d, _wrong_diff_id), "digest mismatch"),
    "traversal member": (lambda d: rewrite(d, lambda f: {**f, "../evil": b"x"}),
                         "outside the archive"),
    "absolute member": (lambda d: rewrite(d, lambda f: {**f, "/etc/evil": b"x"}),
                        "not a relative path"),
    "no manifest": (lambda d: rewrite(d, lambda f: {k: v for k, v in f.items()
                                                    if k not in ("manifest.json", "index.json")}),
                    "no manifest.json"),
    "bad manifest json": (lambda d: rewrite(d, lambda f: {**f, "manifest.json": b"[{"}),
                          "not valid JSON"),
    "missing layer": (lambda d: rewrite(d, lambda f: {k: v for k, v in f.items()
                                                      if k != "blobs/sha256/" + hexof(sha(LAYER_APP))}),
                      "not found in the archive"),
    "bad repo tag": (lambda d: rewrite(d, lambda f: {**f, "manifest.json": f["manifest.json"]
                                                     .replace(b"bb:latest", b"BB!:latest")}),
                     "invalid tag"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_load_bad_archive_is_refused_and_leaves_nothing(src: Env, dst: Env, case: str) -> None:
    build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    mutate, message = BAD_CASES[case]
    with pytest.raises(InvalidArgument, match=message):
        dst.load(mutate(saved(src, ["bb:latest"])))
    assert_untouched(dst)
    assert list((dst.root / "content" / "ingest").iterdir()) == []


def test_load_symlink_out_of_archive_is_refused(dst: Env) -> None:
    data = make_tar({"manifest.json": b"[]", "x/layer.tar": "../../etc/passwd"})
    with pytest.raises(InvalidArgument, match="outside the archive"):
        dst.load(data)


def test_load_failure_in_second_image_undoes_the_first(src: Env, dst: Env) -> None:
    build(src, [LAYER_BASE], ["bb:latest"])
    build(src, [LAYER_BASE, LAYER_APP], ["me/bb:1"])
    data = rewrite(saved(src, ["bb:latest", "me/bb:1"]), lambda f: _corrupt_layer(f, LAYER_APP))
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        dst.load(data)
    assert_untouched(dst)


def test_load_failure_keeps_existing_images(src: Env, dst: Env) -> None:
    mine = build(dst, [LAYER_BASE], ["bb:latest"])
    build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    data = rewrite(saved(src, ["bb:latest"]), lambda f: _corrupt_layer(f, LAYER_APP))
    with pytest.raises(InvalidArgument):
        dst.load(data)
    assert dst.tags() == {"bb:latest": mine.id}
    assert [i.id for i in dst.store.list()] == [mine.id]
    assert dst.store.snapshots.get(mine.chain_id) is not None


# -- interoperability ------------------------------------------------------------------------
@pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")
@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_reads_our_archive_and_we_read_its(src: Env, dst: Env, tmp_path: Path,
                                                  transport: str) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    ours = tmp_path / "ours.tar"
    ours.write_bytes(saved(src, ["bb:latest"]))
    info = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"{transport}:{ours}"],
                                     check=True, capture_output=True).stdout)
    assert info["rootfs"]["diff_ids"] == image.diff_ids
    theirs = tmp_path / "theirs.tar"
    target = f"{transport}:{theirs}:bb:latest" if transport == "docker-archive" \
        else f"{transport}:{theirs}:docker.io/library/bb:latest"
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{ours}", target],
                   check=True, capture_output=True)
    # skopeo may rewrite the config (key order): the image id is that of its config bytes
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--config", target], check=True,
                         capture_output=True).stdout
    assert json.loads(raw) == image.config or transport == "oci-archive"
    assert dst.load(theirs.read_bytes()) == [sha(raw)]
    assert dst.tags() == {"bb:latest": sha(raw)}
    assert dst.store.get(sha(raw)).diff_ids == image.diff_ids  # type: ignore[union-attr]


def test_load_keeps_the_config_bytes_of_the_archive(dst: Env) -> None:
    """Go's encoder writes ``&&`` as ``\\u0026\\u0026``: the image id is the digest of the bytes
    in the archive, whatever JSON spelling they use."""
    config = json.loads(_config([sha(LAYER_BASE)]))
    config["history"] = [{"created": CREATED, "created_by": "/bin/sh -c a && b"}]
    raw = json.dumps(config, separators=(",", ":")).replace("&", "\\u0026").encode()
    files: dict[str, bytes | str | None] = {
        f"{hexof(sha(raw))}.json": raw, "l/layer.tar": LAYER_BASE,
        "manifest.json": json.dumps([{"Config": f"{hexof(sha(raw))}.json",
                                      "RepoTags": ["go:1"], "Layers": ["l/layer.tar"]}]).encode()}
    assert sha(raw) in dst.load(make_tar(files))
    assert dst.tags() == {"go:1": sha(raw)}


# -- HTTP routes -----------------------------------------------------------------------------
class FakeRequest:
    """Just what the router and the distribution routes use of ``api.http.Request``."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]] | None = None,
                 body: bytes = b"") -> None:
        self.method, self.path, self.query = method, path, query or {}
        self.body = io.BytesIO(body)
        self.responded = False
        self.status = 0
        self.content_type = ""
        self.payload = b""

    def arg(self, name: str, default: str = "") -> str:
        return (self.query.get(name) or [default])[-1]

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        self.status, self.payload, self.content_type = status, body, content_type
        self.responded = True

    def stream(self, chunks: Any, content_type: str = "application/json", status: int = 200,
               headers: dict[str, str] | None = None) -> None:
        self.status, self.content_type, self.responded = status, content_type, True
        self.payload = b"".join(chunks)


def _router(env: Env, events: list[tuple[str, str]]) -> Any:
    from types import SimpleNamespace

    from dockyard.api.router import Router
    from dockyard.api.routes import distribution

    engine = SimpleNamespace(
        images=SimpleNamespace(store=env.store), paths=SimpleNamespace(tmp=env.root),
        events=SimpleNamespace(publish=lambda t, a, i, **kw: events.append((a, i))))
    router = Router()
    distribution.register(router, engine)  # type: ignore[arg-type]
    return router


def test_routes_save_then_load(src: Env, dst: Env) -> None:
    image = build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    src_events: list[tuple[str, str]] = []
    get = FakeRequest("GET", "/v1.47/images/get", {"names": ["bb:latest"]})
    _router(src, src_events).dispatch(get)
    assert (get.status, get.content_type) == (200, "application/x-tar")
    one = FakeRequest("GET", "/images/bb:latest/get")
    _router(src, src_events).dispatch(one)
    assert one.payload == get.payload
    assert src_events == [("save", image.id)] * 2

    dst_events: list[tuple[str, str]] = []
    post = FakeRequest("POST", "/images/load", {"quiet": ["1"]}, get.payload)
    _router(dst, dst_events).dispatch(post)
    assert post.status == 200
    assert [json.loads(line) for line in post.payload.splitlines()] == [
        {"stream": "Loaded image: bb:latest\n"}]
    assert dst_events == [("load", image.id)]
    assert dst.tags() == {"bb:latest": image.id}


def test_routes_errors(src: Env, dst: Env) -> None:
    build(src, [LAYER_BASE, LAYER_APP], ["bb:latest"])
    missing = FakeRequest("GET", "/images/get", {"names": ["nope"]})
    _router(src, []).dispatch(missing)
    assert missing.status == 404
    garbage = FakeRequest("POST", "/images/load", body=b"not a tarball" * 100)
    _router(dst, []).dispatch(garbage)
    assert garbage.status == 400 and b"invalid archive" in garbage.payload
    # readable, but a layer is corrupt: found while applying, after the 200 started
    bad = rewrite(saved(src, ["bb:latest"]), lambda f: _corrupt_layer(f, LAYER_APP))
    late = FakeRequest("POST", "/images/load", body=bad)
    _router(dst, []).dispatch(late)
    assert late.status == 200
    line = json.loads(late.payload)
    assert "digest mismatch" in line["error"]
    assert line["errorDetail"] == {"message": line["error"]}
    assert_untouched(dst)
