"""dockyard.builder.context: receiving, unpacking and filtering the build context."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.builder.context import BuildContext, is_tar_header, prune
from dockyard.builder.ignore import IgnoreMatcher
from dockyard.errors import InvalidArgument

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")]

DOCKERFILE = b"FROM scratch\nCOPY . /\n"
Receive = Callable[..., BuildContext]


def make_tar(files: dict[str, bytes | str | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """``None`` is a directory, a ``str`` starting with ``->`` a symlink, bytes a file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 1000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                tf.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data.removeprefix("->")
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    path = tmp_path / "builds"
    path.mkdir()
    return path


@pytest.fixture()
def receive(tmp: Path) -> Iterator[Receive]:
    made: list[BuildContext] = []

    def run(body: bytes, dockerfile: str = "") -> BuildContext:
        ctx = BuildContext.receive(io.BytesIO(body), dockerfile=dockerfile, tmp_dir=tmp)
        made.append(ctx)
        return ctx

    yield run
    for ctx in made:
        ctx.cleanup()


def test_plain_tar_context(receive: Receive, tmp: Path) -> None:
    ctx = receive(make_tar({"Dockerfile": DOCKERFILE, "app": None, "app/main.py": b"print()"}))
    assert ctx.dockerfile == DOCKERFILE and ctx.dockerfile_path == "Dockerfile"
    assert ctx.dockerfile_text.startswith("FROM scratch")
    assert not ctx.from_stdin
    assert listing(ctx.root) == ["Dockerfile", "app", "app/main.py"]
    info = os.lstat(ctx.root / "app/main.py")
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (1000, 0o640)
    assert ctx.workdir.parent == tmp and ctx.root.parent == ctx.workdir
    assert stat.S_IMODE(os.stat(ctx.workdir).st_mode) == 0o700


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_contexts(receive: Receive, compress: Callable[[bytes], bytes]) -> None:
    ctx = receive(compress(make_tar({"Dockerfile": DOCKERFILE, "x": b"1"})))
    assert ctx.dockerfile == DOCKERFILE and listing(ctx.root) == ["Dockerfile", "x"]


def test_gnu_and_ustar_formats(receive: Receive) -> None:
    long_name = "d/" + "n" * 150
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        files: dict[str, bytes | str | None] = {"Dockerfile": DOCKERFILE}
        if fmt == tarfile.GNU_FORMAT:
            files[long_name] = b"long"
        ctx = receive(make_tar(files, fmt))
        assert ctx.dockerfile == DOCKERFILE and not ctx.from_stdin


def test_traversal_is_refused_and_nothing_left(tmp: Path) -> None:
    for body in (make_tar({"Dockerfile": DOCKERFILE, "../evil": b"x"}),
                 make_tar({"a/../../evil": b"x"})):
        with pytest.raises(InvalidArgument, match="escapes the destination"):
            BuildContext.receive(io.BytesIO(body), tmp_dir=tmp)
    assert list(tmp.iterdir()) == []
    assert not (tmp.parent / "evil").exists()


def test_absolute_symlinks_are_kept_but_never_followed(receive: Receive, tmp: Path) -> None:
    before = Path("/etc/hostname").read_bytes() if Path("/etc/hostname").exists() else None
    ctx = receive(make_tar({"Dockerfile": DOCKERFILE, "etc": "->/etc", "pw": "->/etc/passwd",
                            "up": "->../../../.."}))
    assert os.readlink(ctx.root / "etc") == "/etc"
    assert os.readlink(ctx.root / "pw") == "/etc/passwd"
    assert os.readlink(ctx.root / "up") == "../../../.."
    with pytest.raises(InvalidArgument, match="through the symlink"):
        BuildContext.receive(io.BytesIO(make_tar({"etc": "->/etc", "etc/hostname": b"pwn"})),
                             tmp_dir=tmp)
    assert [p.name for p in tmp.iterdir()] == [ctx.workdir.name]  # the failed one is gone
    if before is not None:
        assert Path("/etc/hostname").read_bytes() == before


def test_dockerfile_through_absolute_symlink_is_chrooted(receive: Receive) -> None:
    ctx = receive(make_tar({"real/Dockerfile": DOCKERFILE, "Dockerfile": "->/real/Dockerfile"}))
    assert ctx.dockerfile == DOCKERFILE
    with pytest.raises(InvalidArgument, match="Cannot locate specified Dockerfile: Dockerfile"):
        receive(make_tar({"Dockerfile": "->/etc/passwd"}))


def test_dockerfile_param_and_lowercase_fallback(receive: Receive) -> None:
    ctx = receive(make_tar({"build/Dockerfile.dev": b"FROM a\n"}), "build/Dockerfile.dev")
    assert ctx.dockerfile == b"FROM a\n" and ctx.dockerfile_path == "build/Dockerfile.dev"
    ctx = receive(make_tar({"dockerfile": b"FROM lower\n"}))
    assert ctx.dockerfile == b"FROM lower\n" and ctx.dockerfile_path == "dockerfile"
    with pytest.raises(InvalidArgument, match="Cannot locate specified Dockerfile: Dockerfile"):
        receive(make_tar({"other": b"x"}))
    with pytest.raises(InvalidArgument, match="Cannot locate specified Dockerfile: nope"):
        receive(make_tar({"Dockerfile": DOCKERFILE}), "nope")
    with pytest.raises(InvalidArgument, match="Cannot locate"):
        receive(make_tar({"Dockerfile": None}))


def test_cli_dockerfile_from_outside_the_context(receive: Receive) -> None:
    name = ".dockerfile.0123456789abcdef0123"
    ctx = receive(make_tar({"src.txt": b"s", ".dockerignore": f"*.log\n{name}\n".encode(),
                            name: b"FROM outside\n", "x.log": b"l"}), name)
    assert ctx.dockerfile == b"FROM outside\n" and ctx.dockerfile_path == name
    assert listing(ctx.root) == [".dockerignore", "src.txt"]


def test_dockerignore_is_applied(receive: Receive) -> None:
    ignore = b"# build junk\n*.log\nnode_modules\nvendor\n!vendor/keep.txt\n**/*.tmp\n"
    ctx = receive(make_tar({
        "Dockerfile": DOCKERFILE, ".dockerignore": ignore, "a.log": b"x", "keep.py": b"k",
        "node_modules": None, "node_modules/lib.js": b"j", "vendor": None,
        "vendor/keep.txt": b"k", "vendor/drop.txt": b"d", "src": None, "src/x.tmp": b"t",
        "src/main.py": b"m", "src/deep.log": b"kept: *.log has no **"}))
    assert listing(ctx.root) == [".dockerignore", "Dockerfile", "keep.py", "src",
                                 "src/deep.log", "src/main.py", "vendor", "vendor/keep.txt"]
    vendor = os.lstat(ctx.root / "vendor")
    assert stat.S_IMODE(vendor.st_mode) == 0o755 and vendor.st_uid == 0  # as Docker recreates it
    assert stat.S_IMODE(os.lstat(ctx.root / "src").st_mode) == 0o750
    assert ctx.ignore.excluded("a.log")


def test_ignored_dockerfile_and_dockerignore_are_read_but_not_visible(receive: Receive) -> None:
    ignore = b"Dockerfile\n.dockerignore\n"
    ctx = receive(make_tar({"Dockerfile": DOCKERFILE, ".dockerignore": ignore, "x": b"1"}))
    assert ctx.dockerfile == DOCKERFILE and listing(ctx.root) == ["x"]
    ctx = receive(make_tar({"sub/Dockerfile": DOCKERFILE, ".dockerignore": b"sub\n"}),
                  "sub/Dockerfile")
    assert ctx.dockerfile == DOCKERFILE and listing(ctx.root) == [".dockerignore"]


def test_excluded_dir_without_survivors_is_removed(receive: Receive) -> None:
    ctx = receive(make_tar({"Dockerfile": DOCKERFILE, ".dockerignore": b"cache\n!cache/keep\n",
                            "cache": None, "cache/other": b"o"}))
    assert listing(ctx.root) == [".dockerignore", "Dockerfile"]


def test_symlinks_are_pruned_not_followed(receive: Receive) -> None:
    ctx = receive(make_tar({"Dockerfile": DOCKERFILE, ".dockerignore": b"link\nlink/*\n",
                            "dir": None, "dir/f": b"f", "link": "->dir"}))
    assert listing(ctx.root) == [".dockerignore", "Dockerfile", "dir", "dir/f"]


def test_bad_dockerignore_is_an_error(tmp: Path) -> None:
    body = make_tar({"Dockerfile": DOCKERFILE, ".dockerignore": b"[\n"})
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        BuildContext.receive(io.BytesIO(body), tmp_dir=tmp)
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("text", [DOCKERFILE, b"FROM busybox\n" + b"RUN echo hi\n" * 200,
                                  b"# syntax=docker/dockerfile:1\nFROM x"])
def test_stdin_dockerfile_mode(receive: Receive, text: bytes) -> None:
    ctx = receive(text, "ignored.Dockerfile")
    assert ctx.from_stdin and ctx.dockerfile == text and ctx.dockerfile_path == "Dockerfile"
    assert listing(ctx.root) == ["Dockerfile"]  # as the CLI's wrapper tar holds it
    assert (ctx.root / "Dockerfile").read_bytes() == text


def test_empty_body_is_an_empty_context(tmp: Path) -> None:
    with pytest.raises(InvalidArgument, match="Cannot locate specified Dockerfile"):
        BuildContext.receive(io.BytesIO(b""), tmp_dir=tmp)
    assert list(tmp.iterdir()) == []


def test_truncated_tar_is_an_error(tmp: Path) -> None:
    body = make_tar({"Dockerfile": DOCKERFILE, "big": b"x" * 4096})
    with pytest.raises(InvalidArgument, match="truncated"):
        BuildContext.receive(io.BytesIO(body[:2048]), tmp_dir=tmp)
    assert list(tmp.iterdir()) == []


def test_cleanup_leaves_nothing(tmp: Path) -> None:
    body = make_tar({"Dockerfile": DOCKERFILE, "ro": None, "ro/f": b"x"})
    with BuildContext.receive(io.BytesIO(body), tmp_dir=tmp) as ctx:
        os.chmod(ctx.root / "ro", 0o500)
        assert ctx.root.exists()
    assert list(tmp.iterdir()) == []
    ctx.cleanup()  # idempotent


def test_slow_stream_is_read_whole(tmp: Path) -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
            chunk, self.data = self.data[:7], self.data[7:]
            buf[:len(chunk)] = chunk
            return len(chunk)

    body = make_tar({"Dockerfile": DOCKERFILE, "f": b"y" * 3000})
    ctx = BuildContext.receive(io.BufferedReader(Trickle(body)), tmp_dir=tmp)
    try:
        assert (ctx.root / "f").read_bytes() == b"y" * 3000
    finally:
        ctx.cleanup()


def test_is_tar_header() -> None:
    block = make_tar({"f": b"x"}, tarfile.USTAR_FORMAT)[:512]
    assert is_tar_header(block)
    assert not is_tar_header(block[:511]) and not is_tar_header(b"FROM x\n".ljust(512, b" "))
    assert not is_tar_header(bytes(512))


def test_prune_without_patterns_is_a_no_op(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    assert prune(tmp_path, IgnoreMatcher()) == 0 and (tmp_path / "a").exists()
    assert prune(tmp_path, IgnoreMatcher.from_text("a")) == 1 and not (tmp_path / "a").exists()
