"""``cp``: copy files between a container and the local filesystem (docker's archive rules)."""
from __future__ import annotations

import argparse
import base64
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.transfer import read_chunks
from dockyard.cli.units import human_size
from dockyard.client.errors import APIError
from dockyard.client.http import Response

MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
STAT_HEADER = "x-docker-container-path-stat"


@dataclass(frozen=True)
class CopyInfo:
    path: str
    exists: bool
    is_dir: bool
    rebase_name: str = ""


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``ctr:path`` → (ctr, path); local paths (absolute, ``./x:y``) → ("", arg)."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def split_dir_entry(path: str) -> tuple[str, str]:
    """archive.SplitPathDirEntry: ``/a/b/`` → (``/a``, ``b``); ``/a/b/.`` → (``/a/b``, ``.``)."""
    cleaned = os.path.normpath(path) if path not in ("", ".") else "."
    if path.endswith("/.") or path == ".":
        return cleaned, "."
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned)


def asserts_directory(path: str) -> bool:
    return path.endswith(("/", "/.")) or path == "."


def preserve_trailing(abs_path: str, original: str) -> str:
    if original.endswith("/.") and not abs_path.endswith("/."):
        return abs_path + "/."
    if original.endswith("/") and not abs_path.endswith("/"):
        return abs_path + "/"
    return abs_path


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """archive.PrepareArchiveCopy: the directory to extract into and an entry rename."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    _, src_base = split_dir_entry(src.path)
    if src.rebase_name:
        src_base = src.rebase_name
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise StatusError("cannot copy a directory to a file")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise StatusError("no such directory")
    return dst_dir, (src_base, dst_base)


def rebase(name: str, change: tuple[str, str] | None) -> str:
    if change is None:
        return name
    old, new = change
    stripped = name[2:] if name.startswith("./") and old != "." else name
    if stripped == old or stripped == old + "/":
        return new
    if old == ".":
        if name in (".", "./"):
            return new
        return new + "/" + (name.removeprefix("./"))
    if stripped.startswith(old + "/"):
        return new + stripped[len(old):]
    return name


def decode_stat(value: str) -> dict[str, Any]:
    try:
        return json.loads(base64.b64decode(value)) if value else {}
    except ValueError:
        return {}


class _Tar(tarfile.TarFile):
    def chown(self, tarinfo: tarfile.TarInfo, targetpath: Any, numeric_owner: bool) -> None:
        return None  # NoLchown, like docker's CopyTo


def _safe_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    target = os.path.realpath(os.path.join(dest, member.name))
    root = os.path.realpath(dest)
    if member.name.startswith("/") or not (target == root or target.startswith(root + os.sep)):
        raise tarfile.OutsideDestinationError(member, target)
    return member


def extract(stream: BinaryIO, dest: str, change: tuple[str, str] | None) -> None:
    with _Tar.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            member.name = rebase(member.name, change)
            if member.islnk():
                member.linkname = rebase(member.linkname, change)
            tar.extract(member, dest, filter=_safe_filter)


def _stat_container(ctx: Context, ctr: str, path: str) -> dict[str, Any] | None:
    try:
        with ctx.client.request("HEAD", f"/containers/{quote(ctr)}/archive",
                                {"path": path}) as resp:
            return decode_stat(resp.header(STAT_HEADER))
    except APIError:
        return None


class _Reader:
    def __init__(self, resp: Response) -> None:
        self.resp = resp
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self.resp.read_exact(size) if size >= 0 else self.resp.read()
        self.total += len(data)
        return data


def _local_destination(dst: str) -> CopyInfo:
    """archive.CopyInfoDestinationPath: a missing destination needs an existing parent."""
    if os.path.exists(dst):
        return CopyInfo(dst, True, os.path.isdir(dst))
    parent = split_dir_entry(dst)[0]
    if not os.path.exists(parent):
        raise StatusError(f"stat {parent}: no such file or directory")
    if not os.path.isdir(parent):
        raise StatusError(f"stat {parent}: not a directory")
    return CopyInfo(dst, False, False)


def _from_container(ctx: Context, ns: argparse.Namespace, ctr: str, src: str, dst: str) -> int:
    rebase_name = ""
    if ns.follow_link:
        stat = _stat_container(ctx, ctr, src)
        if stat and int(stat.get("mode", 0)) & MODE_SYMLINK:
            target = stat.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_dir_entry(src)[0], target)
            rebase_name = split_dir_entry(src)[1]
            src = target
    if dst != "-":
        dst = preserve_trailing(os.path.abspath(dst), dst)
    with ctx.client.request("GET", f"/containers/{quote(ctr)}/archive", {"path": src}) as resp:
        stat = decode_stat(resp.header(STAT_HEADER))
        if dst == "-":
            out = ctx.bin_stdout
            for chunk in resp.iter_content():
                out.write(chunk)
            out.flush()
            return 0
        src_info = CopyInfo(src, True, bool(int(stat.get("mode", 0)) & MODE_DIR), rebase_name)
        dst_info = _local_destination(dst)
        directory, change = prepare_copy(src_info, dst_info)
        if rebase_name:
            change = (split_dir_entry(src)[1], rebase_name) if change is None else \
                (split_dir_entry(src)[1], change[1])
        reader = _Reader(resp)
        extract(reader, directory, change)  # type: ignore[arg-type]
    if not ns.quiet and ctx.stdout_is_tty():
        size = int(stat.get("size", 0)) if not src_info.is_dir else reader.total
        ctx.err(f"Successfully copied {human_size(size, 3)} to {dst}")
    return 0


def _local_info(path: str, follow: bool) -> CopyInfo:
    check = os.stat if follow else os.lstat
    try:
        st = check(path.rstrip("/") if path != "/" else path)
    except OSError as exc:
        raise StatusError(f"lstat {path}: {(exc.strerror or str(exc)).lower()}") from None
    is_dir = os.path.isdir(path) if follow else (st.st_mode & 0o170000) == 0o040000
    if path.endswith("/") and not is_dir:
        raise StatusError(f"lstat {path}: not a directory")
    return CopyInfo(path, True, is_dir)


def build_tar(src: CopyInfo, change: tuple[str, str] | None, follow: bool) -> BinaryIO:
    """TarResource of the local source (entries rebased), spooled to a temp file."""
    source_dir, base = split_dir_entry(src.path)
    path = os.path.join(source_dir, base) if base != "." else source_dir
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT,
                      dereference=False) as tar:
        real = os.path.realpath(path) if follow else path
        tar.add(real, arcname=rebase(base, change))
    spool.seek(0)
    return spool


def _to_container(ctx: Context, ns: argparse.Namespace, src: str, ctr: str, dst: str) -> int:
    dst_info = CopyInfo(dst, False, False)
    stat = _stat_container(ctx, ctr, dst)
    if stat is not None:
        if int(stat.get("mode", 0)) & MODE_SYMLINK:
            target = stat.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_dir_entry(dst)[0], target)
            dst_info = CopyInfo(target, False, False)
            stat = _stat_container(ctx, ctr, target)
        if stat is not None:
            dst_info = CopyInfo(dst_info.path, True, bool(int(stat.get("mode", 0)) & MODE_DIR))
    query = {"path": dst_info.path, "noOverwriteDirNonDir": True,
             "copyUIDGID": True if ns.archive else None}
    if src == "-":
        if not dst_info.is_dir:
            raise StatusError(f'destination "{ctr}:{dst}" must be a directory')
        body: Iterator[bytes] = read_chunks(ctx.bin_stdin)
        with ctx.client.request("PUT", f"/containers/{quote(ctr)}/archive", query, body=body):
            return 0
    src = preserve_trailing(os.path.abspath(src), src)
    src_info = _local_info(src, ns.follow_link)
    directory, change = prepare_copy(src_info, dst_info)
    query["path"] = directory
    with build_tar(src_info, change, ns.follow_link) as archive:
        size = os.fstat(archive.fileno()).st_size
        with ctx.client.request("PUT", f"/containers/{quote(ctr)}/archive", query,
                                body=read_chunks(archive)):
            pass
    if not ns.quiet and ctx.stdout_is_tty():
        ctx.err(f"Successfully copied {human_size(size, 3)} to {ctr}:{dst_info.path}")
    return 0


def _build(p: FlagParser) -> None:
    p.add_argument("-a", "--archive", action="store_true",
                   help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress progress output during copy. Progress output is "
                        "automatically suppressed if no terminal is attached")


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    source, dest = ns.args
    if not source:
        raise StatusError("source can not be empty")
    if not dest:
        raise StatusError("destination can not be empty")
    src_ctr, src_path = split_cp_arg(source)
    dst_ctr, dst_path = split_cp_arg(dest)
    if src_ctr and dst_ctr:
        raise StatusError("copying between containers is not supported")
    if src_ctr:
        return _from_container(ctx, ns, src_ctr, src_path, dst_path)
    if dst_ctr:
        return _to_container(ctx, ns, src_path, dst_ctr, dst_path)
    raise StatusError("must specify at least one container source")


CP = Command("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] "
             "SRC_PATH|- CONTAINER:DEST_PATH",
             "Copy files/folders between a container and the local filesystem", _build, _run,
             (2, 2))
COMMANDS = [CP]
