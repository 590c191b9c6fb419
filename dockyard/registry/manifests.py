"""Manifests, tags, referrers and the catalog of one registry storage root.

Per repository::

    repositories/<name>/_manifests/revisions/<alg>/<hex>   holds the manifest's media type
    repositories/<name>/_manifests/tags/<tag>              holds the digest the tag points to

The manifest bytes themselves are blobs (``blobs/<alg>/<hex>``), stored exactly as pushed.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.registry.names import (
    RegistryError,
    check_digest,
    check_tag,
    digest_of,
    is_digest,
)
from dockyard.registry.storage import RegistryStorage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
MAX_MANIFEST = 4 << 20


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class PutResult:
    digest: str
    subject: str | None
    tags: list[str] = field(default_factory=list)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail)


def _unknown(name: str, ref: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"name": name, "reference": ref})


def parse_manifest(data: bytes, content_type: str | None) -> tuple[str, dict[str, Any]]:
    """Decode a pushed manifest and settle its media type (header, then field, then shape)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise _invalid(f"manifest is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest is not a JSON object")
    declared = (content_type or "").split(";", 1)[0].strip()
    field_type = doc.get("mediaType")
    if field_type and declared and declared not in ("application/json", field_type):
        raise _invalid("Content-Type does not match mediaType",
                       {"contentType": declared, "mediaType": field_type})
    media = field_type or (declared if declared != "application/json" else "") or \
        (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if media not in IMAGE_TYPES | INDEX_TYPES:
        raise _invalid("unsupported manifest media type", {"mediaType": media})
    return media, doc


def references(media: str, doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(blob digests, child manifest digests) a manifest refers to."""
    if media in INDEX_TYPES:
        return [], [_descriptor_digest(d) for d in _list(doc, "manifests")]
    config = doc.get("config")
    if not isinstance(config, dict):
        raise _invalid("image manifest has no config descriptor")
    blobs = [_descriptor_digest(config)]
    blobs += [_descriptor_digest(d) for d in _list(doc, "layers") if not d.get("urls")]
    return blobs, []


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _invalid(f"{key} must be a list of descriptors")
    return value


def _descriptor_digest(desc: dict[str, Any]) -> str:
    digest = desc.get("digest")
    if not isinstance(digest, str) or not is_digest(digest):
        raise _invalid("descriptor has an invalid digest", {"digest": digest})
    return digest


class ManifestStore:
    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage

    def _mdir(self, name: str) -> Path:
        return self.storage.repo_dir(name) / "_manifests"

    def _rev(self, name: str, digest: str) -> Path:
        alg, hexpart = check_digest(digest).split(":", 1)
        return self._mdir(name) / "revisions" / alg / hexpart

    def repo_exists(self, name: str) -> bool:
        return self._mdir(name).is_dir() or self.storage.repo_dir(name).is_dir()

    # --- reading -----------------------------------------------------------------------
    def resolve(self, name: str, ref: str) -> str:
        if is_digest(ref):
            if not self._rev(name, ref).is_file():
                raise _unknown(name, ref)
            return ref
        check_tag(ref)
        try:
            return (self._mdir(name) / "tags" / ref).read_text().strip()
        except FileNotFoundError:
            raise _unknown(name, ref) from None

    def get(self, name: str, ref: str) -> Manifest:
        digest = self.resolve(name, ref)
        try:
            media = self._rev(name, digest).read_text().strip()
            data = self.storage.read_blob(digest)
        except (FileNotFoundError, RegistryError):
            raise _unknown(name, ref) from None
        return Manifest(digest, media, data)

    def revisions(self, name: str) -> Iterator[str]:
        base = self._mdir(name) / "revisions"
        if not base.is_dir():
            return
        for alg_dir in sorted(base.iterdir()):
            for f in sorted(alg_dir.iterdir()):
                if not f.name.startswith("."):
                    yield f"{alg_dir.name}:{f.name}"

    def tags(self, name: str) -> list[str]:
        base = self._mdir(name) / "tags"
        if not base.is_dir():
            if not self.repo_exists(name):
                raise RegistryError("NAME_UNKNOWN", "repository name not known to registry",
                                    {"name": name})
            return []
        return sorted(p.name for p in base.iterdir() if not p.name.startswith("."))

    def repositories(self) -> list[str]:
        base = self.storage.root / "repositories"
        if not base.is_dir():
            return []
        found = [str(Path(d).relative_to(base)) for d, subdirs, _ in os.walk(base)
                 if "_manifests" in subdirs]
        return sorted(found)

    # --- writing -----------------------------------------------------------------------
    def put(self, name: str, ref: str, data: bytes, content_type: str | None,
            extra_tags: list[str] | None = None) -> PutResult:
        if len(data) > MAX_MANIFEST:
            raise RegistryError("TOO_LARGE", "manifest too large", status=413)
        media, doc = parse_manifest(data, content_type)
        digest = digest_of(data, ref.split(":", 1)[0] if is_digest(ref) else "sha256")
        if is_digest(ref) and digest != ref:
            raise RegistryError("DIGEST_INVALID", "manifest digest did not match",
                                {"expected": ref, "actual": digest})
        tags = ([] if is_digest(ref) else [check_tag(ref)]) + \
            [check_tag(t) for t in extra_tags or []]
        with self.storage.in_use():  # the blobs checked stay until the revision names them
            self._check_references(name, media, doc)
            self.storage.put_blob(data, digest)
            _write_atomic(self._rev(name, digest), media.encode())
            for tag in tags:
                _write_atomic(self._mdir(name) / "tags" / tag, digest.encode())
        subject = doc.get("subject")
        sub = subject.get("digest") if isinstance(subject, dict) else None
        return PutResult(digest, sub if isinstance(sub, str) else None, tags)

    def _check_references(self, name: str, media: str, doc: dict[str, Any]) -> None:
        blobs, children = references(media, doc)
        for digest in blobs:
            if not self.storage.has_blob(digest):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown "
                                    "to registry", {"digest": digest})
            self.storage.touch_blob(digest)  # protects it from a concurrent gc
            self.storage.link_blob(name, digest)
        for digest in children:
            if not self._rev(name, digest).is_file():
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", "index references a manifest "
                                    "unknown to repository", {"digest": digest})
            self.storage.touch_blob(digest)

    def delete(self, name: str, ref: str) -> None:
        """By tag: untag only. By digest: drop the revision and every tag pointing at it."""
        if not is_digest(ref):
            check_tag(ref)
            try:
                (self._mdir(name) / "tags" / ref).unlink()
            except FileNotFoundError:
                raise _unknown(name, ref) from None
            return
        rev = self._rev(name, ref)
        if not rev.is_file():
            raise _unknown(name, ref)
        rev.unlink()
        tag_dir = self._mdir(name) / "tags"
        if tag_dir.is_dir():
            for tag in tag_dir.iterdir():
                if tag.read_text().strip() == ref:
                    tag.unlink(missing_ok=True)

    # --- referrers ---------------------------------------------------------------------
    def referrers(self, name: str, subject: str, artifact_type: str | None) -> list[dict[str, Any]]:
        check_digest(subject)
        found: list[dict[str, Any]] = []
        for digest in self.revisions(name):
            try:
                m = self.get(name, digest)
                doc = json.loads(m.data)
            except (RegistryError, ValueError):
                continue
            sub = doc.get("subject")
            if not isinstance(sub, dict) or sub.get("digest") != subject:
                continue
            desc = _referrer_descriptor(m, doc)
            if artifact_type is None or desc.get("artifactType") == artifact_type:
                found.append(desc)
        return found


def _referrer_descriptor(m: Manifest, doc: dict[str, Any]) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": len(m.data)}
    config = doc.get("config")
    artifact = doc.get("artifactType") or (config.get("mediaType")
                                           if isinstance(config, dict) else None)
    if artifact:
        desc["artifactType"] = artifact
    if isinstance(doc.get("annotations"), dict):
        desc["annotations"] = doc["annotations"]
    return desc
