"""What a load plan is made of: one entry per image found in an archive.

Both archive flavours (docker-archive ``manifest.json`` and OCI ``index.json``) are parsed
into :class:`ImageEntry` values; the loader only ever works on those.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.distribution.tarindex import invalid
from dockyard.errors import InvalidArgument
from dockyard.types import digest as digests
from dockyard.types import reference


@dataclass(frozen=True)
class LayerSource:
    """One layer in the archive: its member, and the digest/size of those bytes if known."""

    member: str
    digest: str | None = None  # of the bytes as stored (compressed or not); None: old style
    size: int | None = None


@dataclass
class ImageEntry:
    config: dict[str, Any]
    config_raw: bytes
    config_digest: str
    layers: list[LayerSource]
    tags: list[reference.Reference] = field(default_factory=list)
    parent: str = ""

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    def add_tags(self, refs: list[reference.Reference]) -> None:
        for ref in refs:
            if ref not in self.tags:
                self.tags.append(ref)


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"{what} is not valid JSON: {exc}") from None


def parse_config(raw: bytes, what: str) -> dict[str, Any]:
    """An image config, checked for what loading relies on (rootfs, os)."""
    config = parse_json(raw, what)
    if not isinstance(config, dict):
        raise invalid(f"{what} is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise invalid(f"{what}: image config has no rootfs of type layers")
    diff_ids = rootfs.get("diff_ids")
    if diff_ids is None:
        rootfs["diff_ids"] = diff_ids = []
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and digests.is_digest(d) for d in diff_ids):
        raise invalid(f"{what}: rootfs.diff_ids must be a list of sha256 digests")
    os_name = config.get("os") or "linux"
    if os_name != "linux":
        raise invalid(f'image operating system "{os_name}" cannot be used on this platform')
    return config


def make_entry(raw: bytes, config_digest: str, layers: list[LayerSource],
               what: str) -> ImageEntry:
    config = parse_config(raw, what)
    if len(config["rootfs"]["diff_ids"]) != len(layers):
        raise invalid(f"{what}: the config lists {len(config['rootfs']['diff_ids'])} layers "
                      f"(rootfs.diff_ids) but the manifest has {len(layers)}")
    return ImageEntry(config, raw, config_digest, layers)


def parse_tag(text: Any, what: str) -> reference.Reference:
    """A ``repo:tag`` from an archive; digests and bare names are refused."""
    if not isinstance(text, str):
        raise invalid(f"{what}: tag {text!r} is not a string")
    try:
        ref = reference.parse(text, default_tag=None)
    except InvalidArgument as exc:
        raise invalid(f"{what}: invalid tag {text!r}: {exc.message}") from None
    if ref.digest or not ref.tag:
        raise invalid(f"{what}: invalid tag {text!r}")
    return ref


def string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{what} must be a list of strings")
    return value
