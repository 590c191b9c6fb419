"""Blob upload endpoints: POST (start, monolithic, mount), PATCH, PUT, GET status, DELETE."""
from __future__ import annotations

import re

from dockyard.registry.httpd import Request, Response
from dockyard.registry.names import RegistryError, check_digest
from dockyard.registry.storage import RegistryStorage

CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(\d+|\*))?$")


def _range(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _session(name: str, uid: str, size: int, status: int = 202) -> Response:
    return Response(status, {"Location": f"/v2/{name}/blobs/uploads/{uid}",
                             "Range": _range(size), "Docker-Upload-UUID": uid})


def _created(name: str, digest: str) -> Response:
    return Response(201, {"Location": f"/v2/{name}/blobs/{digest}",
                          "Docker-Content-Digest": digest})


class Uploads:
    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage

    def start(self, req: Request, name: str) -> Response:
        mount, digest = req.arg("mount"), req.arg("digest")
        if mount:
            check_digest(mount)
            source = req.arg("from")
            with self.storage.in_use():
                if self.storage.has_blob(mount) and (source is None or
                                                     self.storage.repo_has_blob(source, mount)):
                    self.storage.touch_blob(mount)
                    self.storage.link_blob(name, mount)
                    return _created(name, mount)
        if digest is not None:
            check_digest(digest)
        uid = self.storage.start_upload()
        if digest is None:
            return _session(name, uid, 0)
        return self._complete(req, name, uid, digest)

    def _complete(self, req: Request, name: str, uid: str, digest: str) -> Response:
        check_digest(digest)
        with self.storage.lock(uid):
            self.storage.append_upload(uid, req.body, req.length)
            with self.storage.in_use():
                self.storage.finish_upload(uid, digest)
                self.storage.link_blob(name, digest)
        return _created(name, digest)

    def patch(self, req: Request, name: str, uid: str) -> Response:
        start = self._content_range(req)
        with self.storage.lock(uid):
            size = self.storage.append_upload(uid, req.body, req.length, start)
        return _session(name, uid, size)

    def _content_range(self, req: Request) -> int | None:
        header = req.headers.get("Content-Range")
        if not header:
            return None
        m = CONTENT_RANGE.match(header.strip())
        if not m:
            raise RegistryError("BLOB_UPLOAD_INVALID", "malformed Content-Range", status=416)
        start, end = int(m.group(1)), int(m.group(2))
        if end < start or (req.length is not None and req.length != end - start + 1):
            raise RegistryError("BLOB_UPLOAD_INVALID", "Content-Range does not match the body",
                                status=416)
        return start

    def finish(self, req: Request, name: str, uid: str) -> Response:
        digest = req.arg("digest")
        if not digest:
            raise RegistryError("DIGEST_INVALID", "digest parameter missing")
        self.storage.upload_size(uid)  # BLOB_UPLOAD_UNKNOWN before anything else
        start = self._content_range(req)
        with self.storage.lock(uid):
            self.storage.append_upload(uid, req.body, req.length, start)
            with self.storage.in_use():
                self.storage.finish_upload(uid, check_digest(digest))
                self.storage.link_blob(name, digest)
        return _created(name, digest)

    def status(self, name: str, uid: str) -> Response:
        size = self.storage.upload_size(uid)
        return Response(204, {"Location": f"/v2/{name}/blobs/uploads/{uid}",
                              "Range": _range(size), "Docker-Upload-UUID": uid})

    def cancel(self, uid: str) -> Response:
        self.storage.cancel_upload(uid)
        return Response(204)
