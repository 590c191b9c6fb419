"""Compiles the C shim (``shim.c`` next to this file) once per source version.

``shim_binary(cache_dir)`` returns ``cache_dir/dockyard-shim-<sha256(source)[:12]>``,
compiling it with ``cc -O2 -Wall`` first if it is not there yet. The compiler writes to a
temporary name in the same directory that is then renamed into place, so concurrent
builders and readers never see a half-written binary.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dockyard import errors

SOURCE_NAME = "shim.c"
COMPILERS = ("cc", "gcc", "clang")
CFLAGS = ("-O2", "-Wall")


def source_path() -> Path:
    return Path(__file__).with_name(SOURCE_NAME)


def binary_name(source: bytes) -> str:
    return "dockyard-shim-" + hashlib.sha256(source).hexdigest()[:12]


def find_compiler() -> str:
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    raise errors.Unavailable(
        "cannot build the container monitor (dockyard-shim): no C compiler found "
        f"(tried {', '.join(COMPILERS)}); install gcc or clang"
    )


def shim_binary(cache_dir: Path) -> Path:
    """The path of the compiled shim for the current source, building it if needed."""
    try:
        source = source_path().read_bytes()
    except OSError as exc:
        raise errors.Internal(f"shim source missing: {exc}") from exc
    target = cache_dir / binary_name(source)
    if os.access(target, os.X_OK):
        return target
    compiler = find_compiler()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".dockyard-shim-", dir=cache_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run(
            [compiler, *CFLAGS, "-x", "c", "-o", str(tmp), "-"],
            input=source,  # exactly the bytes that were hashed
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            detail = proc.stderr.decode(errors="replace").strip()
            raise errors.Internal(f"compiling dockyard-shim failed: {detail}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
