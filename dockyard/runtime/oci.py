"""The OCI runtime command line (crun, runc): the only argv dockyard builds for another program.

Each daemon passes its own ``--root`` so several daemons can run side by side.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Conflict, Internal, InvalidArgument, NotFound

KNOWN = {"crun": ("crun",), "runc": ("runc",)}


@dataclass(frozen=True)
class Runtime:
    name: str
    binary: Path
    root: Path

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([str(self.binary), "--root", str(self.root), *args],
                              stdin=subprocess.DEVNULL, capture_output=True)
        if check and proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
            if "does not exist" in message or "not found" in message.lower():
                raise NotFound(message)
            if "not running" in message or "not paused" in message:
                raise Conflict(message)
            raise Internal(f"{self.name} {args[0]}: {message}")
        return proc

    def kill(self, cid: str, signal: int) -> None:
        self._run("kill", cid, str(signal))

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def knows(self, cid: str) -> bool:
        """Whether the runtime holds state for ``cid`` (crun and runc keep ``<root>/<id>``)."""
        return (self.root / cid).exists()

    def delete(self, cid: str, *, force: bool = True) -> None:
        """Forget the container; missing is fine (it may never have been created)."""
        if not self.knows(cid):
            return
        args = ["delete", "--force", cid] if force else ["delete", cid]
        self._run(*args, check=False)

    def state(self, cid: str) -> dict[str, object] | None:
        proc = self._run("state", cid, check=False)
        if proc.returncode != 0:
            return None
        try:
            return dict(json.loads(proc.stdout))
        except ValueError:
            return None


def resolve(name: str, root_base: Path, configured: dict[str, str] | None = None) -> Runtime:
    """Find the runtime called ``name`` (``crun``/``runc`` or one from the daemon config)."""
    configured = configured or {}
    path = configured.get(name)
    if path is None:
        if name not in KNOWN:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        raise InvalidArgument(f"unknown or invalid runtime name: {name}")
    root = root_base / name
    root.mkdir(parents=True, exist_ok=True)
    return Runtime(name, Path(path), root)
