"""``dockyard build``: send a context to ``POST /build`` and show the classic builder's output.

Beyond docker: ``--explain-cache`` prints each step's cache key (parent, instruction, source
checksum) so a miss can be understood.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.transfer import read_chunks
from dockyard.cli.units import ram_in_bytes
from dockyard.client.buildcontext import context_tar
from dockyard.client.errors import APIError


def _build_flags(p: FlagParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], help="Name and optionally a tag")
    p.add_argument("-f", "--file", default="", help="Name of the Dockerfile")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer image")
    p.add_argument("-q", "--quiet", action="store_true", help="Print the image ID on success")
    p.add_argument("--rm", default="true", help="Remove intermediate containers")
    p.add_argument("--force-rm", action="store_true", help="Always remove containers")
    p.add_argument("--target", default="", help="Set the target build stage")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("--network", default="", help="Networking mode for RUN instructions")
    p.add_argument("-m", "--memory", default="", help="Memory limit")
    p.add_argument("--memory-swap", default="", help="Swap limit")
    p.add_argument("--cpu-shares", type=int, default=0, help="CPU shares")
    p.add_argument("--add-host", action="append", default=[], help="Add a custom host-to-IP")
    p.add_argument("--platform", default="", help="Set platform (accepted, linux/amd64 only)")
    p.add_argument("--explain-cache", action="store_true",
                   help="Print the cache key of every step (dockyard)")


def _pairs(items: list[str], what: str, env_fallback: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            if env_fallback:
                if key in os.environ:
                    out[key] = os.environ[key]
                continue
            value = ""
        out[key] = value
    return out


def _size(text: str) -> int:
    return ram_in_bytes(text) if text else 0


def _body(ctx: Context, ns: argparse.Namespace) -> tuple[bytes | Iterator[bytes], str]:
    source = ns.args[0]
    if source == "-":
        return read_chunks(ctx.bin_stdin), ns.file or "Dockerfile"
    root = Path(source)
    if not root.is_dir():
        raise StatusError(f"unable to prepare context: path \"{source}\" not found")
    dockerfile = Path(ns.file) if ns.file else root / "Dockerfile"
    if ns.file and not dockerfile.is_absolute() and not dockerfile.exists():
        dockerfile = root / ns.file
    if not dockerfile.exists():
        raise StatusError(f"unable to prepare context: unable to evaluate symlinks in "
                          f"Dockerfile path: lstat {dockerfile}: no such file or directory")
    data = context_tar(root, dockerfile)
    name = os.path.relpath(dockerfile.resolve(), root.resolve())
    if name.startswith(".."):
        name = next(m for m in tarfile.open(fileobj=io.BytesIO(data)).getnames()
                     if m.startswith(".dockerfile."))
    if not ns.quiet:
        ctx.err(f"Sending build context to Docker daemon  {len(data) / 1000:.3f}kB")
    return data, name


def _build(ctx: Context, ns: argparse.Namespace) -> int:
    body, dockerfile = _body(ctx, ns)
    query: dict[str, Any] = {
        "t": ns.tag or None, "dockerfile": dockerfile,
        "buildargs": json.dumps(_pairs(ns.build_arg, "build-arg", env_fallback=True)),
        "labels": json.dumps(_pairs(ns.label, "label")), "nocache": ns.no_cache or None,
        "pull": ns.pull or None, "q": ns.quiet or None,
        "rm": ns.rm.lower() not in ("false", "0"), "forcerm": ns.force_rm or None,
        "target": ns.target or None, "networkmode": ns.network or None,
        "memory": _size(ns.memory) or None, "memswap": _size(ns.memory_swap) or None,
        "cpushares": ns.cpu_shares or None, "extrahosts": ",".join(ns.add_host) or None,
        "explaincache": ns.explain_cache or None, "version": "1"}
    image_id = ""
    try:
        with ctx.client.stream("POST", "/build", query, body=body,
                               headers={"Content-Type": "application/x-tar"}) as resp:
            for message in resp.iter_json():
                if "errorDetail" in message or "error" in message:
                    detail = message.get("errorDetail") or {}
                    raise StatusError(detail.get("message") or message.get("error") or "",
                                      int(detail.get("code") or 1))
                if "aux" in message:
                    image_id = message["aux"].get("ID", image_id)
                elif "stream" in message and not ns.quiet:
                    ctx.out(message["stream"], end="")
                elif message.get("status") and not ns.quiet:  # pulling a FROM image
                    ident = message.get("id")
                    ctx.out(f"{ident}: {message['status']}" if ident else message["status"])
    except APIError as exc:
        raise StatusError(f"Error response from daemon: {exc.message}") from None
    if ns.quiet:
        ctx.out(image_id)
    return 0


BUILD = Command("build", "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile",
                _build_flags, _build, (1, 1))
COMMANDS = [BUILD]
