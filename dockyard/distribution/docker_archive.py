"""The docker-archive flavour: ``manifest.json`` (+ legacy ``repositories``).

Old Docker (< 25) writes ``<id>.json`` configs and ``<v1id>/layer.tar`` layers (identical
layers as symlinks); Docker >= 25 points ``manifest.json`` at ``blobs/sha256/<hex>`` files
of an OCI layout in the same tar. Both are read here; the new form is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockyard.distribution.entries import (
    ImageEntry,
    LayerSource,
    make_entry,
    parse_json,
    parse_tag,
    string_list,
)
from dockyard.distribution.tarindex import TarIndex, blob_path, check_blob, clean_name, invalid
from dockyard.types import digest as digests
from dockyard.types import reference

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
_BLOB_RE = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_CONFIG_RE = re.compile(r"^([0-9a-f]{64})\.json$")


def _digest_in_name(name: str, pattern: re.Pattern[str]) -> str | None:
    match = pattern.match(name)
    return "sha256:" + match.group(1) if match else None


def _config_digest(name: str) -> str | None:
    """The digest a config's member name promises (``blobs/sha256/<hex>``, ``<hex>.json``)."""
    return _digest_in_name(name, _BLOB_RE) or _digest_in_name(name, _CONFIG_RE)


def _layer(tar: TarIndex, path: Any, what: str) -> LayerSource:
    if not isinstance(path, str):
        raise invalid(f"{what}: layer path {path!r} is not a string")
    name = clean_name(path)
    if not tar.has(name):
        raise invalid(f"{what}: layer {name} not found in the archive")
    return LayerSource(name, _digest_in_name(name, _BLOB_RE), None)


def _entry(tar: TarIndex, item: Any, number: int) -> ImageEntry:
    what = f"manifest.json entry {number}"
    if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
        raise invalid(f"{what} has no Config")
    config_name = clean_name(item["Config"])
    raw = tar.read(config_name)
    actual = digests.sha256_bytes(raw)
    expected = _config_digest(config_name)
    if expected is not None:
        check_blob(expected, actual, None, len(raw))
    layers = [_layer(tar, p, what) for p in string_list(item.get("Layers"), f"{what}: Layers")]
    entry = make_entry(raw, actual, layers, f"{what} ({config_name})")
    entry.add_tags([parse_tag(t, what) for t in string_list(item.get("RepoTags"), what)])
    parent = item.get("Parent") or ""
    entry.parent = parent if isinstance(parent, str) and digests.is_digest(parent) else ""
    return entry


def read_entries(tar: TarIndex) -> list[ImageEntry]:
    """One entry per ``manifest.json`` item, configs read and digest-checked."""
    items = parse_json(tar.read(MANIFEST_FILE), MANIFEST_FILE)
    if not isinstance(items, list):
        raise invalid("manifest.json is not a list")
    return [_entry(tar, item, n) for n, item in enumerate(items, 1)]


# -- writing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedImage:
    """One image of a save: ids and blobs, with the tags it is saved under."""

    image_id: str
    manifest_digest: str
    manifest_media_type: str
    diff_ids: tuple[str, ...]
    tags: tuple[reference.Reference, ...]
    parent: str = ""


def manifest_json(images: list[SavedImage]) -> list[dict[str, Any]]:
    """Docker's ``manifest.json``: config, tags (null when none) and layers by blob path."""
    saved = {image.image_id for image in images}
    out: list[dict[str, Any]] = []
    for image in images:
        item: dict[str, Any] = {
            "Config": blob_path(image.image_id),
            "RepoTags": [ref.familiar() for ref in image.tags] or None,
            "Layers": [blob_path(d) for d in image.diff_ids],
        }
        if image.parent and image.parent in saved:
            item["Parent"] = image.parent
        out.append(item)
    return out


def repositories(images: list[SavedImage]) -> dict[str, dict[str, str]]:
    """The legacy ``repositories`` file: repo → tag → hex of the top layer (or image id)."""
    repos: dict[str, dict[str, str]] = {}
    for image in images:
        top = image.diff_ids[-1] if image.diff_ids else image.image_id
        for ref in image.tags:
            repos.setdefault(ref.familiar_repository, {})[ref.tag or "latest"] = \
                digests.hex_of(top)
    return repos
