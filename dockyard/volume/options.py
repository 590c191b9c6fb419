"""The ``local`` driver's mount options: ``type``/``device``/``o`` (and ``size``) of
``docker volume create --opt``, validated with Docker's texts and turned into mount(2)
arguments. dockyard mounts tmpfs (``type=tmpfs,device=tmpfs,o=size=100m``) and binds
(``type=none,o=bind,device=/path``); other types are refused at create.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Internal, InvalidArgument
from dockyard.host import mounts

MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT, MS_DIRSYNC = 0x8, 0x10, 0x20, 0x80
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 0x400, 0x800, 0x200000, 0x1000000
_FLAGS: dict[str, tuple[int, bool]] = {
    "ro": (mounts.MS_RDONLY, True), "rw": (mounts.MS_RDONLY, False),
    "nosuid": (mounts.MS_NOSUID, True), "suid": (mounts.MS_NOSUID, False),
    "nodev": (mounts.MS_NODEV, True), "dev": (mounts.MS_NODEV, False),
    "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
    "sync": (MS_SYNCHRONOUS, True), "async": (MS_SYNCHRONOUS, False),
    "dirsync": (MS_DIRSYNC, True), "noatime": (MS_NOATIME, True), "atime": (MS_NOATIME, False),
    "nodiratime": (MS_NODIRATIME, True), "diratime": (MS_NODIRATIME, False),
    "relatime": (MS_RELATIME, True), "norelatime": (MS_RELATIME, False),
    "strictatime": (MS_STRICTATIME, True), "nostrictatime": (MS_STRICTATIME, False),
    "bind": (mounts.MS_BIND, True), "rbind": (mounts.MS_BIND | mounts.MS_REC, True),
    "defaults": (0, True),
}
_VALID_OPTS = ("type", "o", "device", "size")
_REQUIRED = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


@dataclass(frozen=True)
class MountOptions:
    """``type``/``device``/``o`` of a local volume, as mount(2) arguments."""

    fstype: str
    device: str
    flags: int
    data: str

    @property
    def bind(self) -> bool:
        return bool(self.flags & mounts.MS_BIND)

    @property
    def remount_flags(self) -> int:
        """A bind ignores other flags: ``ro``, ``nosuid``… need a second, remount call."""
        rest = self.flags & ~(mounts.MS_BIND | mounts.MS_REC)
        return MS_REMOUNT | mounts.MS_BIND | rest if rest else 0


def parse_options(name: str, opts: Mapping[str, str]) -> MountOptions | None:
    """Validate ``--opt`` like the local driver (Docker's texts); None: nothing to mount.
    dockyard mounts tmpfs (``type=tmpfs,device=tmpfs,o=size=100m``) and binds
    (``type=none,o=bind,device=/path``); other types are refused at create."""
    for key in opts:
        if key not in _VALID_OPTS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if "size" in opts and _ram_in_bytes(name, opts["size"]) > 0:
        raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for key, required in _REQUIRED:
        for need in required if key in opts else ():
            if need not in opts:
                raise InvalidArgument(f'create {name}: missing required option: "{need}"')
    fstype, device = opts.get("type", ""), opts.get("device", "")
    if not fstype and not device:
        return None
    flags, data = 0, []
    for word in (w for w in opts.get("o", "").split(",") if w):
        if word in _FLAGS:
            flag, on = _FLAGS[word]
            flags = flags | flag if on else flags & ~flag
        else:
            data.append(word)
    if fstype in ("none", "bind") and flags & mounts.MS_BIND:
        if not device.startswith("/"):
            raise InvalidArgument(f"create {name}: bind device must be an absolute path: "
                                  f"{device}")
    elif fstype != "tmpfs":
        raise InvalidArgument(
            f'create {name}: unsupported local volume type "{fstype}" (o="{opts.get("o", "")}"):'
            " dockyard mounts type=tmpfs, or binds with type=none,o=bind,device=/path")
    return MountOptions(fstype, device, flags, ",".join(data))


def _ram_in_bytes(name: str, text: str) -> int:
    """go-units RAMInBytes (binary multiples)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidArgument(f"create {name}: invalid size: '{text}'")
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(float(match.group(1)) * 1024 ** power)


def mount_volume(opts: MountOptions, data: Path) -> None:
    """Mount a volume with options on its ``_data`` (a bind remounted for its flags)."""
    if opts.bind and not os.path.exists(opts.device):
        raise Internal(f"failed to mount local volume: mount {opts.device}:{data}, flags: "
                       f"{opts.flags:#x}: no such file or directory")
    mounts.mount(opts.device, data, None if opts.bind else opts.fstype, opts.flags, opts.data)
    if opts.bind and opts.remount_flags:
        try:
            mounts.mount("", data, None, opts.remount_flags)
        except Internal:
            mounts.unmount(data)
            raise
