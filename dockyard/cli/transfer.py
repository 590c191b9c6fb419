"""Moving filesystems and images in and out: save, load, import, export, commit."""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.refs import normalize_name, split_reference
from dockyard.cli.registry import api_failure, progress
from dockyard.client.errors import APIError
from dockyard.client.http import Response

CHUNK = 256 * 1024
COWARD = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def read_chunks(fh: BinaryIO) -> Iterator[bytes]:
    while True:
        data = fh.read(CHUNK)
        if not data:
            return
        yield data


def write_body(ctx: Context, resp: Response, output: str) -> None:
    """Copy a response body to ``output`` (a file, written atomically) or stdout."""
    if not output:
        out = ctx.bin_stdout
        for chunk in resp.iter_content(CHUNK):
            out.write(chunk)
        out.flush()
        return
    tmp = f"{output}.dockyard-tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            for chunk in resp.iter_content(CHUNK):
                fh.write(chunk)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _output_flag(p: FlagParser, what: str) -> None:
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")


def _save_build(p: FlagParser) -> None:
    _output_flag(p, "images")
    p.add_argument("--platform", action="append", default=[],
                   help="Save only the given platform(s)")


def _save(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.output and ctx.stdout_is_tty():
        raise StatusError(COWARD)
    if ns.output:
        _check_writable(ns.output)
    query = {"names": ns.args, "platform": ns.platform or None}
    with ctx.client.stream("GET", "/images/get", query) as resp:
        write_body(ctx, resp, ns.output)
    return 0


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StatusError(f"failed to save image: invalid output path: directory "
                          f"\"{directory}\" does not exist")


def _load_build(p: FlagParser) -> None:
    p.add_argument("-i", "--input", default="", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.add_argument("--platform", action="append", default=[],
                   help="Load only the given platform(s)")


def _open_input(ctx: Context, path: str) -> BinaryIO:
    if path:
        try:
            return open(path, "rb")
        except OSError as exc:
            raise StatusError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}")
    if ctx.stdin_is_tty():
        raise StatusError("requested load from stdin, but stdin is empty")
    return ctx.bin_stdin


def _load(ctx: Context, ns: argparse.Namespace) -> int:
    source = _open_input(ctx, ns.input)
    quiet = ns.quiet or not ctx.stdout_is_tty()
    query = {"quiet": quiet, "platform": ns.platform or None}
    headers = {"Content-Type": "application/x-tar"}
    try:
        with ctx.client.stream("POST", "/images/load", query, body=read_chunks(source),
                               headers=headers) as resp:
            _show_stream(ctx, resp)
    finally:
        if ns.input:
            source.close()
    return 0


def _show_stream(ctx: Context, resp: Response) -> None:
    if "json" in resp.header("content-type", "application/json"):
        progress(ctx, resp.iter_json())
    else:
        write_body(ctx, resp, "")


def _import_build(p: FlagParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")


def _import(ctx: Context, ns: argparse.Namespace) -> int:
    source = ns.args[0]
    repo, tag = "", ""
    if len(ns.args) > 1:
        name, tag, digest = split_reference(ns.args[1])
        if digest:
            raise StatusError("refusing to create a tag with a digest reference")
        repo = name
    query = {"fromSrc": "-", "repo": repo or None, "tag": tag or None,
             "message": ns.message or None, "changes": ns.change or None,
             "platform": ns.platform.lower() or None}
    body: Iterator[bytes] | None = None
    handle: BinaryIO | None = None
    if source == "-":
        body = read_chunks(ctx.bin_stdin)
    elif "://" in source:
        query["fromSrc"] = source
    else:
        handle = _open_input(ctx, source)
        body = read_chunks(handle)
    headers = {"Content-Type": "application/x-tar"} if body is not None else {}
    try:
        with ctx.client.stream("POST", "/images/create", query, body=body,
                               headers=headers) as resp:
            _show_stream(ctx, resp)
    except APIError as exc:
        raise api_failure(exc, "importing images") from None
    finally:
        if handle is not None:
            handle.close()
    return 0


def _export(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.output and ctx.stdout_is_tty():
        raise StatusError(COWARD)
    if ns.output:
        _check_writable(ns.output)
    with ctx.client.stream("GET", f"/containers/{quote(ns.args[0])}/export") as resp:
        write_body(ctx, resp, ns.output)
    return 0


def _commit_build(p: FlagParser) -> None:
    p.add_argument("-a", "--author", default="",
                   help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="Pause container during commit (default true)")


def commit_query(ns: argparse.Namespace) -> dict[str, object]:
    repo, tag = "", ""
    if len(ns.args) > 1:
        name, tag, digest = split_reference(ns.args[1])
        if digest:
            raise StatusError("refusing to create a tag with a digest reference")
        repo, tag = normalize_name(name), tag or "latest"
    return {"container": ns.args[0], "repo": repo, "tag": tag, "comment": ns.message,
            "author": ns.author, "changes": ns.change or None,
            "pause": None if ns.pause else False}


def _commit(ctx: Context, ns: argparse.Namespace) -> int:
    result = ctx.client.post("/commit", commit_query(ns)) or {}
    ctx.out(str(result.get("Id", "")))
    return 0


SAVE = Command("save", "[OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)",
               _save_build, _save, (1, None))
LOAD = Command("load", "[OPTIONS]", "Load an image from a tar archive or STDIN", _load_build,
               _load)
IMPORT = Command("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image",
                 _import_build, _import, (1, 2))
EXPORT = Command("export", "[OPTIONS] CONTAINER",
                 "Export a container's filesystem as a tar archive",
                 lambda p: _output_flag(p, "container"), _export, (1, 1))
COMMIT = Command("commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                 "Create a new image from a container's changes", _commit_build, _commit, (1, 2))
COMMANDS = [SAVE, LOAD, IMPORT, EXPORT, COMMIT]
