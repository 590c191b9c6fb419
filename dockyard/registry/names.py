"""Names, tags and digests as the distribution spec allows them, and its error codes."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
MAX_NAME = 255

STATUS: dict[str, int] = {
    "BLOB_UNKNOWN": 404, "BLOB_UPLOAD_INVALID": 400, "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400, "MANIFEST_BLOB_UNKNOWN": 400, "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404, "NAME_INVALID": 400, "NAME_UNKNOWN": 404, "SIZE_INVALID": 400,
    "TAG_INVALID": 400, "UNAUTHORIZED": 401, "DENIED": 403, "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429, "RANGE_INVALID": 416, "TOO_LARGE": 413,
}


@dataclass
class RegistryError(Exception):
    """A distribution-spec error: ``code`` picks the HTTP status unless ``status`` overrides it."""

    code: str
    message: str
    detail: Any = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")
        if not self.status:
            self.status = STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", "invalid repository name", {"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise RegistryError("TAG_INVALID", "invalid tag", {"tag": tag})
    return tag


def is_digest(ref: str) -> bool:
    return bool(DIGEST_RE.match(ref))


def check_digest(digest: str, code: str = "DIGEST_INVALID") -> str:
    if not is_digest(digest):
        raise RegistryError(code, "invalid digest", {"digest": digest})
    return digest


def hasher(digest: str) -> hashlib._Hash:
    return hashlib.new(digest.split(":", 1)[0])


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
