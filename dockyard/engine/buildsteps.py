"""The engine side of the builder: each step runs in a real container (same runtime, limits
and confinement as ``docker run``) and is committed as an intermediate image.

Like the classic builder, a RUN step's container (and the created, never started one a
metadata step such as ENV or CMD is committed from) is removed after the step succeeded
(``rm``, the default), kept with ``--rm=false``, and kept after a failed step unless
``--force-rm`` (then it is always removed). COPY and ADD write into a bare overlay of the
parent's layers: no container, as in Docker. A FROM image that is missing locally, or every
one with ``--pull``, is pulled through :class:`~dockyard.engine.buildpull.BuildPuller`."""
from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.builder.executor import ImageRef, Output, Removal, RunOptions
from dockyard.engine import rootfs
from dockyard.engine.attach import Session
from dockyard.engine.containers import Containers
from dockyard.engine.images import Images
from dockyard.engine.lifecycle import Lifecycle
from dockyard.errors import InvalidArgument, NotFound
from dockyard.host import mounts
from dockyard.image.model import Image
from dockyard.metadata.containers import ContainerRecord
from dockyard.runtime.spec_user import scoped_path
from dockyard.types import reference
from dockyard.util.timefmt import now_rfc3339

if TYPE_CHECKING:
    from dockyard.engine.buildpull import BuildPuller

BUILD_LABEL = "io.dockyard.build-step"


class StepFailed(InvalidArgument):
    """A RUN step exited non-zero (Docker's text: "The command '…' returned a non-zero code")."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class EngineSteps:
    def __init__(self, containers: Containers, lifecycle: Lifecycle, images: Images,
                 mtime_clamp: int | None = None, *, removal: Removal = Removal(),
                 puller: "BuildPuller | None" = None) -> None:
        self.containers = containers
        self.lifecycle = lifecycle
        self.images = images
        # SOURCE_DATE_EPOCH: no file in a new layer is newer, so rebuilds give the same digests
        self.mtime_clamp = mtime_clamp
        self.removal = removal
        self.puller = puller

    def configured(self, removal: Removal, puller: "BuildPuller | None") -> "EngineSteps":
        """The same steps for one build's options (``--rm``, ``--force-rm``, ``--pull``)."""
        return EngineSteps(self.containers, self.lifecycle, self.images, self.mtime_clamp,
                           removal=removal, puller=puller)

    # -- images -------------------------------------------------------------------------
    def resolve(self, name: str) -> ImageRef:
        if name == "scratch":
            return ImageRef("")
        if self.puller is not None:
            return _ref(self.puller.resolve(name))
        return _ref(self.images.store.resolve(name))

    def get(self, image_id: str) -> ImageRef | None:
        image = self.images.store.get(image_id) if image_id else None
        return _ref(image) if image is not None else None

    def tag(self, image_id: str, name: str) -> str:
        ref = reference.parse(name)
        self.images.store.tag(image_id, ref)
        self.images.events.publish("image", "tag", image_id, name=ref.familiar())
        return ref.familiar()

    def _base(self, parent: ImageRef) -> Image | None:
        if not parent.id:
            return None
        image = self.images.store.get(parent.id)
        if image is None:
            raise NotFound(f"No such image: {parent.id}")
        return image

    def metadata(self, parent: ImageRef, run_config: dict[str, Any], created_by: str,
                 announce: Callable[[str], None] = lambda cid: None, author: str = "",
                 workdir: str = "") -> str:
        """A config-only image. As in Docker's classic builder, the step is committed from a
        container that is created (never started) and then removed or kept like a RUN
        step's; ``FROM scratch`` has no image to create one from, so none is made there.
        WORKDIR (``workdir``) makes its directory in that container's layer first, as
        Docker's ``ContainerCreateWorkdir``: the step's layer holds it when it was new."""
        entry = _history(created_by, author)
        if not parent.id:
            if not workdir:
                return self.images.derive(None, run_config, entry, author=author).id
            with self._layer_dir(parent) as (root, upper):
                make_workdir(root, workdir)
                return self.images.derive(None, run_config, entry, upper=_changed(upper),
                                          mtime_clamp=self.mtime_clamp, author=author).id
        shell = list(run_config.get("Shell") or ["/bin/sh", "-c"])
        rec = self._container(parent, run_config, [*shell, "#(nop) ", created_by],
                              {"NetworkMode": "none"})
        announce(rec.id)

        def make_dir() -> Path | None:
            if not workdir:
                return None
            root = rootfs.mount(self.containers.paths, self.images.store, rec)
            try:
                make_workdir(root, workdir)
            finally:
                rootfs.unmount(self.containers.paths, rec)
            return _changed(self.containers.paths.container(rec.id) / "upper")
        return self._commit(rec, parent, run_config, entry, author, make_dir)

    def _commit(self, rec: ContainerRecord, parent: ImageRef, run_config: dict[str, Any],
                entry: dict[str, Any], author: str, work: Callable[[], Path | None]) -> str:
        """Does the step's ``work`` in ``rec`` (the layer it made, if any), commits the image,
        then removes or keeps the container as ``--rm``/``--force-rm`` say."""
        succeeded = False
        try:
            upper = work()
            image_id = self.images.derive(self._base(parent), run_config, entry, upper=upper,
                                          mtime_clamp=self.mtime_clamp, author=author).id
            succeeded = True
            return image_id
        finally:
            if self.removal.removes(succeeded):
                self._discard(rec)

    # -- containers for steps -----------------------------------------------------------
    def _container(self, parent: ImageRef, run_config: dict[str, Any], argv: list[str],
                   host: dict[str, Any]) -> ContainerRecord:
        body = {key: run_config.get(key) for key in ("Env", "User", "WorkingDir")}
        body.update(Image=parent.id, Cmd=argv, Entrypoint=[], Labels={BUILD_LABEL: "1"},
                    HostConfig=host)
        return self.containers.create(body, None)

    def run(self, parent: ImageRef, run_config: dict[str, Any], argv: list[str],
            opts: RunOptions, output: Output, created_by: str,
            announce: Callable[[str], None] = lambda cid: None, author: str = "",
            build_env: tuple[str, ...] = ()) -> str:
        if not parent.id:
            raise InvalidArgument("failed to create task for container: exec: \"/bin/sh\": "
                                  "stat /bin/sh: no such file or directory (FROM scratch)")
        host = {"NetworkMode": opts.network, "Memory": opts.memory,
                "MemorySwap": opts.memory_swap, "CpuShares": opts.cpu_shares,
                "NanoCpus": opts.nano_cpus, "ExtraHosts": list(opts.extra_hosts)}
        env = [*(run_config.get("Env") or []), *build_env]
        rec = self._container(parent, run_config | {"Env": env}, argv, host)
        announce(rec.id)

        def run_step() -> Path | None:
            code = self._run_attached(rec, output)
            if code != 0:
                raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: "
                                 f"{code}", code)
            return _changed(self.containers.paths.container(rec.id) / "upper")
        return self._commit(rec, parent, run_config, _history(created_by, author), author,
                            run_step)

    def _run_attached(self, rec: ContainerRecord, output: Output) -> int:
        ours, theirs = socket.socketpair()
        session = Session(sock=theirs, tty=False, stdin=False, stdout=True, stderr=True,
                          stdin_once=False)
        self.lifecycle.tasks.attach.add_pending(rec.id, session)
        pump = threading.Thread(target=_pump_when_connected, args=(session,), daemon=True)
        pump.start()
        try:
            self.lifecycle.start(rec.id)
            _forward(ours, output)
            return self.lifecycle.wait(rec.id, "not-running").status_code
        finally:
            session.cancel()
            ours.close()
            pump.join(timeout=5)

    def _discard(self, rec: ContainerRecord) -> None:
        try:
            self.lifecycle.remove(rec.id, force=True)
        except NotFound:
            pass

    def write(self, parent: ImageRef, run_config: dict[str, Any], created_by: str,
              fill: Callable[[Path], None], author: str = "") -> str:
        """COPY/ADD: ``fill`` writes into an overlay of the parent's layers (no container and
        no init layer, as Docker's classic builder writes into a bare read-write layer); the
        overlay's upper directory becomes the new layer."""
        entry = _history(created_by, author)
        with self._layer_dir(parent) as (root, upper):
            fill(root)
            return self.images.derive(self._base(parent), run_config, entry,
                                      upper=_changed(upper),
                                      mtime_clamp=self.mtime_clamp, author=author).id

    @contextmanager
    def rootfs(self, image: ImageRef) -> Iterator[Path]:
        with self._layer_dir(image) as (root, _):
            yield root

    @contextmanager
    def _layer_dir(self, image: ImageRef) -> Iterator[tuple[Path, Path]]:
        """A private read-write view of ``image``'s filesystem and the directory its changes
        go to (for ``scratch`` both are one empty directory)."""
        with tempfile.TemporaryDirectory(dir=self.containers.paths.tmp,
                                         prefix="build-layer-") as scratch:
            base = Path(scratch)
            upper = base / "upper"
            upper.mkdir(mode=0o755)
            upper.chmod(0o755)
            if not image.id:
                yield upper, upper
                return
            found = self._base(image)
            assert found is not None
            store = self.images.store
            store.ensure_unpacked(found.diff_ids)
            lowers = store.snapshots.lowers(found.chain_id) if found.chain_id else [
                store.snapshots.empty]
            (base / "work").mkdir()
            (base / "merged").mkdir()
            mounts.mount_overlay(lowers, upper, base / "work", base / "merged")
            try:
                yield base / "merged", upper
            finally:
                mounts.unmount(base / "merged")


def make_workdir(root: Path, workdir: str) -> None:
    """WORKDIR's directory inside ``root`` (symlinks resolved within it), each missing part
    root-owned 0755; Docker's error when something else is in the way."""
    target = scoped_path(root, workdir)
    if target.exists() and not target.is_dir():
        raise InvalidArgument(f"Cannot mkdir: {workdir} is not a directory")
    missing = []
    probe = target
    while not probe.exists() and probe != root:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise InvalidArgument(f"Cannot mkdir: {workdir} is not a directory")
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        path.chmod(0o755)
        os.chown(path, 0, 0)


def _changed(upper: Path) -> Path | None:
    """``upper`` if the step changed anything, else None: Docker marks a step whose diff is
    empty ``empty_layer`` and adds no layer (a RUN that wrote nothing, an existing WORKDIR)."""
    with os.scandir(upper) as entries:
        return upper if next(entries, None) is not None else None


def _history(created_by: str, author: str) -> dict[str, Any]:
    """A step's history entry; a stage's MAINTAINER is its images' author, as in Docker."""
    return {"created": now_rfc3339(), "created_by": created_by,
            **({"author": author} if author else {})}


def _ref(image: Image) -> ImageRef:
    config = image.run_config
    return ImageRef(image.id, config, tuple(config.get("OnBuild") or ()))


def _pump_when_connected(session: Session) -> None:
    session.connected.wait()
    if session.cancelled or session.conn is None:
        if session.sock is not None:
            session.sock.close()
        return
    session.pump()


def _forward(sock: socket.socket, output: Output) -> None:
    """Read Docker-framed output from the session and hand the payloads on."""
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
        while len(buffer) >= 8:
            _, size = struct.unpack(">BxxxL", buffer[:8])
            if len(buffer) < 8 + size:
                break
            output(buffer[8:8 + size])
            buffer = buffer[8 + size:]


