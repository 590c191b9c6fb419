"""Registry storage: crash-safe uploads, links, manifests/tags/referrers, gc with a grace period."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path

import pytest

from dockyard.registry.gc import collect
from dockyard.registry.manifests import OCI_INDEX, OCI_MANIFEST, ManifestStore
from dockyard.registry.names import RegistryError, check_name, check_tag
from dockyard.registry.storage import RegistryStorage


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def storage(tmp_path: Path) -> RegistryStorage:
    s = RegistryStorage(tmp_path / "reg")
    s.ensure()
    return s


def image_manifest(config: bytes, layers: list[bytes], **extra: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": sha(config), "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": sha(l), "size": len(l)} for l in layers]}
    doc.update(extra)
    return json.dumps(doc).encode()


def test_chunked_upload_becomes_blob_only_after_verify(storage: RegistryStorage) -> None:
    uid = storage.start_upload()
    assert storage.append_upload(uid, io.BytesIO(b"hello "), 6, start=0) == 6
    with pytest.raises(RegistryError) as err:
        storage.append_upload(uid, io.BytesIO(b"x"), 1, start=3)
    assert err.value.status == 416
    storage.append_upload(uid, io.BytesIO(b"world"), 5, start=6)
    assert not storage.has_blob(sha(b"hello world"))
    assert storage.finish_upload(uid, sha(b"hello world")) == sha(b"hello world")
    assert storage.read_blob(sha(b"hello world")) == b"hello world"
    assert list(storage.all_blobs()) == [sha(b"hello world")]
    assert not any((storage.root / "_uploads").iterdir())


def test_wrong_digest_leaves_no_blob(storage: RegistryStorage) -> None:
    uid = storage.start_upload()
    storage.append_upload(uid, io.BytesIO(b"abc"), 3)
    with pytest.raises(RegistryError) as err:
        storage.finish_upload(uid, sha(b"abd"))
    assert err.value.code == "DIGEST_INVALID"
    assert list(storage.all_blobs()) == []
    with pytest.raises(RegistryError) as err:
        storage.upload_size(uid)
    assert err.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_killed_upload_is_never_a_blob_and_gc_sweeps_it(storage: RegistryStorage) -> None:
    uid = storage.start_upload()
    storage.append_upload(uid, io.BytesIO(b"partial"), 7)
    # the process dies here: nothing renamed, the upload directory is an orphan
    assert list(storage.all_blobs()) == []
    old = time.time() - 7200
    for p in (storage.root / "_uploads" / uid, storage.root / "_uploads" / uid / "data"):
        os.utime(p, (old, old))
    report = collect(storage, grace=3600)
    assert report.uploads_removed == [uid]
    assert not (storage.root / "_uploads" / uid).exists()


def test_bad_names_tags_and_uuids() -> None:
    for bad in ("UPPER", "a//b", "-x", "a/", ""):
        with pytest.raises(RegistryError):
            check_name(bad)
    assert check_name("library/busy-box.x_y") == "library/busy-box.x_y"
    with pytest.raises(RegistryError):
        check_tag(".hidden")
    with pytest.raises(RegistryError):
        RegistryStorage(Path("/nonexistent")).upload_size("../../etc")


def test_links_are_per_repository(storage: RegistryStorage) -> None:
    d = storage.put_blob(b"layer")
    storage.link_blob("a/b", d)
    assert storage.repo_has_blob("a/b", d)
    assert not storage.repo_has_blob("c", d)
    assert storage.unlink_blob("a/b", d)
    assert not storage.repo_has_blob("a/b", d) and storage.has_blob(d)


def test_manifest_put_get_untag_delete(storage: RegistryStorage) -> None:
    store = ManifestStore(storage)
    config, layer = b"{}", b"layer-bytes"
    body = image_manifest(config, [layer])
    with pytest.raises(RegistryError) as err:
        store.put("x/y", "v1", body, OCI_MANIFEST)
    assert err.value.code == "MANIFEST_BLOB_UNKNOWN"
    storage.put_blob(config)
    storage.put_blob(layer)
    result = store.put("x/y", "v1", body, OCI_MANIFEST, ["v2"])
    assert result.digest == sha(body) and result.tags == ["v1", "v2"]
    got = store.get("x/y", "v1")
    assert got.data == body and got.media_type == OCI_MANIFEST
    assert store.tags("x/y") == ["v1", "v2"]
    store.delete("x/y", "v1")  # untag only
    assert store.get("x/y", sha(body)).data == body
    store.delete("x/y", sha(body))
    assert store.tags("x/y") == []
    with pytest.raises(RegistryError) as err:
        store.get("x/y", "v2")
    assert err.value.code == "MANIFEST_UNKNOWN"
    with pytest.raises(RegistryError) as err:
        store.put("x/y", sha(b"other"), body, OCI_MANIFEST)
    assert err.value.code == "DIGEST_INVALID"
    assert store.repositories() == ["x/y"]


def test_index_requires_children_and_referrers(storage: RegistryStorage) -> None:
    store = ManifestStore(storage)
    storage.put_blob(b"{}")
    base = image_manifest(b"{}", [])
    base_digest = store.put("r", "base", base, OCI_MANIFEST).digest
    desc = {"mediaType": OCI_MANIFEST, "digest": base_digest, "size": len(base)}
    sig = image_manifest(b"{}", [], artifactType="application/x-sig", subject=desc,
                         annotations={"k": "v"})
    assert store.put("r", sha(sig), sig, OCI_MANIFEST).subject == base_digest
    found = store.referrers("r", base_digest, None)
    assert found == [{"mediaType": OCI_MANIFEST, "digest": sha(sig), "size": len(sig),
                      "artifactType": "application/x-sig", "annotations": {"k": "v"}}]
    assert store.referrers("r", base_digest, "application/other") == []
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [desc]}).encode()
    store.put("r", "idx", index, OCI_INDEX)
    missing = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(b"nope"), "size": 1}]}).encode()
    with pytest.raises(RegistryError) as err:
        store.put("r", "bad", missing, OCI_INDEX)
    assert err.value.code == "MANIFEST_BLOB_UNKNOWN"
    with pytest.raises(RegistryError) as err:
        store.put("r", "bad", b"not json", OCI_MANIFEST)
    assert err.value.code == "MANIFEST_INVALID"


def test_gc_keeps_referenced_and_young_blobs(storage: RegistryStorage) -> None:
    store = ManifestStore(storage)
    config, layer = b'{"a":1}', b"used"
    for data in (config, layer):
        storage.put_blob(data)
    body = image_manifest(config, [layer])
    store.put("x", "t", body, OCI_MANIFEST)
    orphan = storage.put_blob(b"orphan")
    young = storage.put_blob(b"young")
    old = time.time() - 7200
    for d in (sha(config), sha(layer), sha(body), orphan):
        os.utime(storage.blob_path(d), (old, old))
    report = collect(storage, grace=3600, dry_run=True)
    assert report.deleted == [orphan] and storage.has_blob(orphan)
    report = collect(storage, grace=3600)
    assert report.deleted == [orphan] and report.kept_young == [young]
    assert not storage.has_blob(orphan)
    assert all(storage.has_blob(d) for d in (sha(config), sha(layer), sha(body), young))
    store.delete("x", "t")  # untagging keeps the manifest, so everything stays referenced
    assert collect(storage, grace=0).deleted == [young]
