"""Image references as Docker parses them.

``bb`` → ``docker.io/library/bb:latest``; ``me/bb:1``; ``host:5000/a/b@sha256:…``.
The *familiar* form drops ``docker.io/`` and ``library/`` again for display.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: domain, path, and a tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/bb``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """``bb`` for ``docker.io/library/bb``; ``me/bb`` for ``docker.io/me/bb``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain = DEFAULT_DOMAIN if first == LEGACY_DOMAIN else first
        return domain, rest
    domain, path = DEFAULT_DOMAIN, name
    if "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str, *, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise ``text``; raise InvalidArgument with Docker's wording if invalid."""
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidArgument("invalid reference format")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument("invalid reference format")
    if name != name.lower() and "/" not in name:
        raise InvalidArgument("invalid reference format: repository name (library/"
                              f"{name}) must be lowercase")
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.match(domain) or not _PATH_RE.match(path):
        if path != path.lower():
            raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
        raise InvalidArgument("invalid reference format")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidArgument("invalid reference format: repository name must not be more than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def looks_like_id_prefix(text: str) -> bool:
    """True for a (possibly ``sha256:``-prefixed) hex id or id prefix."""
    body = text[7:] if text.startswith("sha256:") else text
    return bool(re.fullmatch(r"[0-9a-f]{1,64}", body))
