"""dockyard.diff.changes: docker diff and layer tars from overlay upper dirs, on real mounts."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dockyard.diff.apply import apply_layer
from dockyard.diff.changes import Change, overlay_changes, write_layer_tar

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, mknod)")]


@pytest.fixture(autouse=True)
def _clean_tmp(tmp_path: Path) -> Iterator[None]:
    yield
    with open("/proc/self/mounts") as fh:  # a failed test may have left one mounted
        mounted = [line.split()[1] for line in fh if line.split()[1].startswith(str(tmp_path))]
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(tmp_path, ignore_errors=True)


@contextmanager
def overlay(tmp: Path, lowers: list[Path], upper: Path | None = None) -> Iterator[Path]:
    """Mount ``lowers`` (top first) with an upper dir; yields the merged dir, unmounts after."""
    tag = uuid.uuid4().hex[:8]
    upper = upper or tmp / f"upper-{tag}"
    work, merged = tmp / f"work-{tag}", tmp / f"merged-{tag}"
    for p in (upper, work, merged):
        p.mkdir(exist_ok=True)
    opts = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount overlayfs: {proc.stderr.strip()}")
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)
        shutil.rmtree(work)
        merged.rmdir()


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a layer must preserve, per path (hardlinks as groups)."""
    seen: dict[int, str] = {}
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        extra: object = None
        if stat.S_ISREG(st.st_mode):
            extra = hashlib.sha256(path.read_bytes()).hexdigest()
            if st.st_nlink > 1:
                extra = (extra, seen.setdefault(st.st_ino, rel))
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            extra = st.st_rdev
        xattrs = {} if stat.S_ISLNK(st.st_mode) else {
            k: os.getxattr(path, k) for k in os.listxattr(path)
            if not k.startswith("trusted.overlay.origin")}
        mtime = int(st.st_mtime) if not stat.S_ISCHR(st.st_mode) or st.st_rdev else None
        out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime, extra,
                    sorted(xattrs.items()))
    return out


def build_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0\n")
    os.chown(root / "etc/passwd", 0, 42)
    (root / "bin").mkdir()
    (root / "bin/su").write_bytes(b"\x7fELF" + bytes(range(256)) * 12)
    os.chmod(root / "bin/su", 0o4755)
    os.link(root / "bin/su", root / "bin/su-hardlink")
    os.symlink("/etc/passwd", root / "pwlink")
    os.symlink("../bin/su", root / "etc/rel")
    (root / "home/user").mkdir(parents=True)
    os.chown(root / "home/user", 1000, 1000)
    os.chmod(root / "home/user", 0o700)
    (root / "home/user/.profile").write_text("x")
    os.chown(root / "home/user/.profile", 1000, 1000)
    os.setxattr(root / "home/user/.profile", "user.mime", b"text/plain")
    os.setxattr(root / "bin/su", "security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    os.mknod(root / "etc/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "etc/fifo", 0o600)
    (root / "long" / ("n" * 120)).mkdir(parents=True)
    (root / "long" / ("n" * 120) / ("f" * 120)).write_text("deep")
    (root / "empty").mkdir()
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (1600000000, 1600000000), follow_symlinks=False)


def test_round_trip_preserves_everything(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tree(src)
    dst.mkdir()
    buf = io.BytesIO()
    info = write_layer_tar(src, buf)
    assert info.size == len(buf.getvalue())
    assert info.diff_id == "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    result = apply_layer(io.BytesIO(buf.getvalue()), dst)
    assert result.diff_id == info.diff_id
    assert snapshot(dst) == snapshot(src)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        members = tf.getmembers()
    names = [mem.name for mem in members]
    assert names[:3] == ["bin", "bin/su", "bin/su-hardlink"]
    assert members[2].islnk() and members[2].linkname == "bin/su"
    assert all(mem.uname == "" and mem.gname == "" for mem in members)


def test_reproducible_and_clamped(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build_tree(a)
    build_tree(b)
    first, second, third = io.BytesIO(), io.BytesIO(), io.BytesIO()
    assert write_layer_tar(a, first) == write_layer_tar(a, second)
    assert write_layer_tar(b, third).diff_id == write_layer_tar(a, io.BytesIO()).diff_id
    assert first.getvalue() == second.getvalue() == third.getvalue()
    clamped = io.BytesIO()
    write_layer_tar(a, clamped, mtime_clamp=1000)
    with tarfile.open(fileobj=io.BytesIO(clamped.getvalue())) as tf:
        assert {mem.mtime for mem in tf.getmembers()} == {1000}


def test_docker_diff(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc/passwd").write_text("root\n")
    (lower / "etc/shadow").write_text("x\n")
    (lower / "opt/app").mkdir(parents=True)
    (lower / "opt/app/old").write_text("old")
    (lower / "var/log").mkdir(parents=True)
    (lower / "untouched").mkdir()
    upper = tmp_path / "upper"
    with overlay(tmp_path, [lower], upper) as merged:
        (merged / "etc/foo").write_text("new")
        with open(merged / "etc/passwd", "a") as fh:
            fh.write("more\n")
        os.unlink(merged / "etc/shadow")
        shutil.rmtree(merged / "opt/app")
        (merged / "opt/app").mkdir()
        (merged / "opt/app/new").write_text("n")
        (merged / "var/log/deep/er").mkdir(parents=True)
        os.chmod(merged / "untouched", 0o700)
        os.symlink("/etc", merged / "newlink")
    changes = overlay_changes(upper, [lower])
    assert [(c.kind, c.path) for c in changes] == [
        ("C", "/etc"), ("A", "/etc/foo"), ("C", "/etc/passwd"), ("D", "/etc/shadow"),
        ("A", "/newlink"),
        ("C", "/opt"), ("C", "/opt/app"), ("A", "/opt/app/new"),
        ("C", "/untouched"),
        ("C", "/var"), ("C", "/var/log"), ("A", "/var/log/deep"), ("A", "/var/log/deep/er"),
    ]
    assert Change("D", "/x").to_api() == {"Path": "/x", "Kind": 2}
    assert [c.api_kind for c in changes[:2]] == [0, 1]


def test_lower_whiteouts_and_opaque_dirs_are_honoured(tmp_path: Path) -> None:
    """A path deleted by a middle layer counts as new when re-created."""
    bottom, middle = tmp_path / "bottom", tmp_path / "middle"
    (bottom / "d").mkdir(parents=True)
    (bottom / "d/f").write_text("1")
    (bottom / "gone").write_text("g")
    (middle / "d").mkdir(parents=True)
    os.setxattr(middle / "d", "trusted.overlay.opaque", b"y")
    os.mknod(middle / "gone", stat.S_IFCHR, os.makedev(0, 0))
    upper = tmp_path / "upper"
    with overlay(tmp_path, [middle, bottom], upper) as merged:
        assert not (merged / "d/f").exists()
        (merged / "d/f").write_text("again")
        (merged / "gone").write_text("back")
    assert [(c.kind, c.path) for c in overlay_changes(upper, [middle, bottom])] == [
        ("C", "/d"), ("A", "/d/f"), ("A", "/gone")]


def test_commit_whiteouts_across_layers(tmp_path: Path) -> None:
    """layer1 → container deletes and replaces → layer2 tar → stack both: deletions show."""
    base = tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc/keep").write_text("k")
    (base / "etc/remove").write_text("r")
    (base / "data/old").mkdir(parents=True)
    (base / "data/old/x").write_text("x")
    (base / "data/sub").mkdir()
    buf1 = io.BytesIO()
    write_layer_tar(base, buf1)
    layer1 = tmp_path / "layer1"
    layer1.mkdir()
    apply_layer(io.BytesIO(buf1.getvalue()), layer1)

    upper = tmp_path / "upper"
    with overlay(tmp_path, [layer1], upper) as merged:
        os.unlink(merged / "etc/remove")
        shutil.rmtree(merged / "data")
        (merged / "data").mkdir()
        (merged / "data/fresh").write_text("f")
    buf2 = io.BytesIO()
    write_layer_tar(upper, buf2)
    with tarfile.open(fileobj=io.BytesIO(buf2.getvalue())) as tf:
        names = tf.getnames()
    assert "etc/.wh.remove" in names and "data/.wh..wh..opq" in names
    layer2 = tmp_path / "layer2"
    layer2.mkdir()
    apply_layer(io.BytesIO(buf2.getvalue()), layer2)

    with overlay(tmp_path, [layer2, layer1]) as merged:
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "data")) == ["fresh"]
    flat = tmp_path / "flat"
    flat.mkdir()
    apply_layer(io.BytesIO(buf1.getvalue()), flat, overlay_whiteouts=False)
    apply_layer(io.BytesIO(buf2.getvalue()), flat, overlay_whiteouts=False)
    assert sorted(str(p.relative_to(flat)) for p in flat.rglob("*")) == [
        "data", "data/fresh", "etc", "etc/keep"]


def test_gnu_tar_interop(tmp_path: Path) -> None:
    """A layer made by GNU tar (./ prefixes, root entry, xattrs) unpacks to the same tree."""
    if not shutil.which("tar"):
        pytest.skip("no tar")
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tree(src)
    dst.mkdir()
    data = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                           "--format=posix", "-C", str(src), "-cpf", "-", "."],
                          capture_output=True, check=True).stdout
    apply_layer(io.BytesIO(data), dst)
    assert snapshot(dst) == snapshot(src)


def test_large_files_cross_buffer_boundaries(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    blob = hashlib.sha256(b"seed").digest() * (90_000)  # ~2.9 MB, not block aligned
    (src / "a").write_bytes(blob + b"tail")
    (src / "b").write_bytes(b"small")
    (src / "c").write_bytes(blob[:1_048_577])
    buf = io.BytesIO()
    write_layer_tar(src, buf)
    apply_layer(io.BytesIO(buf.getvalue()), dst)
    assert snapshot(dst) == snapshot(src)
