"""The image as the engine sees it: config, manifest digest, tags, layer chain."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.types.digest import chain_ids

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Image:
    id: str
    config: dict[str, Any]
    manifest_digest: str
    created: float
    size: int
    parent: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids") or [])

    @property
    def chain_id(self) -> str:
        chains = chain_ids(self.diff_ids)
        return chains[-1] if chains else ""

    @property
    def run_config(self) -> dict[str, Any]:
        """The image's default container config (Cmd, Env, Entrypoint, ...)."""
        return dict(self.config.get("config") or {})


def new_config(run_config: dict[str, Any], diff_ids: list[str], history: list[dict[str, Any]],
               created: str, *, author: str = "", architecture: str = "amd64") -> dict[str, Any]:
    """An OCI image config (with Docker's extra fields) in canonical key order."""
    config: dict[str, Any] = {
        "architecture": architecture,
        "config": run_config,
        "created": created,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if author:
        config["author"] = author
    return config
