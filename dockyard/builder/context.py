"""The build context of ``POST /build``: received, unpacked safely, filtered, Dockerfile found.

The request body is a tar (plain, gzip, bzip2, xz or zstd — the readers of
:mod:`dockyard.diff`), or, as with ``docker build - < Dockerfile``, a bare Dockerfile: a body
that is neither compressed nor starts with a valid tar header is taken as the Dockerfile of
an otherwise empty context (it is also placed there as ``Dockerfile``, as the docker CLI does
when it wraps such input in a tar). An empty body is an empty context.

The tar is unpacked flat into a fresh private directory with
``apply_layer(..., overlay_whiteouts=False)``: names are cleaned, ``..`` climbing out is
refused, symlinks (absolute ones included) are stored as symlinks and never followed outside
the context, a member written through a symlink of the same archive is refused. One
deviation from Docker follows: a member named ``.wh.<name>`` is taken as a whiteout.

Then, as Docker's classic builder does: the Dockerfile (``dockerfile`` query parameter,
default ``Dockerfile``, falling back to ``dockerfile``; the docker CLI sends one from outside
the context as a ``.dockerfile.<random>`` member and names it) and ``.dockerignore`` are read
*before* filtering — they are always sent — and then every path ``.dockerignore`` excludes is
removed, the Dockerfile and ``.dockerignore`` included when they match, so COPY/ADD never see
an excluded file. An excluded directory kept only for re-included content gets mode 0755 and
owner 0:0, as the directory the daemon would create when unpacking the CLI's filtered tar.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from dockyard.builder.ignore import IgnoreMatcher
from dockyard.diff.apply import apply_layer
from dockyard.diff.safepath import resolve_in_root
from dockyard.diff.tarstream import BLOCK, CHUNK, HashingSource
from dockyard.errors import DockyardError, InvalidArgument

__all__ = ["DEFAULT_DOCKERFILE", "IGNORE_FILE", "BuildContext", "is_archive_file", "is_tar_header",
           "prune"]

DEFAULT_DOCKERFILE = "Dockerfile"
IGNORE_FILE = ".dockerignore"
MAX_TEXT = 32 << 20  # largest Dockerfile / .dockerignore / bare-Dockerfile body accepted
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a 512-byte tar header with a valid checksum (signed or not)."""
    if len(block) < BLOCK:
        return False
    raw = block[148:156].split(b"\0", 1)[0].strip(b" ")
    try:
        stored = int(raw, 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + sum(block[156:BLOCK]) + 8 * 0x20
    signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:BLOCK] if b > 127)
    return stored in (unsigned, signed)


def is_archive_file(path: Path) -> bool:
    """Docker's ``IsArchivePath`` (ADD): the decompressed content starts with a tar header."""
    try:
        with open(path, "rb") as handle:
            block = _read_exactly(HashingSource(handle), BLOCK)
    except (OSError, DockyardError):
        return False
    return block != bytes(BLOCK) and is_tar_header(block)


def _looks_like_archive(head: bytes) -> bool:
    """The docker CLI's ``IsArchive`` on the first bytes of a body (empty: an empty tar)."""
    if not head or head.startswith(_COMPRESSED_MAGIC):
        return True
    return len(head) == BLOCK and (head == bytes(BLOCK) or is_tar_header(head))


class _Replay(io.RawIOBase):
    """Returns ``head`` first, then the rest of ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Reader(Protocol):
    def read(self, n: int, /) -> bytes: ...


def _read_exactly(stream: _Reader, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _read_limited(stream: BinaryIO, what: str) -> bytes:
    data = _read_exactly(stream, MAX_TEXT + 1)
    if len(data) > MAX_TEXT:
        raise InvalidArgument(f"{what} is larger than {MAX_TEXT >> 20} MiB")
    return data


def _read_file(root: Path, name: str) -> bytes | None:
    """The content of regular file ``name`` in ``root`` (symlinks chrooted), None if none."""
    path = resolve_in_root(root, name)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return _read_limited(handle, name)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _find_dockerfile(root: Path, requested: str) -> tuple[str, bytes]:
    name = requested or DEFAULT_DOCKERFILE
    candidates = [name]
    if name == DEFAULT_DOCKERFILE:
        candidates.append(name.lower())
    for candidate in candidates:
        content = _read_file(root, candidate)
        if content is not None:
            return candidate, content
    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")


def _remove(path: Path, is_dir: bool) -> None:
    if is_dir:
        shutil.rmtree(path)
    else:
        os.unlink(path)


def prune(root: Path, matcher: IgnoreMatcher) -> int:
    """Remove from ``root`` every path ``matcher`` excludes; returns how many were removed.

    Symlinks are removed or kept as themselves, never followed. An excluded directory is
    walked only when an exception may re-include something inside it; it is then removed if
    nothing was, else reset to 0755 and 0:0.
    """
    if not matcher.patterns:
        return 0
    removed = 0
    kept: list[str] = []
    todo = [""]
    while todo:
        rel_dir = todo.pop()
        with os.scandir(root / rel_dir) as entries:
            listing = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
        for name, is_dir in listing:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not matcher.excluded(rel, is_dir):
                if is_dir:
                    todo.append(rel)
            elif is_dir and matcher.may_contain_exceptions(rel):
                kept.append(rel)
                todo.append(rel)
            else:
                _remove(root / rel, is_dir)
                removed += 1
    for rel in reversed(kept):  # children before their parents
        path = root / rel
        if not any(path.iterdir()):
            path.rmdir()
            removed += 1
            continue
        os.chmod(path, 0o755)
        if os.geteuid() == 0:
            os.chown(path, 0, 0)
    return removed


@dataclass(frozen=True)
class BuildContext:
    """An unpacked, filtered build context; call :meth:`cleanup` (or use ``with``)."""

    root: Path  # the context as COPY/ADD see it
    workdir: Path  # the private directory holding ``root``; removed by cleanup
    dockerfile: bytes  # the Dockerfile's content
    dockerfile_path: str  # where it was found, relative to the context
    ignore: IgnoreMatcher  # the .dockerignore that was applied (empty if none)
    from_stdin: bool = False  # the body was a bare Dockerfile, not a tar

    @classmethod
    def receive(cls, stream: BinaryIO, *, dockerfile: str = "",
                tmp_dir: Path | None = None) -> BuildContext:
        """Read the ``POST /build`` body from ``stream`` into a fresh directory.

        ``dockerfile`` is the query parameter (default ``Dockerfile``); ``tmp_dir`` is where
        the private directory is made (the system default if None). Raises InvalidArgument
        for a bad tar, a bad .dockerignore or a missing Dockerfile, leaving nothing behind.
        """
        workdir = Path(tempfile.mkdtemp(prefix="dockyard-build-", dir=tmp_dir))
        try:
            root = workdir / "context"
            os.mkdir(root, 0o755)
            os.chmod(root, 0o755)
            head = _read_exactly(stream, BLOCK)
            from_stdin = not _looks_like_archive(head)
            if from_stdin:
                _write_dockerfile(root, head + _read_limited(stream, "Dockerfile"))
            else:
                raw = io.BufferedReader(_Replay(head, stream), CHUNK)
                apply_layer(raw, root, overlay_whiteouts=False, lenient_end=True)
            return cls._prepare(root, workdir, dockerfile, from_stdin)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    @classmethod
    def _prepare(cls, root: Path, workdir: Path, requested: str,
                 from_stdin: bool) -> BuildContext:
        name, content = _find_dockerfile(root, "" if from_stdin else requested)
        ignore_text = _read_file(root, IGNORE_FILE)
        matcher = IgnoreMatcher()
        if ignore_text is not None:
            matcher = IgnoreMatcher.from_text(ignore_text.decode("utf-8", "surrogateescape"))
        prune(root, matcher)
        return cls(root, workdir, content, name, matcher, from_stdin)

    @property
    def dockerfile_text(self) -> str:
        return self.dockerfile.decode("utf-8", "surrogateescape")

    def cleanup(self) -> None:
        """Remove the context directory and everything in it (idempotent)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.cleanup()


def _write_dockerfile(root: Path, content: bytes) -> None:
    if len(content) > MAX_TEXT:
        raise InvalidArgument(f"Dockerfile is larger than {MAX_TEXT >> 20} MiB")
    fd = os.open(root / DEFAULT_DOCKERFILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                 0o644)
    try:
        os.fchmod(fd, 0o644)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
