"""The build context as the docker CLI sends it: a tar of the directory without what
``.dockerignore`` excludes (used by ``dockyard build`` and ``dockyard compose build``)."""
from __future__ import annotations

import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from dockyard.builder.ignore import IgnoreMatcher


def context_tar(root: Path, dockerfile: Path | None) -> bytes:
    """The context as a tar, without what .dockerignore excludes (the Dockerfile and the
    .dockerignore itself are always sent, as the docker CLI does)."""
    ignore_file = root / ".dockerignore"
    matcher = IgnoreMatcher.from_text(ignore_file.read_text()) if ignore_file.exists() \
        else IgnoreMatcher()
    keep = {".dockerignore"}
    if dockerfile is not None and dockerfile.parent.resolve() == root.resolve():
        keep.add(dockerfile.name)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in _walk(root, matcher, keep):
            tar.add(root / rel, arcname=rel, recursive=False)
        if dockerfile is not None and dockerfile.parent.resolve() != root.resolve():
            data = dockerfile.read_bytes()
            info = tarfile.TarInfo(f".dockerfile.{uuid.uuid4().hex[:20]}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _walk(root: Path, matcher: IgnoreMatcher, keep: set[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in sorted(dirnames):
            rel = os.path.join(rel_dir, name)
            if matcher.excluded(rel, True) and not matcher.may_contain_exceptions(rel):
                dirnames.remove(name)
                continue
            if not matcher.excluded(rel, True):
                yield rel
        for name in sorted(filenames):
            rel = os.path.join(rel_dir, name)
            if rel in keep or not matcher.excluded(rel, False):
                yield rel
