"""dockyard.diff.apply: unpacking layers (overlay form and flat), confined, all-or-nothing."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.diff.apply import apply_layer, extract_tar_into, unpack_layer
from dockyard.errors import InvalidArgument, NotFound

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, xattrs)")]

@pytest.fixture(autouse=True)
def _clean_tmp(tmp_path: Path) -> Iterator[None]:
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


Member = tuple[tarfile.TarInfo, bytes | None]


def make_tar(*members: Member) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def m(name: str, data: bytes | None = b"", kind: bytes = tarfile.REGTYPE,
      **attrs: object) -> Member:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti, (data if kind == tarfile.REGTYPE else None)


def d(name: str, **attrs: object) -> Member:
    return m(name, None, tarfile.DIRTYPE, **{"mode": 0o755, **attrs})


def sym(name: str, target: str) -> Member:
    return m(name, None, tarfile.SYMTYPE, linkname=target)


def hard(name: str, target: str) -> Member:
    return m(name, None, tarfile.LNKTYPE, linkname=target)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture()
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "layer"
    path.mkdir()
    return path


@pytest.fixture()
def host_etc_guard() -> Iterator[None]:
    """Belt and braces: if a bug ever wrote through to the host, put /etc/passwd back."""
    before = Path("/etc/passwd").read_bytes()
    yield
    if Path("/etc/passwd").read_bytes() != before:
        Path("/etc/passwd").write_bytes(before)
        pytest.fail("the host's /etc/passwd was modified")


def test_all_member_kinds(dest: Path) -> None:
    data = make_tar(
        d("etc/", mtime=1000, uid=3, gid=4),
        m("etc/passwd", b"root:x:0:0\n", mode=0o4755, uid=5, gid=6, mtime=2000),
        sym("etc/link", "/etc/passwd"),
        hard("etc/hard", "etc/passwd"),
        m("dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        m("dev/sda", kind=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660),
        m("run/fifo", kind=tarfile.FIFOTYPE, mode=0o620),
        m("deep/er/file", b"x", mode=0o600),  # parents implied
    )
    result = apply_layer(io.BytesIO(data), dest)
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.size == len(b"root:x:0:0\n") + 1
    pw = os.lstat(dest / "etc/passwd")
    assert stat.S_IMODE(pw.st_mode) == 0o4755 and (pw.st_uid, pw.st_gid) == (5, 6)
    assert pw.st_mtime == 2000 and pw.st_nlink == 2
    assert os.lstat(dest / "etc/hard").st_ino == pw.st_ino
    assert os.readlink(dest / "etc/link") == "/etc/passwd"
    etc = os.lstat(dest / "etc")
    assert etc.st_mtime == 1000 and (etc.st_uid, etc.st_gid) == (3, 4)  # set after content
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(os.lstat(dest / "dev/sda").st_mode)
    fifo = os.lstat(dest / "run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    assert stat.S_IMODE(os.lstat(dest / "deep/er").st_mode) == 0o755


def test_gzip_layer_and_xattrs(dest: Path) -> None:
    ti, data = m("f", b"cap")
    ti.pax_headers = {"SCHILY.xattr.user.note": "hi",
                      "SCHILY.xattr.trusted.overlay.opaque": "y",  # must never be honoured
                      "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    raw = make_tar((ti, data), d("dir/"))
    result = apply_layer(io.BytesIO(gzip.compress(raw)), dest)
    assert result.compression == "gzip"
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert os.getxattr(dest / "f", "user.note") == b"hi"
    assert not any(k.startswith("trusted.overlay") for k in os.listxattr(dest / "f"))


def test_whiteouts_and_opaque_in_overlay_form(dest: Path) -> None:
    apply_layer(io.BytesIO(make_tar(
        m("etc/.wh.shadow"), d("opt/"), m("opt/.wh..wh..opq"), m("opt/new", b"n"),
        m(".wh.gone"))), dest)
    shadow = os.lstat(dest / "etc/shadow")
    assert stat.S_ISCHR(shadow.st_mode) and shadow.st_rdev == 0
    assert os.getxattr(dest / "opt", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISCHR(os.lstat(dest / "gone").st_mode)
    assert listing(dest) == ["etc", "etc/shadow", "gone", "opt", "opt/new"]


def test_dir_recreated_over_a_whiteout_becomes_opaque(dest: Path) -> None:
    apply_layer(io.BytesIO(make_tar(m(".wh.app"), d("app/"), m("app/x", b"x"))), dest)
    assert os.getxattr(dest / "app", "trusted.overlay.opaque") == b"y"


def test_later_members_replace_earlier_ones(dest: Path) -> None:
    apply_layer(io.BytesIO(make_tar(
        d("a/"), m("a/f", b"1"), m("a", b"now a file"), sym("s", "x"), d("s/"),
        m("s/inside", b"ok"), m("f", b"1"), m("f", b"22"))), dest)
    assert (dest / "a").read_bytes() == b"now a file"
    assert (dest / "s").is_dir() and not (dest / "s").is_symlink()
    assert (dest / "s/inside").read_bytes() == b"ok"
    assert (dest / "f").read_bytes() == b"22"


def test_flat_mode_deletes(dest: Path) -> None:
    (dest / "etc").mkdir()
    (dest / "etc/shadow").write_text("secret")
    (dest / "opt/old").mkdir(parents=True)
    (dest / "opt/old/file").write_text("old")
    (dest / "keep").write_text("k")
    apply_layer(io.BytesIO(make_tar(
        m("etc/.wh.shadow"), m("opt/new", b"n"), m("opt/.wh..wh..opq"),
        m(".wh.missing"))), dest, overlay_whiteouts=False)
    assert listing(dest) == ["etc", "keep", "opt", "opt/new"]


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../../etc/x", "./../x"])
def test_dotdot_escape_is_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / "final"
    with pytest.raises(InvalidArgument, match=r'invalid tar entry ".*": path escapes'):
        unpack_layer(io.BytesIO(make_tar(m("ok", b"1"), m(name, b"evil"))), target)
    assert not target.exists() and not (tmp_path / "x").exists()
    assert os.listdir(tmp_path) == []  # no temporary directory left behind


def test_absolute_leading_slash_is_stripped(dest: Path) -> None:
    apply_layer(io.BytesIO(make_tar(m("/etc/motd", b"hi"))), dest)
    assert (dest / "etc/motd").read_bytes() == b"hi"


def test_write_through_absolute_symlink_is_refused(tmp_path: Path,
                                                   host_etc_guard: None) -> None:
    target = tmp_path / "final"
    with pytest.raises(InvalidArgument, match="through the symlink"):
        unpack_layer(io.BytesIO(make_tar(sym("evil", "/etc"), m("evil/passwd", b"pwned"))),
                     target)
    assert not target.exists() and os.listdir(tmp_path) == []


def test_write_through_relative_escaping_symlink_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = tmp_path / "layer"
    layer.mkdir()
    data = make_tar(sym("up", "../outside"), m("up/pwned", b"x"))
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(data), layer)
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(data), layer, overlay_whiteouts=False)
    assert os.listdir(outside) == []


def test_preexisting_symlinks_are_followed_chrooted(tmp_path: Path) -> None:
    """Flat mode on a full tree: /lib -> /usr/lib (absolute!) resolves inside the root."""
    root = tmp_path / "rootfs"
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("/usr/lib", root / "lib")
    os.symlink("/", root / "slash")
    apply_layer(io.BytesIO(make_tar(m("lib/libx.so", b"elf"), m("slash/tmp/y", b"y"))), root,
                overlay_whiteouts=False)
    assert (root / "usr/lib/libx.so").read_bytes() == b"elf"
    assert (root / "tmp/y").read_bytes() == b"y"
    assert not Path("/usr/lib/libx.so").exists()


@pytest.mark.parametrize("link", ["/etc/passwd", "../../../../../../etc/passwd"])
def test_hardlink_to_host_file_is_refused(tmp_path: Path, link: str,
                                          host_etc_guard: None) -> None:
    target = tmp_path / "final"
    with pytest.raises(InvalidArgument, match="hardlink target"):
        unpack_layer(io.BytesIO(make_tar(hard("pw", link))), target)
    assert not target.exists() and os.listdir(tmp_path) == []


def test_hardlink_through_own_symlink_is_refused(dest: Path) -> None:
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(make_tar(sym("e", "/etc"), hard("pw", "e/passwd"))), dest)


@pytest.mark.parametrize("cut", [512 + 100, 512 * 3 + 7, 512 * 4])
def test_truncated_tar_is_refused_and_nothing_appears(tmp_path: Path, cut: int) -> None:
    data = make_tar(m("a", b"a" * 600), m("b", b"b"))[:cut]
    target = tmp_path / "final"
    with pytest.raises(InvalidArgument):
        unpack_layer(io.BytesIO(data), target)
    assert not target.exists() and os.listdir(tmp_path) == []


def test_unpack_layer_success_and_conflict(tmp_path: Path) -> None:
    target = tmp_path / "final"
    result = unpack_layer(io.BytesIO(make_tar(m("f", b"1"))), target)
    assert (target / "f").read_bytes() == b"1" and result.size == 1
    from dockyard.errors import Conflict
    with pytest.raises(Conflict):
        unpack_layer(io.BytesIO(make_tar(m("g", b"1"))), target)
    assert sorted(os.listdir(tmp_path)) == ["final"]


# -- docker cp into a container --------------------------------------------------------------
@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("container\n")
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("/usr/lib", root / "lib")
    os.symlink("/etc", root / "app")  # the destination itself is a symlink
    return root


def test_extract_into_container(rootfs: Path) -> None:
    result = extract_tar_into(io.BytesIO(make_tar(
        d("conf/"), m("conf/a.ini", b"a=1", mode=0o640, uid=1000), sym("conf/l", "a.ini"))),
        rootfs, dest="/app")
    assert (rootfs / "etc/conf/a.ini").read_bytes() == b"a=1"
    assert os.lstat(rootfs / "etc/conf/a.ini").st_uid == 1000
    assert os.readlink(rootfs / "etc/conf/l") == "a.ini"
    assert result.size == 3
    assert not [n for n in os.listdir(rootfs / "etc/conf") if n.startswith(".dockyard")]


def test_extract_replaces_atomically_and_owner_override(rootfs: Path) -> None:
    before = os.lstat(rootfs / "etc/passwd").st_ino
    extract_tar_into(io.BytesIO(make_tar(m("passwd", b"new\n", uid=5))), rootfs, dest="/etc",
                     owner=(0, 0))
    after = os.lstat(rootfs / "etc/passwd")
    assert after.st_ino != before  # renamed over, never rewritten in place
    assert (rootfs / "etc/passwd").read_bytes() == b"new\n" and after.st_uid == 0
    assert sorted(os.listdir(rootfs / "etc")) == ["passwd"]


def test_extract_is_confined_to_dest(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="escapes"):
        extract_tar_into(io.BytesIO(make_tar(m("../x", b"x"))), rootfs, dest="/etc")
    assert not (rootfs / "x").exists()


def test_extract_failure_leaves_no_half_file(rootfs: Path) -> None:
    data = make_tar(m("big", b"z" * 5000))[:2048]
    with pytest.raises(InvalidArgument):
        extract_tar_into(io.BytesIO(data), rootfs, dest="/etc")
    assert sorted(os.listdir(rootfs / "etc")) == ["passwd"]


def test_extract_dest_errors_and_no_overwrite(rootfs: Path) -> None:
    with pytest.raises(NotFound):
        extract_tar_into(io.BytesIO(make_tar(m("f"))), rootfs, dest="/nope")
    with pytest.raises(InvalidArgument, match="not a directory"):
        extract_tar_into(io.BytesIO(make_tar(m("f"))), rootfs, dest="/etc/passwd")
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        extract_tar_into(io.BytesIO(make_tar(m("etc", b"file"))), rootfs,
                         no_overwrite_dir_non_dir=True)
    assert (rootfs / "etc").is_dir()
