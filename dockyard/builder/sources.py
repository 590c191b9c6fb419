"""COPY/ADD sources: resolving them and checksumming them for the cache.

Resolution (Docker's classic builder, ``copier.calcCopyInfo``): a leading ``/`` and ``./``
are trimmed; a path climbing out of the root is refused; a path with a wildcard (``*``, ``?``,
``[``) is matched with Go's ``filepath.Match`` against every path of the tree walked in
lexical order (``*`` stays within one segment, ``**`` is just two ``*``); a source symlink is
followed, chrooted at the root (a symlink *inside* a copied directory is copied as one).

Checksums (the cache key's "sources"): a sha256 over, for each source in order, every entry
it copies — relative path, kind, permission bits, uid/gid, and the content's sha256 for a
file, the target for a symlink, the device numbers for a device. Modification times are left
out on purpose, as Docker's tarsum v1 leaves them out: touching a file without changing it
keeps the cache. The metadata of a source *directory itself* is left out too, as it is not
copied. The per-entry digests let a miss name what changed (:func:`explain_change`).

Placing the sources in a rootfs is :mod:`dockyard.builder.placement`. ADD from a URL is
refused (no network).
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.builder.ignore import go_match
from dockyard.diff.safepath import clean_relative, resolve_in_root
from dockyard.diff.tarstream import CHUNK
from dockyard.errors import InvalidArgument, NotFound

__all__ = ["ContentMemo", "Source", "SourceDigest", "digest_sources", "explain_change",
           "resolve_sources", "source_checksum"]

READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
ContentMemo = dict[tuple[int, int, int, int, int], str]


@dataclass(frozen=True)
class Source:
    """One resolved source: ``path`` names it (relative, cleaned; ``""`` is the root)."""

    path: str
    host_path: Path  # symlinks followed, inside the source root
    is_dir: bool


# -- resolution -------------------------------------------------------------------------------
def _has_wildcards(path: str) -> bool:
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 1
        elif path[i] in "*?[":
            return True
        i += 1
    return False


def _forbidden(cmd: str, path: str) -> InvalidArgument:
    return InvalidArgument(f"{cmd} failed: forbidden path outside the build context: {path} ()")


def _stat_source(root: Path, path: str, cmd: str, from_context: bool) -> Source:
    rel = clean_relative(path)
    if rel is None:
        raise _forbidden(cmd, path)
    host = resolve_in_root(root, rel)
    try:
        info = os.stat(host)
    except (FileNotFoundError, NotADirectoryError):
        where = "file not found in build context or excluded by .dockerignore: "
        raise NotFound(f"{cmd} failed: {where if from_context else ''}"
                       f"stat {path}: file does not exist") from None
    return Source(rel, host, stat.S_ISDIR(info.st_mode))


def _glob(root: Path, pattern: str, cmd: str, from_context: bool) -> list[Source]:
    if clean_relative(pattern) is None:
        raise _forbidden(cmd, pattern)
    go_match(pattern, "")  # a syntax error is reported, not taken for "no match"
    depth = None if "[" in pattern else pattern.count("/")  # deeper paths cannot match
    return [_stat_source(root, rel, cmd, from_context)
            for rel, _, _ in _walk(root, lambda rel: depth is None or rel.count("/") < depth)
            if go_match(pattern, rel)]


def resolve_sources(root: Path, requested: Sequence[str], *, is_add: bool = False,
                    from_context: bool = True) -> list[Source]:
    """The sources of one COPY/ADD in ``root`` (the context, or a stage's/image's rootfs).

    Raises InvalidArgument for a URL, a path outside the root, a bad pattern or nothing
    matched, NotFound for a missing path (worded as Docker for the context or an image).
    """
    cmd = "ADD" if is_add else "COPY"
    found: list[Source] = []
    for original in requested:
        if original.startswith(("http://", "https://")):
            if is_add:
                raise InvalidArgument("ADD from a URL is not supported: no network access")
            raise InvalidArgument("COPY failed: source can't be a URL for COPY")
        path = original.removeprefix("/").removeprefix("./")
        if _has_wildcards(path):
            found += _glob(root, path, cmd, from_context)
        else:
            found.append(_stat_source(root, path, cmd, from_context))
    if not found:
        raise InvalidArgument(f"{cmd} failed: no source files were specified")
    return found


# -- checksums --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceDigest:
    digest: str  # ``sha256:…`` over every source, in order
    files: Mapping[str, str] = field(default_factory=dict)  # entry path → its digest


def _content_sha(path: Path, info: os.stat_result, memo: ContentMemo | None) -> str:
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if memo is not None and key in memo:
        return memo[key]
    digest = hashlib.sha256()
    fd = os.open(path, READ_FLAGS)
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    if memo is not None:
        memo[key] = digest.hexdigest()
    return digest.hexdigest()


def _entry_digest(path: Path, info: os.stat_result, memo: ContentMemo | None) -> str:
    mode = info.st_mode
    head = f"{stat.S_IFMT(mode):o} {stat.S_IMODE(mode):o} {info.st_uid} {info.st_gid} "
    if stat.S_ISREG(mode):
        tail = _content_sha(path, info, memo)
    elif stat.S_ISLNK(mode):
        tail = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        tail = f"{os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
    else:
        tail = ""
    blob = (head + tail).encode("utf-8", "surrogateescape")
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _walk(top: Path, descend: Callable[[str], bool] | None = None
          ) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every entry under directory ``top`` (not ``top``) as Go's ``WalkDir``: depth first,
    each directory right before its content, names sorted; symlinks are not followed."""
    stack = [(top, "", iter(sorted(os.listdir(top))))]
    while stack:
        host_dir, prefix, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        host, rel = host_dir / name, prefix + name
        info = os.lstat(host)
        yield rel, host, info
        if stat.S_ISDIR(info.st_mode) and (descend is None or descend(rel)):
            stack.append((host, rel + "/", iter(sorted(os.listdir(host)))))


def digest_sources(sources: Sequence[Source], memo: ContentMemo | None = None) -> SourceDigest:
    """Checksum of what ``sources`` would copy, with one digest per entry.

    ``memo`` (kept by the caller for one build) caches content hashes by inode, size and
    times, so a context is read once however many steps copy from it.
    """
    total = hashlib.sha256()
    files: dict[str, str] = {}
    for source in sources:
        name = source.path or "."
        if source.is_dir:
            entries = [(name, "dir")]
            for rel, host, info in _walk(source.host_path):
                if stat.S_ISSOCK(info.st_mode):
                    continue  # not copied
                key = rel if name == "." else f"{name}/{rel}"
                entries.append((key, _entry_digest(host, info, memo)))
        else:
            entries = [(name, _entry_digest(source.host_path, os.stat(source.host_path), memo))]
        for key, digest in entries:
            files[key] = digest
            total.update(f"{key}\0{digest}\n".encode("utf-8", "surrogateescape"))
    return SourceDigest("sha256:" + total.hexdigest(), files)


def source_checksum(sources: Sequence[Source], memo: ContentMemo | None = None) -> str:
    """The ``sha256:…`` checksum of :func:`digest_sources` (mtimes ignored, see module doc)."""
    return digest_sources(sources, memo).digest


def explain_change(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Why two digests differ: ``changed: x``, ``added: x``, ``removed: x``, sorted by path."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"added: {key}")
        elif key not in new:
            lines.append(f"removed: {key}")
        elif old[key] != new[key]:
            lines.append(f"changed: {key}")
    return lines
