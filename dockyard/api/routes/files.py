"""Files in and out of containers: export, and ``/containers/{id}/archive`` (docker cp)."""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.api.http import Request
from dockyard.api.progress import stream_bytes
from dockyard.api.router import Router
from dockyard.diff import archive
from dockyard.diff.apply import extract_tar_into
from dockyard.engine import rootfs
from dockyard.errors import Forbidden, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


ETC_FILES = {"/etc/hostname": "hostname", "/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf"}


def register(router: Router, engine: "Engine") -> None:
    containers = engine.containers

    def export(req: Request, id: str) -> None:
        rec = containers.lookup(id)
        stream_bytes(req, lambda out: engine.export(rec, out), "application/x-tar")

    def _with_rootfs(rec, fn):  # type: ignore[no-untyped-def]
        with containers.lock(rec.id):
            mounted_here = rec.state.status not in ("running", "paused")
            root = rootfs.mount(engine.paths, engine.images.store, rec)
            try:
                return fn(root)
            finally:
                if mounted_here:
                    rootfs.unmount(engine.paths, rec)

    def _source(rec, root: Path, path: str) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
        """Where ``path`` really is: the per-container /etc files are bind mounts, visible
        only inside the container, so they are read from the container directory."""
        clean = posixpath.normpath("/" + path.lstrip("/"))
        name = ETC_FILES.get(clean)
        if name and (engine.paths.container(rec.id) / name).exists():
            return engine.paths.container(rec.id), name
        return root, path

    def archive_head(req: Request, id: str) -> None:
        rec = containers.lookup(id)
        path = req.arg("path")
        if not path:
            raise InvalidArgument("path must not be empty")
        try:
            stat = _with_rootfs(rec, lambda root: archive.stat_path(*_source(rec, root, path)))
        except NotFound:
            raise NotFound(f"Could not find the file {path} in container {id}") from None
        req.send(200, b"", headers={"X-Docker-Container-Path-Stat": stat.to_header()})

    def archive_get(req: Request, id: str) -> None:
        rec = containers.lookup(id)
        path = req.arg("path")
        if not path:
            raise InvalidArgument("path must not be empty")
        try:
            stat = _with_rootfs(rec, lambda root: archive.stat_path(*_source(rec, root, path)))
        except NotFound:
            raise NotFound(f"Could not find the file {path} in container {id}") from None
        stream_bytes(req, lambda out: _with_rootfs(rec, lambda root: archive.tar_path(
            *_source(rec, root, path), out)), "application/x-tar",
            headers={"X-Docker-Container-Path-Stat": stat.to_header()})

    def archive_put(req: Request, id: str) -> None:
        rec = containers.lookup(id)
        path = req.arg("path")
        if not path:
            raise InvalidArgument("path must not be empty")

        def put(root):  # type: ignore[no-untyped-def]
            if rec.host_config.get("ReadonlyRootfs"):
                raise Forbidden("container rootfs is marked read-only")
            try:
                extract_tar_into(req.body, root, dest=path,
                                 no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"))
            except NotFound:
                raise NotFound(f"Could not find the file {path} in container {id}") from None
        _with_rootfs(rec, put)
        req.send(200, b"", "text/plain")

    router.add("GET", "/containers/{id}/export", export)
    router.add("HEAD", "/containers/{id}/archive", archive_head)
    router.add("GET", "/containers/{id}/archive", archive_get)
    router.add("PUT", "/containers/{id}/archive", archive_put)
