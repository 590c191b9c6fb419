"""What the builder needs from the engine, as a protocol (the engine implements it in
``dockyard/engine/buildsteps.py``; tests may use a fake)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

Output = Callable[[bytes], None]


@dataclass(frozen=True)
class ImageRef:
    """An image as the builder sees it; ``id == ""`` is ``scratch``."""

    id: str
    run_config: dict[str, Any] = field(default_factory=dict)
    on_build: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOptions:
    network: str = "default"
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    extra_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Removal:
    """When a RUN step's container goes, as the classic builder decides: after a successful
    step (``--rm``, the default), never (``--rm=false``), or always (``--force-rm``, even when
    the step failed; without it a failed step's container is kept for inspection)."""

    rm: bool = True
    force_rm: bool = False

    def removes(self, succeeded: bool) -> bool:
        return self.force_rm or (self.rm and succeeded)


class StepExecutor(Protocol):
    """``author`` (run, write, metadata) is the stage's MAINTAINER, kept in each new image."""

    def resolve(self, name: str) -> ImageRef:
        """An image by name or id (NotFound if missing); ``scratch`` gives ImageRef("")."""

    def get(self, image_id: str) -> ImageRef | None:
        """The image if it still exists (cache entries may point at deleted ones)."""

    def run(self, parent: ImageRef, run_config: dict[str, Any], argv: list[str],
            opts: RunOptions, output: Output, created_by: str,
            announce: Callable[[str], None] = lambda cid: None, author: str = "",
            build_env: tuple[str, ...] = ()) -> str:
        """Run ``argv`` in a container of ``parent`` (``run_config`` gives env, user, workdir;
        ``build_env``, the build args as ``k=v``, is added to the container's environment
        only, never to the committed config) and commit the result; returns the new image
        id. Raises on a non-zero exit. The container is then removed or kept as the build's
        :class:`Removal` says."""

    def write(self, parent: ImageRef, run_config: dict[str, Any], created_by: str,
              fill: Callable[[Path], None], author: str = "") -> str:
        """A new image whose layer is what ``fill(rootfs)`` writes into the parent's rootfs."""

    def metadata(self, parent: ImageRef, run_config: dict[str, Any], created_by: str,
                 announce: Callable[[str], None] = lambda cid: None, author: str = "",
                 workdir: str = "") -> str:
        """A new image with no new layer (ENV, CMD, LABEL, ARG, ...); a container it commits
        from is announced and then removed or kept as for :meth:`run`. With ``workdir``
        (WORKDIR) that directory is made in the container (root-owned, 0755, symlinks
        followed inside the rootfs) and the layer is what that changed: empty when it was
        there already."""

    def rootfs(self, image: ImageRef) -> AbstractContextManager[Path]:
        """Read access to an image's filesystem (COPY --from)."""

    def tag(self, image_id: str, name: str) -> str:
        """Tag and return the familiar name."""


