"""The OCI image-layout flavour: ``oci-layout``, ``index.json`` and ``blobs/sha256/*``.

Reading follows ``index.json`` → manifest (or a nested index / Docker manifest list, from
which the host platform's manifest is chosen) → config + layers, checking every blob against
its descriptor. Names come from the top-level descriptors' annotations.
"""
from __future__ import annotations

import platform as host
from typing import Any

from dockyard.distribution.docker_archive import SavedImage
from dockyard.distribution.entries import ImageEntry, LayerSource, make_entry, parse_json
from dockyard.distribution.tarindex import TarIndex, blob_path, invalid
from dockyard.errors import InvalidArgument
from dockyard.image.model import DOCKER_MANIFEST
from dockyard.types import reference

INDEX_FILE = "index.json"
LAYOUT_FILE = "oci-layout"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
MAX_NESTING = 4
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def host_platform() -> str:
    """``linux/<arch>`` of this machine, in Go's architecture names."""
    machine = host.machine()
    return "linux/" + _ARCHES.get(machine, machine or "amd64")


# -- reading ------------------------------------------------------------------------------
def _descriptor(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        raise invalid(f"{what}: malformed descriptor")
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise invalid(f"{what}: malformed descriptor size")
    return value


def _read_json_blob(tar: TarIndex, desc: dict[str, Any], what: str) -> dict[str, Any]:
    data = parse_json(tar.read_blob(desc["digest"], desc.get("size")), what)
    if not isinstance(data, dict):
        raise invalid(f"{what} is not a JSON object")
    return data


def _kind(desc: dict[str, Any], blob: dict[str, Any]) -> str:
    media_type = desc.get("mediaType") or blob.get("mediaType") or ""
    if media_type in INDEX_TYPES or (not media_type and "manifests" in blob):
        return "index"
    if media_type in MANIFEST_TYPES or (not media_type and "layers" in blob):
        return "manifest"
    raise invalid(f"unsupported media type {media_type!r} for {desc['digest']}")


def _matches(desc: dict[str, Any], wanted: str) -> bool:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return False
    return f"{plat.get('os')}/{plat.get('architecture')}" == wanted


def _choose(index: dict[str, Any], wanted: str, what: str) -> dict[str, Any]:
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise invalid(f"{what} has no manifests")
    descs = [_descriptor(m, what) for m in manifests]
    for desc in descs:
        if _matches(desc, wanted):
            return desc
    if len(descs) == 1 and "platform" not in descs[0]:
        return descs[0]
    raise invalid(f"no matching manifest for {wanted} in the manifest list entries")


def _resolve_manifest(tar: TarIndex, desc: dict[str, Any], wanted: str,
                      depth: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow indexes down to one image manifest: (its descriptor, its content)."""
    what = f"blob {desc['digest']}"
    blob = _read_json_blob(tar, desc, what)
    if _kind(desc, blob) == "manifest":
        return desc, blob
    if depth >= MAX_NESTING:
        raise invalid("image indexes nested too deeply")
    return _resolve_manifest(tar, _choose(blob, wanted, what), wanted, depth + 1)


def _entry(tar: TarIndex, manifest_desc: dict[str, Any], manifest: dict[str, Any]) -> ImageEntry:
    what = f"manifest {manifest_desc['digest']}"
    config_desc = _descriptor(manifest.get("config"), f"{what}: config")
    raw = tar.read_blob(config_desc["digest"], config_desc.get("size"))
    layer_descs = manifest.get("layers") or []
    if not isinstance(layer_descs, list):
        raise invalid(f"{what}: layers is not a list")
    layers = []
    for layer in layer_descs:
        layer = _descriptor(layer, f"{what}: layer")
        member = blob_path(layer["digest"])
        if not tar.has(member):
            raise invalid(f"{what}: layer blob {layer['digest']} not found in the archive")
        layers.append(LayerSource(member, layer["digest"], layer.get("size")))
    return make_entry(raw, config_desc["digest"], layers, f"{what}: config")


def _names(desc: dict[str, Any]) -> list[reference.Reference]:
    """The tag a top-level descriptor is annotated with, if it names a tagged repository."""
    annotations = desc.get("annotations")
    if not isinstance(annotations, dict):
        return []
    name = annotations.get(ANNOTATION_IMAGE_NAME)
    ref_name = annotations.get(ANNOTATION_REF_NAME)
    if not isinstance(name, str) and isinstance(ref_name, str) and (
            ":" in ref_name or "/" in ref_name):
        name = ref_name  # a full reference rather than just a tag
    if not isinstance(name, str):
        return []
    try:
        ref = reference.parse(name, default_tag=None)
    except InvalidArgument:
        return []
    return [ref] if ref.tag and not ref.digest else []


def read_entries(tar: TarIndex, wanted: str | None = None) -> list[ImageEntry]:
    """One entry per distinct image the top-level ``index.json`` leads to."""
    wanted = wanted or host_platform()
    index = parse_json(tar.read(INDEX_FILE), INDEX_FILE)
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise invalid("index.json has no manifests list")
    entries: dict[str, ImageEntry] = {}
    for top in index["manifests"]:
        top = _descriptor(top, INDEX_FILE)
        manifest_desc, manifest = _resolve_manifest(tar, top, wanted)
        key = manifest_desc["digest"]
        if key not in entries:
            entries[key] = _entry(tar, manifest_desc, manifest)
        entries[key].add_tags(_names(top))
    return list(entries.values())


# -- writing ------------------------------------------------------------------------------
def layout_json() -> dict[str, str]:
    return {"imageLayoutVersion": "1.0.0"}


def index_json(images: list[SavedImage], sizes: dict[str, int]) -> dict[str, Any]:
    """One manifest descriptor per tag (annotated as Docker does), one per untagged image."""
    manifests: list[dict[str, Any]] = []
    for image in images:
        base = {"mediaType": image.manifest_media_type, "digest": image.manifest_digest,
                "size": sizes[image.manifest_digest]}
        for ref in image.tags:
            manifests.append({**base, "annotations": {
                ANNOTATION_IMAGE_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag or "latest"}})
        if not image.tags:
            manifests.append(base)
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
