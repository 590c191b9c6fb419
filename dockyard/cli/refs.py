"""Image references the way the docker CLI shows them (distribution/reference, familiar form)."""
from __future__ import annotations

import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
INDEX_SERVER = "https://index.docker.io/v1/"
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


def split_reference(ref: str) -> tuple[str, str, str]:
    """``name[:tag][@digest]`` → (name, tag, digest); tag/digest may be empty."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest


def split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain = DEFAULT_DOMAIN if first == LEGACY_DOMAIN else first
        return domain, rest
    return DEFAULT_DOMAIN, name


def normalize_name(name: str) -> str:
    domain, path = split_domain(name)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return f"{domain}/{path}"


def familiar_name(name: str) -> str:
    domain, path = split_domain(name)
    if domain != DEFAULT_DOMAIN:
        return f"{domain}/{path}"
    if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
        return path[len(OFFICIAL_PREFIX):]
    return path


def familiar_image(image: str) -> str:
    """``docker.io/library/bb:latest@sha256:…`` → ``bb:latest``; untagged keeps the name."""
    if _HEX64.match(image):
        return image
    name, tag, _ = split_reference(image)
    if not re.match(r"^[a-z0-9]", name or "-"):
        return image
    fam = familiar_name(name)
    return f"{fam}:{tag}" if tag else fam


def with_default_tag(ref: str) -> str:
    name, tag, digest = split_reference(ref)
    if digest:
        return ref
    return f"{name}:{tag or 'latest'}"


def registry_host(ref: str) -> str:
    """Where credentials for ``ref`` are keyed in config.json."""
    domain, _ = split_domain(split_reference(ref)[0])
    return INDEX_SERVER if domain == DEFAULT_DOMAIN else domain
