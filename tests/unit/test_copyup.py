"""Copy-up of image content into new volumes, and mountpoints made in the init layer."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.volume.copyup import copy_up, prepare_mountpoints, union_lstat, union_resolve
from dockyard.volume.specs import MountSpec, parse_bind, parse_mount

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, xattrs)")


def _image(root: Path) -> Path:
    """A rootfs with /srv/app: owned 1000:1001 mode 0750, files, links, a device, a fifo."""
    app = root / "srv" / "app"
    (app / "sub").mkdir(parents=True)
    (app / "file").write_text("hello")
    (app / "sub" / "deep").write_bytes(b"\0" * 70000)
    os.link(app / "file", app / "sub" / "hard")
    (app / "rel").symlink_to("file")
    (app / "abs").symlink_to("/etc/passwd")
    os.mkfifo(app / "fifo", 0o640)
    for path in (app / "file", app / "sub", app / "sub" / "deep", app / "fifo", app):
        os.chown(path, 1000, 1001)
    os.chown(app / "rel", 1002, 1003, follow_symlinks=False)
    os.chmod(app / "file", 0o4755)  # after chown, which clears set-id bits
    os.setxattr(app / "file", "user.note", b"kept")
    os.setxattr(app / "file", "trusted.overlay.opaque", b"y")
    os.chmod(app, 0o750)
    os.utime(app / "sub", ns=(1_000_000_000, 2_000_000_000))
    os.utime(app, ns=(3_000_000_000, 4_000_000_000))
    return root


@ROOT
def test_copy_preserves_everything(tmp_path: Path) -> None:
    rootfs = _image(tmp_path / "rootfs")
    data = tmp_path / "vol"
    data.mkdir()
    assert copy_up(rootfs, "/srv/app", data)
    top = data.stat()
    assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (1000, 1001, 0o750)
    assert top.st_mtime_ns == 4_000_000_000
    f = (data / "file").stat()
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (1000, 1001, 0o4755)
    assert (data / "file").read_text() == "hello"
    assert os.getxattr(data / "file", "user.note") == b"kept"
    assert "trusted.overlay.opaque" not in os.listxattr(data / "file")
    assert (data / "sub" / "deep").read_bytes() == b"\0" * 70000
    assert (data / "sub").stat().st_mtime_ns == 2_000_000_000
    assert (data / "sub" / "hard").stat().st_ino == f.st_ino  # a hard link stays one
    assert os.readlink(data / "rel") == "file"
    assert os.readlink(data / "abs") == "/etc/passwd"  # copied as a link, never followed
    rel = os.lstat(data / "rel")
    assert (rel.st_uid, rel.st_gid) == (1002, 1003)
    fifo = os.lstat(data / "fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o640


@ROOT
def test_device_nodes_are_recreated(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "dev2").mkdir(parents=True)
    os.mknod(rootfs / "dev2" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(rootfs / "dev2" / "null", 0o666)
    data = tmp_path / "vol"
    data.mkdir()
    assert copy_up(rootfs, "/dev2", data)
    info = os.lstat(data / "null")
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(info.st_mode) == 0o666


def test_non_empty_volume_is_left_alone(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    (rootfs / "data" / "from-image").write_text("x")
    data = tmp_path / "vol"
    data.mkdir()
    (data / "mine").write_text("y")
    os.chmod(data, 0o700)
    assert not copy_up(rootfs, "/data", data)
    assert os.listdir(data) == ["mine"] and stat.S_IMODE(data.stat().st_mode) == 0o700


def test_missing_or_file_destination_copies_nothing(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "afile").write_text("x")
    data = tmp_path / "vol"
    data.mkdir()
    assert not copy_up(rootfs, "/nothing/here", data)
    assert not copy_up(rootfs, "/afile", data)
    assert os.listdir(data) == []


def test_empty_image_dir_gives_its_mode(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "tmp").mkdir(parents=True)
    os.chmod(rootfs / "tmp", 0o1777)
    data = tmp_path / "vol"
    data.mkdir()
    assert copy_up(rootfs, "/tmp", data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o1777


def test_symlinks_resolve_inside_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host data")
    rootfs = tmp_path / "rootfs"
    (rootfs / "real").mkdir(parents=True)
    (rootfs / "real" / "inside").write_text("image data")
    (rootfs / "link").symlink_to(str(outside))  # absolute: means /<outside> inside the rootfs
    (rootfs / "up").symlink_to("../../outside")
    (rootfs / "ok").symlink_to("/real")
    data = tmp_path / "vol"
    data.mkdir()
    assert not copy_up(rootfs, "/link", data)
    assert not copy_up(rootfs, "/up", data)
    assert os.listdir(data) == []
    assert copy_up(rootfs, "/ok", data)
    assert os.listdir(data) == ["inside"]


def test_nocopy_and_volumes_from_skip_copy_up() -> None:
    assert parse_bind("data:/x").copy_up
    assert parse_bind("/x").copy_up
    assert not parse_bind("data:/x:nocopy").copy_up
    assert not parse_mount({"Type": "volume", "Source": "data", "Target": "/x",
                            "VolumeOptions": {"NoCopy": True}}).copy_up
    assert not MountSpec("volume", "/x", volume_name="v", origin="volumes-from").copy_up
    assert not MountSpec("bind", "/x", "/h").copy_up
    assert not MountSpec("tmpfs", "/x").copy_up


# -- the merged view of layers, and mountpoints ---------------------------------------------
@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, list[Path]]:
    """init (empty) over upper-layer over base-layer."""
    init, top, base = tmp_path / "init", tmp_path / "top", tmp_path / "base"
    for layer in (init, top, base):
        layer.mkdir()
    (base / "var" / "lib" / "db").mkdir(parents=True)
    os.chmod(base / "var" / "lib" / "db", 0o700)
    os.utime(base / "var" / "lib", ns=(5_000_000_000, 6_000_000_000))
    (base / "gone").mkdir()
    (base / "etc").mkdir()
    (base / "etc" / "conf").write_text("x")
    (base / "run").mkdir()
    (top / "var").mkdir()
    (top / "var" / "run").symlink_to("/run")
    (top / "data").symlink_to("srv/data")
    return init, [top, base]


def test_union_lookup(layers: tuple[Path, list[Path]]) -> None:
    init, lowers = layers
    stack = [init, *lowers]
    hit = union_lstat(stack, ["var", "lib", "db"])
    assert hit is not None and stat.S_IMODE(hit[0].st_mode) == 0o700
    assert union_lstat(stack, ["var", "nothing"]) is None
    assert union_resolve(stack, "/var/run/x") == ["run", "x"]
    assert union_resolve(stack, "/data/../etc") == ["srv", "etc"]  # like the kernel: .. after
    assert union_resolve(stack, "/data/./") == ["srv", "data"]


@ROOT
def test_whiteouts_and_opaque_dirs(layers: tuple[Path, list[Path]]) -> None:
    init, (top, base) = layers
    os.mknod(top / "gone", stat.S_IFCHR, 0)  # a whiteout
    (top / "etc").mkdir()
    os.setxattr(top / "etc", "trusted.overlay.opaque", b"y")
    stack = [init, top, base]
    assert union_lstat(stack, ["gone"]) is None
    assert union_lstat(stack, ["etc"]) is not None
    assert union_lstat(stack, ["etc", "conf"]) is None  # hidden by the opaque dir


@ROOT
def test_prepare_mountpoints(layers: tuple[Path, list[Path]], tmp_path: Path) -> None:
    init, lowers = layers
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("x")
    specs = [MountSpec("volume", "/var/lib/db"),  # exists in the image: nothing to make
             MountSpec("volume", "/var/lib/new/deep"),
             MountSpec("bind", "/var/run/sock", str(hostfile)),  # through the symlink
             MountSpec("tmpfs", "/cache"),
             MountSpec("volume", "/data")]  # a dangling symlink: made where it points
    made = prepare_mountpoints(init, lowers, specs)
    assert made == ["/var/lib/new/deep", "/run/sock", "/cache", "/srv/data"]
    assert (init / "var" / "lib" / "new" / "deep").is_dir()
    assert (init / "run" / "sock").is_file()
    assert (init / "srv" / "data").is_dir() and (init / "cache").is_dir()
    lib = (init / "var" / "lib").stat()  # an image dir shadowed by init keeps its attributes
    assert lib.st_mtime_ns == 6_000_000_000 and stat.S_IMODE(lib.st_mode) == 0o755
    assert prepare_mountpoints(init, lowers, specs) == []  # idempotent


def test_volume_over_a_file_is_refused(layers: tuple[Path, list[Path]]) -> None:
    init, lowers = layers
    with pytest.raises(InvalidArgument) as info:
        prepare_mountpoints(init, lowers, [MountSpec("volume", "/etc/conf")])
    assert str(info.value) == "cannot mount volume over existing file, file exists /etc/conf"
    assert prepare_mountpoints(init, lowers, [MountSpec("bind", "/etc/conf", "/dev/null")]) == []


@ROOT
@pytest.mark.skipif(not os.path.exists("/proc/filesystems")
                    or "overlay" not in Path("/proc/filesystems").read_text(),
                    reason="needs overlayfs")
def test_through_a_real_overlay(layers: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Mountpoints made in init show in the merged rootfs, never in the upper dir (so not in
    ``docker diff``/``commit``); copy-up reads the merged view."""
    from dockyard.diff.changes import overlay_changes
    from dockyard.host import mounts

    init, lowers = layers
    (lowers[1] / "var" / "lib" / "db" / "table").write_text("rows")
    prepare_mountpoints(init, lowers, [MountSpec("volume", "/var/lib/db"),
                                       MountSpec("volume", "/var/run/app")])
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for path in (upper, work, merged):
        path.mkdir()
    mounts.mount_overlay([init, *lowers], upper, work, merged)
    try:
        assert (merged / "run" / "app").is_dir()  # where /var/run/app lands inside
        assert os.readlink(merged / "var" / "run") == "/run"  # the image's symlink is intact
        data = tmp_path / "vol"
        data.mkdir()
        assert copy_up(merged, "/var/lib/db", data)
        assert (data / "table").read_text() == "rows"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        mounts.unmount(merged, detach=False)
    assert os.listdir(upper) == []
    assert overlay_changes(upper, [init, *lowers]) == []
