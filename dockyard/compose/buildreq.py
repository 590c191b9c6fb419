"""The ``POST /build`` request of a compose service's ``build:`` section (query and context
tar, the docker CLI's rules), and how an image reference splits for ``POST /images/create``."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from dockyard.compose.model import BuildConfig


def build_request(ref: str, b: BuildConfig) -> tuple[dict[str, Any], bytes]:
    """The query and the context tar that build ``b`` and tag it ``ref``."""
    from dockyard.client.buildcontext import context_tar  # the docker CLI's rules
    root = Path(b.context)
    query: dict[str, Any] = {"t": ref, "buildargs": json.dumps(
        {k: v for k, v in b.args.items() if v is not None}),
        "labels": json.dumps(b.labels), "target": b.target or None,
        "networkmode": b.network or None, "rm": True, "version": "1",
        "shmsize": b.shm_size or None,
        "extrahosts": ",".join(f"{h}:{ip}" for h, ip in b.extra_hosts.items()) or None,
        "cachefrom": json.dumps(list(b.cache_from)) if b.cache_from else None}
    if b.dockerfile_inline is not None:
        data = _with_file(context_tar(root, None), "Dockerfile.inline",
                          b.dockerfile_inline.encode())
        query["dockerfile"] = "Dockerfile.inline"
    else:
        dockerfile = Path(b.dockerfile or "Dockerfile")
        if not dockerfile.is_absolute():
            dockerfile = root / dockerfile
        data = context_tar(root, dockerfile)
        rel = dockerfile.resolve().relative_to(root.resolve()).as_posix() \
            if dockerfile.resolve().is_relative_to(root.resolve()) else None
        if rel is None:
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                rel = next(m for m in tf.getnames() if m.startswith(".dockerfile."))
        query["dockerfile"] = rel
    return query, data


def split_ref(ref: str) -> tuple[str, str]:
    if "@" in ref:
        return ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


def _with_file(tar_bytes: bytes, name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as src, \
            tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    return buf.getvalue()
