"""The registry calls pull and push make through a :class:`Repository`: manifests
(``GET``/``PUT /v2/<name>/manifests/…``) and blobs (``HEAD``, ``GET``, monolithic upload).
"""
from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.distribution.registry_client import Repository
from dockyard.distribution.registry_transport import Response, registry_error
from dockyard.errors import InvalidArgument
from dockyard.types.digest import sha256_bytes


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str


def fetch_manifest(repo: Repository, reference: str, accept: Sequence[str],
                   what: str) -> Manifest:
    """``GET /v2/<name>/manifests/<tag|digest>``; the digest is that of the exact bytes."""
    with repo.request("GET", repo.url(f"manifests/{reference}"),
                      {"Accept": ", ".join(accept)}) as resp:
        if resp.status != 200:
            raise registry_error(resp, what)
        body = resp.read(16 << 20)
        media_type = resp.header("Content-Type").split(";")[0].strip()
    digest = sha256_bytes(body)
    if reference.startswith("sha256:") and digest != reference:
        raise InvalidArgument(f"manifest {reference} digest mismatch: content is {digest}")
    try:
        media_type = json.loads(body).get("mediaType") or media_type
    except (ValueError, AttributeError):
        raise InvalidArgument(f"{what}: manifest is not a JSON object") from None
    return Manifest(body, media_type, digest)


def blob_exists(repo: Repository, digest: str) -> bool:
    with repo.request("HEAD", repo.url(f"blobs/{digest}")) as resp:
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise registry_error(resp, f"blob {digest}")


def open_blob(repo: Repository, digest: str) -> Response:
    """``GET /v2/<name>/blobs/<digest>`` (redirects followed); the caller closes it."""
    resp = repo.request("GET", repo.url(f"blobs/{digest}"))
    if resp.status != 200:
        try:
            raise registry_error(resp, f"blob {digest}")
        finally:
            resp.close()
    return resp


def upload_blob(repo: Repository, body: bytes | BinaryIO, digest: str, size: int) -> None:
    """Monolithic upload: ``POST …/blobs/uploads/`` then ``PUT <location>?digest=…``."""
    with repo.request("POST", repo.url("blobs/uploads/"), {"Content-Length": "0"},
                      b"") as resp:
        if resp.status != 202:
            raise registry_error(resp, f"start upload of {digest}")
        location = urllib.parse.urljoin(resp.url, resp.header("Location"))
        resp.read()
    sep = "&" if "?" in location else "?"
    url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    with repo.request("PUT", url, headers, body) as resp:
        if resp.status != 201:
            raise registry_error(resp, f"upload blob {digest}")
        resp.read()


def put_manifest(repo: Repository, reference: str, body: bytes, media_type: str) -> str:
    """``PUT /v2/<name>/manifests/<tag>``; returns the digest the registry reports."""
    headers = {"Content-Type": media_type, "Content-Length": str(len(body))}
    with repo.request("PUT", repo.url(f"manifests/{reference}"), headers, body) as resp:
        if resp.status not in (200, 201):
            raise registry_error(resp, f"put manifest {reference}")
        resp.read()
        return resp.header("Docker-Content-Digest") or sha256_bytes(body)
