"""Content digests (``sha256:<64 hex>``) and the chain-id arithmetic of layered images."""
from __future__ import annotations

import hashlib
import re

from dockyard.errors import InvalidArgument

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    """The digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else raise InvalidArgument."""
    if not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest: {digest!r}")
    return digest


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def hex_of(digest: str) -> str:
    """The 64 hex characters of a digest."""
    return validate(digest).split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain id of every layer: chain(0) = diff(0); chain(n) = H(chain(n-1) + " " + diff(n))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append(sha256_bytes(f"{chains[-1]} {diff_id}".encode()))
    return chains
