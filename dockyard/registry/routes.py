"""The registry application: routing, auth, read-only mode, and the non-upload endpoints."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dockyard.registry.auth import Htpasswd
from dockyard.registry.httpd import Request, Response
from dockyard.registry.manifests import MAX_MANIFEST, OCI_INDEX, ManifestStore
from dockyard.registry.names import RegistryError, check_digest, check_name
from dockyard.registry.storage import RegistryStorage
from dockyard.registry.token import Access, TokenAuth
from dockyard.registry.uploads import Uploads

log = logging.getLogger(__name__)
API_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?:"
                   r"(?P<uploads>blobs/uploads/?)(?P<uid>[^/]*)"
                   r"|blobs/(?P<blob>[^/]+)"
                   r"|manifests/(?P<ref>[^/]+)"
                   r"|(?P<tags>tags/list)"
                   r"|referrers/(?P<subject>[^/]+))$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _error(e: RegistryError) -> Response:
    r = Response.json(e.status, e.body(), e.headers)
    if e.code == "UNAUTHORIZED":
        r.headers.setdefault("WWW-Authenticate", 'Basic realm="dockyard"')
    return r


def _access(req: Request) -> list[Access]:
    """The scopes a request needs under token auth (none: any valid token will do)."""
    if req.path == "/v2/_catalog":
        return [Access("registry", "catalog", ("*",))]
    m = ROUTE.match(req.path)
    if not m:
        return []
    actions = ("pull", "push") if req.method in WRITE_METHODS else ("pull",)
    need = [Access("repository", m["name"], actions)]
    source = req.arg("from")
    if m["uploads"] is not None and req.arg("mount") and source and source != m["name"]:
        need.append(Access("repository", source, ("pull",)))  # cross-repository mount
    return need


def _method_not_allowed(method: str) -> RegistryError:
    return RegistryError("UNSUPPORTED", f"method {method} not allowed here", status=405)


@dataclass
class RegistryApp:
    storage: RegistryStorage
    htpasswd: Htpasswd | None = None
    read_only: bool = False
    tokens: TokenAuth | None = None

    def __post_init__(self) -> None:
        self.manifests = ManifestStore(self.storage)
        self.uploads = Uploads(self.storage)

    def __call__(self, req: Request) -> Response:
        try:
            response = self._route(req)
        except RegistryError as e:
            response = _error(e)
        except Exception:
            log.exception("registry: %s %s failed", req.method, req.path)
            response = Response.json(500, {"errors": [{"code": "UNKNOWN",
                                                       "message": "internal error"}]})
        response.headers.update(API_HEADER)
        return response

    def _route(self, req: Request) -> Response:
        if self.tokens is not None:
            if req.path == "/token":
                return self.tokens.issue(req)
            self.tokens.authorize(req, _access(req))
        elif self.htpasswd is not None and self.htpasswd.verify(req.headers.get("Authorization")) \
                is None:
            raise RegistryError("UNAUTHORIZED", "authentication required")
        if req.path in ("/v2", "/v2/"):
            return Response.json(200, {})
        if self.read_only and req.method in WRITE_METHODS:
            raise RegistryError("UNSUPPORTED", "registry is read-only", status=405)
        if req.path == "/v2/_catalog":
            return self._catalog(req)
        m = ROUTE.match(req.path)
        if not m:
            raise RegistryError("NAME_UNKNOWN", "no such endpoint", {"path": req.path}, status=404)
        name = check_name(m["name"])
        if m["uploads"] is not None:
            return self._upload(req, name, m["uid"])
        if m["blob"] is not None:
            return self._blob(req, name, check_digest(m["blob"]))
        if m["ref"] is not None:
            return self._manifest(req, name, m["ref"])
        if m["tags"] is not None:
            return self._tags(req, name)
        return self._referrers(req, name, m["subject"])

    # --- uploads and blobs -------------------------------------------------------------
    def _upload(self, req: Request, name: str, uid: str) -> Response:
        if not uid:
            if req.method != "POST":
                raise _method_not_allowed(req.method)
            return self.uploads.start(req, name)
        actions = {"PATCH": lambda: self.uploads.patch(req, name, uid),
                   "PUT": lambda: self.uploads.finish(req, name, uid),
                   "GET": lambda: self.uploads.status(name, uid),
                   "DELETE": lambda: self.uploads.cancel(uid)}
        if req.method not in actions:
            raise _method_not_allowed(req.method)
        return actions[req.method]()

    def _blob(self, req: Request, name: str, digest: str) -> Response:
        if req.method == "DELETE":
            if not self.storage.unlink_blob(name, digest):
                raise RegistryError("BLOB_UNKNOWN", "blob unknown to repository",
                                    {"digest": digest})
            return Response(202)
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)
        # a HEAD is how a pushing client decides not to upload: refresh the blob for gc
        present = self.storage.claim_blob(name, digest) if req.method == "HEAD" else \
            self.storage.repo_has_blob(name, digest)
        if not present:
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to repository", {"digest": digest})
        size = self.storage.blob_size(digest)
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
        start, end, status = self._byte_range(req.headers.get("Range"), size)
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        stream = self.storage.open_blob(digest)
        stream.seek(start)
        return Response(status, headers, stream=stream, length=end - start + 1)

    @staticmethod
    def _byte_range(header: str | None, size: int) -> tuple[int, int, int]:
        if not header:
            return 0, size - 1, 200
        m = RANGE.match(header.strip())
        if not m or (not m[1] and not m[2]):
            raise RegistryError("RANGE_INVALID", "unsupported Range", status=416,
                                headers={"Content-Range": f"bytes */{size}"})
        if not m[1]:
            start, end = max(size - int(m[2]), 0), size - 1
        else:
            start = int(m[1])
            end = min(int(m[2]), size - 1) if m[2] else size - 1
        if start >= size or end < start:
            raise RegistryError("RANGE_INVALID", "range not satisfiable", status=416,
                                headers={"Content-Range": f"bytes */{size}"})
        return start, end, 206

    # --- manifests ---------------------------------------------------------------------
    def _manifest(self, req: Request, name: str, ref: str) -> Response:
        if req.method == "PUT":
            return self._put_manifest(req, name, ref)
        if req.method == "DELETE":
            self.manifests.delete(name, ref)
            return Response(202)
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)
        if not self.manifests.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", "repository name not known to registry",
                                {"name": name})
        m = self.manifests.get(name, ref)
        return Response(200, {"Content-Type": m.media_type, "Docker-Content-Digest": m.digest,
                              "ETag": f'"{m.digest}"'}, m.data)

    def _put_manifest(self, req: Request, name: str, ref: str) -> Response:
        data = req.read_all(MAX_MANIFEST)
        result = self.manifests.put(name, ref, data, req.headers.get("Content-Type"),
                                    req.query.get("tag"))
        r = Response(201, {"Location": f"/v2/{name}/manifests/{result.digest}",
                           "Docker-Content-Digest": result.digest})
        if result.subject:
            r.headers["OCI-Subject"] = result.subject
        if "tag" in req.query and result.tags:
            r.extra_headers = [("OCI-Tag", ", ".join(result.tags))]
        return r

    # --- listings ----------------------------------------------------------------------
    def _tags(self, req: Request, name: str) -> Response:
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)
        page, link = _paginate(self.manifests.tags(name), req, f"/v2/{name}/tags/list")
        return Response.json(200, {"name": name, "tags": page}, link)

    def _catalog(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)
        page, link = _paginate(self.manifests.repositories(), req, "/v2/_catalog")
        return Response.json(200, {"repositories": page}, link)

    def _referrers(self, req: Request, name: str, subject: str) -> Response:
        if req.method not in ("GET", "HEAD"):
            raise _method_not_allowed(req.method)
        check_digest(subject, code="DIGEST_INVALID")
        artifact = req.arg("artifactType")
        found = self.manifests.referrers(name, subject, artifact)
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
        r = Response(200, {"Content-Type": OCI_INDEX}, json.dumps(index).encode())
        if artifact is not None:
            r.headers["OCI-Filters-Applied"] = "artifactType"
        return r


def _paginate(items: list[str], req: Request, path: str) -> tuple[list[str], dict[str, str]]:
    last, n_arg = req.arg("last"), req.arg("n")
    if last:
        items = [i for i in items if i > last]
    if n_arg is None or n_arg == "":
        return items, {}
    try:
        n = int(n_arg)
    except ValueError:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "invalid n", {"n": n_arg}) from None
    if n < 0:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "invalid n", {"n": n_arg})
    page = items[:n]
    if len(items) > n and page:
        return page, {"Link": f'<{path}?n={n}&last={quote(page[-1], safe="")}>; rel="next"'}
    return page, {}
