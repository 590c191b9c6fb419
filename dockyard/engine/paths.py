"""Where each object lives on disk: data-root (persistent) and exec-root (runtime state)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path

    @property
    def db(self) -> Path:
        return self.data_root / "dockyard.db"

    @property
    def content(self) -> Path:
        return self.data_root / "content"

    @property
    def snapshots(self) -> Path:
        return self.data_root / "snapshots"

    @property
    def containers(self) -> Path:
        return self.data_root / "containers"

    @property
    def bin(self) -> Path:
        return self.data_root / "bin"

    @property
    def tmp(self) -> Path:
        return self.data_root / "tmp"

    @property
    def trash(self) -> Path:
        """Directories renamed here are being deleted (in the background; swept at boot)."""
        return self.data_root / "trash"

    @property
    def runtime_root(self) -> Path:
        return self.exec_root / "runtime"

    def container(self, cid: str) -> Path:
        return self.containers / cid

    def rootfs(self, cid: str) -> Path:
        return self.container(cid) / "rootfs"

    def log(self, cid: str) -> Path:
        return self.container(cid) / f"{cid}-json.log"

    def task_state(self, cid: str) -> Path:
        """Short on purpose: unix socket paths inside it must stay under 108 bytes."""
        return self.exec_root / "t" / cid[:16]

    def exec_state(self, exec_id: str) -> Path:
        return self.exec_root / "x" / exec_id[:16]

    def make(self) -> None:
        for path in (self.data_root, self.exec_root, self.content, self.snapshots,
                     self.containers, self.bin, self.tmp, self.trash, self.runtime_root,
                     self.exec_root / "t", self.exec_root / "x"):
            path.mkdir(parents=True, exist_ok=True)
