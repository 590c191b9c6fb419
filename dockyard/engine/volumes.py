"""Volumes for containers: resolve mount specs at create, mount and copy up at start, let go
at exit, remove anonymous ones with ``rm -v``; and the ``/volumes`` use-cases.

Mountpoints are made in the container's init layer (an overlay *lower* dir), so neither the
runtime nor the volume's content ever lands in the upper dir: volume data is never committed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dockyard.engine.containers import Containers
from dockyard.engine.paths import Paths
from dockyard.engine import rootfs
from dockyard.errors import Conflict, NotFound
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime.spec_types import Mount
from dockyard.volume import specs as mountspecs
from dockyard.volume.copyup import copy_up, prepare_mountpoints
from dockyard.volume.specs import MountSpec
from dockyard.volume.store import Volume, VolumeStore

MOUNTS_KEY = "mounts"


class Volumes:
    def __init__(self, store: VolumeStore, containers: Containers, paths: Paths) -> None:
        self.store = store
        self.containers = containers
        self.paths = paths

    # -- who uses what ------------------------------------------------------------------
    def specs_of(self, rec: ContainerRecord) -> list[MountSpec]:
        return [MountSpec.from_dict(d) for d in rec.extra.get(MOUNTS_KEY) or []]

    def users(self, name: str) -> list[str]:
        return [rec.id for rec in self.containers.all()
                if any(s.volume_name == name for s in self.specs_of(rec))]

    # -- create ---------------------------------------------------------------------------
    def resolve(self, host_config: dict[str, Any], image_volumes: list[str],
                cid: str) -> list[MountSpec]:
        """All mounts of a new container, with volumes created (named or anonymous)."""
        def volumes_from(ref: str) -> list[MountSpec]:
            return self.specs_of(self.containers.lookup(ref))

        specs = mountspecs.container_mounts(host_config, image_volumes, volumes_from)
        resolved = []
        for spec in specs:
            if spec.type == "volume" and not spec.source:
                volume = self.store.create(spec.volume_name or None, spec.driver or "local",
                                           dict(spec.volume_labels), dict(spec.volume_options),
                                           anonymous=spec.anonymous or not spec.volume_name)
                spec = spec.with_volume(volume)
            elif spec.type == "bind" and spec.create_source and not os.path.exists(spec.source):
                os.makedirs(spec.source, exist_ok=True)
            resolved.append(spec)
        return resolved

    # -- start / exit ---------------------------------------------------------------------
    def make_mountpoints(self, rec: ContainerRecord) -> None:
        """Before the rootfs is mounted: mountpoints go in the init layer (a lower dir),
        keeping the image's owner and mode where the image already has the directory."""
        specs = self.specs_of(rec)
        if not specs:
            return
        images = self.containers.images
        image = images.get(rec.image_id)
        if image is None:
            raise NotFound(f"No such image: {rec.image_name}")
        images.ensure_unpacked(image.diff_ids)
        lowers = images.snapshots.lowers(image.chain_id) if image.chain_id else \
            [images.snapshots.empty]
        prepare_mountpoints(rootfs.init_layer(self.paths, rec), lowers, specs)

    def attach(self, rec: ContainerRecord, rootfs: Path) -> tuple[list[Mount], dict[str, str]]:
        """Mount volumes for a start and copy image content into new, empty ones; returns
        (OCI mounts, tmpfs) for the spec."""
        specs = self.specs_of(rec)
        for spec in specs:
            if spec.type == "volume" and spec.volume_name:
                data = self.store.mount(spec.volume_name, rec.id)
                if spec.copy_up:
                    copy_up(rootfs, spec.destination, data)
        result = mountspecs.runtime_mounts(specs)
        return [Mount(m.destination, m.type, m.source, m.options) for m in result.mounts], \
            dict(result.tmpfs)

    def detach(self, rec: ContainerRecord) -> None:
        for spec in self.specs_of(rec):
            if spec.type == "volume" and spec.volume_name:
                self.store.unmount(spec.volume_name, rec.id)

    def remove_anonymous(self, rec: ContainerRecord) -> None:
        """``docker rm -v``: the container's anonymous volumes, unless others use them."""
        for spec in self.specs_of(rec):
            if spec.type != "volume" or not spec.volume_name:
                continue
            volume = self.store.find(spec.volume_name)
            if volume is None or not volume.anonymous:
                continue
            if [u for u in self.users(volume.name) if u != rec.id]:
                continue
            try:
                self.store.remove(volume.name, force=True)
            except (NotFound, Conflict):
                pass

    # -- /volumes ------------------------------------------------------------------------
    def remove(self, name: str, force: bool = False) -> None:
        self.store.remove(name, force=force, in_use_by=self.users)

    def inspect(self, name: str) -> dict[str, Any]:
        return self.store.get(name).inspect()

    def create(self, body: dict[str, Any]) -> Volume:
        return self.store.create(body.get("Name") or None, body.get("Driver") or "local",
                                 body.get("Labels") or {}, body.get("DriverOpts") or {})
