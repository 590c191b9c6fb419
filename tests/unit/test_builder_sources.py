"""dockyard.builder.sources and .placement: COPY/ADD source resolution, checksums, placement."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.builder.placement import copy_into, normalize_dest
from dockyard.builder.sources import (
    Source,
    digest_sources,
    explain_change,
    resolve_sources,
    source_checksum,
)
from dockyard.errors import InvalidArgument, NotFound

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod)")]


def write(root: Path, rel: str, data: str = "x", mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.chmod(path, mode)
    return path


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture()
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    write(root, "a.py", "a")
    write(root, "b.py", "b")
    write(root, "README.md", "readme")
    write(root, "app/main.py", "main", 0o755)
    write(root, "app/util/helpers.py", "helpers")
    write(root, "app/util/data.txt", "data")
    os.symlink("main.py", root / "app/link")
    os.symlink("/app/main.py", root / "abs-link")
    os.symlink("/etc/passwd", root / "host-passwd")
    return root


@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "existing").mkdir(parents=True)
    (root / "file").write_text("old")
    return root


def paths(sources: list[Source]) -> list[str]:
    return [s.path for s in sources]


# -- resolution -------------------------------------------------------------------------------
def test_plain_paths_and_trimming(ctx: Path) -> None:
    found = resolve_sources(ctx, ["a.py", "/b.py", "./app", "app/util/../main.py", "."])
    assert paths(found) == ["a.py", "b.py", "app", "app/main.py", ""]
    assert [s.is_dir for s in found] == [False, False, True, False, True]
    assert found[0].host_path == ctx / "a.py"


@pytest.mark.parametrize(("pattern", "want"), [
    ("*.py", ["a.py", "b.py"]),
    ("app/*", ["app/link", "app/main.py", "app/util"]),
    ("*/*.py", ["app/main.py"]),
    ("**/*.py", ["app/main.py"]),  # ** is not special: two stars in one segment
    ("app/*/*.txt", ["app/util/data.txt"]),
    ("[ab].py", ["a.py", "b.py"]),
    ("?.py", ["a.py", "b.py"]),
    ("*", ["README.md", "a.py", "abs-link", "app", "b.py"]),
])
def test_globs(ctx: Path, pattern: str, want: list[str]) -> None:
    (ctx / "host-passwd").unlink()  # dangling once chrooted: a match of it is an error
    assert paths(resolve_sources(ctx, [pattern])) == want


def test_glob_order_is_walkdir_order(tmp_path: Path) -> None:
    write(tmp_path, "a/x")
    write(tmp_path, "ab")
    assert paths(resolve_sources(tmp_path, ["a[/b]*"])) == ["a/x", "ab"]  # [/] can match /


def test_symlink_sources_are_followed_chrooted(ctx: Path) -> None:
    link, absolute = resolve_sources(ctx, ["app/link", "abs-link"])
    assert link.host_path == ctx / "app/main.py" and link.path == "app/link"
    assert absolute.host_path == ctx / "app/main.py"
    with pytest.raises(NotFound, match="stat host-passwd: file does not exist"):
        resolve_sources(ctx, ["host-passwd"])  # /etc/passwd of the context, not the host's


def test_outside_the_context_is_forbidden(ctx: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        resolve_sources(ctx, ["../x"])
    assert str(err.value) == "COPY failed: forbidden path outside the build context: ../x ()"
    with pytest.raises(InvalidArgument, match="ADD failed: forbidden path.*app/../../y"):
        resolve_sources(ctx, ["app/../../y"], is_add=True)
    with pytest.raises(InvalidArgument, match="forbidden path"):
        resolve_sources(ctx, ["../*.py"])


def test_missing_sources(ctx: Path) -> None:
    with pytest.raises(NotFound) as err:
        resolve_sources(ctx, ["./nope"])
    assert str(err.value) == ("COPY failed: file not found in build context or excluded by "
                              ".dockerignore: stat nope: file does not exist")
    with pytest.raises(NotFound) as err:
        resolve_sources(ctx, ["nope"], from_context=False)
    assert str(err.value) == "COPY failed: stat nope: file does not exist"
    with pytest.raises(InvalidArgument, match="COPY failed: no source files were specified"):
        resolve_sources(ctx, ["*.go"])
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        resolve_sources(ctx, ["a[.py"])


def test_urls(ctx: Path) -> None:
    with pytest.raises(InvalidArgument, match="^ADD from a URL is not supported: no network"):
        resolve_sources(ctx, ["https://example.com/x.tgz"], is_add=True)
    with pytest.raises(InvalidArgument, match="source can't be a URL for COPY"):
        resolve_sources(ctx, ["http://example.com/x"])


# -- checksums --------------------------------------------------------------------------------
def test_checksum_ignores_mtime_but_not_content_or_mode(ctx: Path) -> None:
    srcs = resolve_sources(ctx, ["app", "a.py"])
    first = source_checksum(srcs)
    assert first.startswith("sha256:") and first == source_checksum(srcs)
    os.utime(ctx / "app/main.py", (1, 1))
    os.utime(ctx / "app", (2, 2))
    assert source_checksum(srcs) == first  # touched, unchanged: a cache hit
    write(ctx, "app/main.py", "main2", 0o755)
    changed = source_checksum(srcs)
    assert changed != first
    os.chmod(ctx / "app/main.py", 0o700)
    assert source_checksum(srcs) not in (first, changed)
    write(ctx, "app/main.py", "main", 0o755)
    assert source_checksum(srcs) == first
    os.chown(ctx / "a.py", 1000, 1000)
    assert source_checksum(srcs) != first


def test_checksum_covers_symlinks_order_and_tree(ctx: Path) -> None:
    base = source_checksum(resolve_sources(ctx, ["app"]))
    os.unlink(ctx / "app/link")
    os.symlink("util", ctx / "app/link")
    assert source_checksum(resolve_sources(ctx, ["app"])) != base
    ab, ba = resolve_sources(ctx, ["a.py", "b.py"]), resolve_sources(ctx, ["b.py", "a.py"])
    assert source_checksum(ab) != source_checksum(ba)
    empty = ctx / "empty"
    empty.mkdir()
    (ctx / "emptyfile").write_text("")
    assert source_checksum(resolve_sources(ctx, ["empty"])) != \
        source_checksum(resolve_sources(ctx, ["emptyfile"]))


def test_digest_map_explains_a_miss(ctx: Path) -> None:
    before = digest_sources(resolve_sources(ctx, ["app"]))
    assert set(before.files) == {"app", "app/link", "app/main.py", "app/util",
                                 "app/util/data.txt", "app/util/helpers.py"}
    write(ctx, "app/main.py", "new", 0o755)
    write(ctx, "app/new.py", "n")
    (ctx / "app/util/data.txt").unlink()
    after = digest_sources(resolve_sources(ctx, ["app"]))
    assert explain_change(before.files, after.files) == [
        "changed: app/main.py", "added: app/new.py", "removed: app/util/data.txt"]
    assert explain_change(after.files, after.files) == []
    root_keys = digest_sources(resolve_sources(ctx, ["."])).files
    assert "app/main.py" in root_keys and "." in root_keys


def test_checksum_memo_is_reused(ctx: Path) -> None:
    memo: dict[tuple[int, int, int, int, int], str] = {}
    srcs = resolve_sources(ctx, ["app"])
    first = source_checksum(srcs, memo)
    assert len(memo) == 3 and source_checksum(srcs, memo) == first


# -- placement --------------------------------------------------------------------------------
def test_directory_copies_its_contents(ctx: Path, rootfs: Path) -> None:
    copy_into(resolve_sources(ctx, ["app"]), "/dest", rootfs)
    assert listing(rootfs / "dest") == ["link", "main.py", "util", "util/data.txt",
                                        "util/helpers.py"]
    assert os.readlink(rootfs / "dest/link") == "main.py"  # inner symlinks stay symlinks
    assert stat.S_IMODE(os.stat(rootfs / "dest/main.py").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(rootfs / "dest").st_mode) == 0o755
    assert (rootfs / "dest/main.py").stat().st_mtime == (ctx / "app/main.py").stat().st_mtime


def test_file_destination_rules(ctx: Path, rootfs: Path) -> None:
    copy_into(resolve_sources(ctx, ["a.py"]), "/renamed.py", rootfs)
    assert (rootfs / "renamed.py").read_text() == "a"
    copy_into(resolve_sources(ctx, ["a.py"]), "/newdir/", rootfs)
    assert (rootfs / "newdir/a.py").read_text() == "a"
    copy_into(resolve_sources(ctx, ["a.py"]), "/existing", rootfs)
    assert (rootfs / "existing/a.py").read_text() == "a"
    copy_into(resolve_sources(ctx, ["a.py"]), "/file", rootfs)
    assert (rootfs / "file").read_text() == "a"
    copy_into(resolve_sources(ctx, ["app/link"]), "/deep/er/", rootfs)
    assert (rootfs / "deep/er/link").read_text() == "main"  # named after the link, followed
    assert stat.S_IMODE(os.stat(rootfs / "deep").st_mode) == 0o755


def test_multiple_sources_need_a_slash(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="When using COPY with more than one source "
                       "file, the destination must be a directory and end with a /"):
        copy_into(resolve_sources(ctx, ["*.py"]), "/dest", rootfs)
    with pytest.raises(InvalidArgument, match="When using ADD"):
        copy_into(resolve_sources(ctx, ["a.py", "b.py"]), "/dest", rootfs, is_add=True)
    assert not (rootfs / "dest").exists()
    copy_into(resolve_sources(ctx, ["*.py", "app/util"]), "/dest/", rootfs)
    assert listing(rootfs / "dest") == ["a.py", "b.py", "data.txt", "helpers.py"]
    copy_into(resolve_sources(ctx, ["a*.py"]), "/single", rootfs)  # one match: a rename
    assert (rootfs / "single").read_text() == "a"


def test_relative_dest_uses_workdir(ctx: Path, rootfs: Path) -> None:
    assert normalize_dest(".", "/work") == "/work"
    assert normalize_dest("sub/", "/work") == "/work/sub/"
    assert normalize_dest("/abs/../x/", "/work") == "/abs/../x/"
    (rootfs / "work").mkdir()
    copy_into(resolve_sources(ctx, ["a.py"]), ".", rootfs, workdir="/work")
    copy_into(resolve_sources(ctx, ["b.py"]), "sub/", rootfs, workdir="/work")
    assert listing(rootfs / "work") == ["a.py", "sub", "sub/b.py"]


def test_default_owner_is_root_and_chown_chmod(ctx: Path, rootfs: Path) -> None:
    for path in (ctx / "app").rglob("*"):
        os.lchown(path, 1234, 1234)
    copy_into(resolve_sources(ctx, ["app"]), "/root-owned", rootfs)
    assert {os.lstat(p).st_uid for p in (rootfs / "root-owned").rglob("*")} == {0}
    copy_into(resolve_sources(ctx, ["app"]), "/new/owned", rootfs, chown=(1000, 1001),
              chmod=0o640)
    for path in [rootfs / "new/owned", *(rootfs / "new/owned").rglob("*")]:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (1000, 1001), path
        if not stat.S_ISLNK(info.st_mode):
            assert stat.S_IMODE(info.st_mode) == 0o640, path
    new = os.lstat(rootfs / "new")
    assert (new.st_uid, stat.S_IMODE(new.st_mode)) == (1000, 0o755)  # made on the way
    assert os.lstat(rootfs / "existing").st_uid == 0  # existing dirs keep their owner


def test_setuid_bits_survive_the_chown(ctx: Path, rootfs: Path) -> None:
    write(ctx, "suid", "s", 0o4755)
    copy_into(resolve_sources(ctx, ["suid"]), "/bin/", rootfs, chown=(5, 5))
    assert stat.S_IMODE(os.stat(rootfs / "bin/suid").st_mode) == 0o4755


def test_existing_destination_dir_is_merged_and_types_replaced(ctx: Path,
                                                                rootfs: Path) -> None:
    (rootfs / "existing/util").write_text("was a file")
    (rootfs / "existing/main.py").mkdir()
    (rootfs / "existing/keep").write_text("k")
    os.chmod(rootfs / "existing", 0o711)
    copy_into(resolve_sources(ctx, ["app"]), "/existing", rootfs)
    assert (rootfs / "existing/main.py").read_text() == "main"
    assert (rootfs / "existing/util/helpers.py").read_text() == "helpers"
    assert (rootfs / "existing/keep").read_text() == "k"
    assert stat.S_IMODE(os.stat(rootfs / "existing").st_mode) == 0o711  # not ours to change
    assert not any(p.name.startswith(".dockyard-copy") for p in rootfs.rglob("*"))


def test_dest_symlinks_are_resolved_inside_the_rootfs(ctx: Path, rootfs: Path,
                                                      tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), rootfs / "escape")  # absolute: means <rootfs><outside>
    os.symlink("../../../../..", rootfs / "up")
    copy_into(resolve_sources(ctx, ["a.py"]), "/escape/", rootfs)
    copy_into(resolve_sources(ctx, ["app"]), "/up/x", rootfs)
    assert list(outside.iterdir()) == []
    assert (rootfs / str(outside).lstrip("/") / "a.py").read_text() == "a"
    assert (rootfs / "x/main.py").read_text() == "main"
    os.symlink("/file", rootfs / "to-file")
    copy_into(resolve_sources(ctx, ["b.py"]), "/to-file", rootfs)
    assert (rootfs / "file").read_text() == "b" and (rootfs / "to-file").is_symlink()


def test_directory_onto_a_file_fails(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="COPY failed: failed to copy files: mkdir /file"):
        copy_into(resolve_sources(ctx, ["app"]), "/file", rootfs)
    with pytest.raises(InvalidArgument, match="not a directory"):
        copy_into(resolve_sources(ctx, ["a.py"]), "/file/sub/", rootfs)


def test_hardlinks_and_devices_in_a_tree(tmp_path: Path, rootfs: Path) -> None:
    src = tmp_path / "src"
    write(src, "d/one", "1")
    os.link(src / "d/one", src / "d/two")
    os.mkfifo(src / "d/fifo", 0o640)
    os.mknod(src / "d/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    copy_into(resolve_sources(src, ["d"]), "/out/", rootfs)
    assert os.stat(rootfs / "out/one").st_ino == os.stat(rootfs / "out/two").st_ino
    assert stat.S_ISFIFO(os.lstat(rootfs / "out/fifo").st_mode)
    null = os.lstat(rootfs / "out/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)


def _tar(files: dict[str, bytes], uid: int = 42) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), uid, uid, 0o600
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, bz2.compress,
                                      lzma.compress])
def test_add_extracts_local_archives(ctx: Path, rootfs: Path,
                                     compress: Callable[[bytes], bytes]) -> None:
    (ctx / "bundle.tar.x").write_bytes(compress(_tar({"lib/a.so": b"so", "etc/conf": b"c"})))
    copy_into(resolve_sources(ctx, ["bundle.tar.x"], is_add=True), "/opt/app", rootfs,
              is_add=True)
    assert listing(rootfs / "opt/app") == ["etc", "etc/conf", "lib", "lib/a.so"]
    info = os.stat(rootfs / "opt/app/lib/a.so")
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (42, 0o600)  # the archive's owner


def test_add_archive_with_chown_and_copy_does_not_extract(ctx: Path, rootfs: Path) -> None:
    (ctx / "t.tgz").write_bytes(gzip.compress(_tar({"f": b"1"})))
    copy_into(resolve_sources(ctx, ["t.tgz"]), "/opt/", rootfs, is_add=True, chown=(7, 8))
    assert (os.stat(rootfs / "opt/f").st_uid, os.stat(rootfs / "opt/f").st_gid) == (7, 8)
    copy_into(resolve_sources(ctx, ["t.tgz"]), "/copied/", rootfs)
    assert listing(rootfs / "copied") == ["t.tgz"]


def test_add_plain_files_and_empty_tars_are_copied(ctx: Path, rootfs: Path) -> None:
    (ctx / "empty.tar").write_bytes(bytes(1024))
    (ctx / "fake.tar.gz").write_bytes(b"\x1f\x8bnot really gzip")
    copy_into(resolve_sources(ctx, ["a.py", "empty.tar", "fake.tar.gz"], is_add=True), "/d/",
              rootfs, is_add=True)
    assert listing(rootfs / "d") == ["a.py", "empty.tar", "fake.tar.gz"]


def test_add_archive_cannot_escape(tmp_path: Path, ctx: Path, rootfs: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../../escaped")
        tf.addfile(info, io.BytesIO(b""))
    (ctx / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(InvalidArgument, match="escapes the destination"):
        copy_into(resolve_sources(ctx, ["evil.tar"], is_add=True), "/x/", rootfs, is_add=True)
    assert not (tmp_path / "escaped").exists()


def test_no_sources(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="no source files were specified"):
        copy_into([], "/x", rootfs)


def test_directory_mtimes_do_not_record_the_build_time(ctx: Path, rootfs: Path) -> None:
    os.utime(rootfs / "existing", (1_000_000, 1_000_000))
    os.utime(ctx / "a.py", (2_000_000, 2_000_000))
    os.utime(ctx / "b.py", (3_000_000, 3_000_000))
    copy_into(resolve_sources(ctx, ["a.py", "b.py"]), "/existing/new/deeper/", rootfs)
    copy_into(resolve_sources(ctx, ["a.py"]), "/existing/a.py", rootfs)
    # an existing directory written into keeps its mtime
    assert (rootfs / "existing").stat().st_mtime == 1_000_000
    # directories the copy made get the newest mtime of its sources
    assert (rootfs / "existing/new").stat().st_mtime == 3_000_000
    assert (rootfs / "existing/new/deeper").stat().st_mtime == 3_000_000
    assert (rootfs / "existing/new/deeper/a.py").stat().st_mtime == 2_000_000
    # a copied directory gets its source's mtime, its files theirs
    os.utime(ctx / "app/util", (4_000_000, 4_000_000))
    copy_into(resolve_sources(ctx, ["app/util"]), "/made/util/", rootfs)
    assert (rootfs / "made/util").stat().st_mtime == 4_000_000
    assert (rootfs / "made").stat().st_mtime == 4_000_000
