"""A busybox root filesystem as a tar stream, made from the host's static busybox.

Used by the tests, the demo and the benchmarks to get a base image without any network.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DIRS = ("bin", "dev", "etc", "home", "mnt", "proc", "root", "sys", "tmp", "usr/bin", "usr/sbin",
        "sbin", "var", "var/www")


def busybox_path() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    found = shutil.which("busybox")
    if not found:
        raise FileNotFoundError("busybox-static is not installed")
    return Path(found)


def applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.type = kind
    info.mode = mode
    info.linkname = link
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def busybox_rootfs_tar() -> bytes:
    """An uncompressed tar of a minimal busybox system (every applet linked in /bin)."""
    busybox = busybox_path()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in DIRS:
            _add(tar, directory, kind=tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        _add(tar, "bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in applets(busybox):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
             b"nobody:x:65534:65534:nobody:/home:/bin/false\n"
             b"www-data:x:33:33:www-data:/var/www:/bin/false\n")
        _add(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\nwww-data:x:33:\n")
    return buffer.getvalue()
