"""The local volume driver: create/get/list/remove/prune, in-use and dangling, names, options."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.host import mounts
from dockyard.metadata.db import Database
from dockyard.volume.fsutil import is_mounted, mount_points
from dockyard.volume.options import parse_options
from dockyard.volume.store import ANONYMOUS_LABEL, VolumeStore

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")
USERS: dict[str, list[str]] = {}


def in_use_by(name: str) -> list[str]:
    return USERS.get(name, [])


def _unmount_below(path: Path) -> None:
    for point in sorted(mount_points(), key=len, reverse=True):
        if point.startswith(f"{os.path.realpath(path)}/"):
            mounts.unmount(Path(point))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VolumeStore]:
    USERS.clear()
    db = Database(tmp_path / "d.db")
    vs = VolumeStore(db, tmp_path / "volumes")
    try:
        yield vs
    finally:
        _unmount_below(tmp_path)
        db.close()
        USERS.clear()


def test_create_get_inspect(store: VolumeStore) -> None:
    vol = store.create("data", labels={"a": "b"})
    assert vol.mountpoint == store.root / "data" / "_data"
    assert vol.mountpoint.is_dir() and oct(vol.mountpoint.stat().st_mode & 0o7777) == "0o755"
    assert store.get("data") == vol
    info = vol.inspect()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.pop("CreatedAt"))
    assert info == {"Driver": "local", "Labels": {"a": "b"}, "Mountpoint": str(vol.mountpoint),
                    "Name": "data", "Options": None, "Scope": "local"}
    assert not vol.anonymous
    assert os.listdir(store.root) == ["data"] or sorted(os.listdir(store.root)) == [".tmp",
                                                                                   "data"]


def test_create_existing_returns_it_unchanged(store: VolumeStore) -> None:
    first = store.create("data", labels={"a": "b"})
    (first.mountpoint / "f").write_text("x")
    again = store.create("data", labels={"c": "d"}, options={"bogus": "1"})
    assert again == first and (again.mountpoint / "f").read_text() == "x"


def test_anonymous_volume(store: VolumeStore) -> None:
    vol = store.create()
    assert re.fullmatch(r"[0-9a-f]{64}", vol.name)
    assert vol.anonymous and vol.labels == {ANONYMOUS_LABEL: ""}
    named_anon = store.create("abc", anonymous=True)
    assert named_anon.inspect()["Labels"] == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("name,message", [
    ("a", ("create a: volume name is too short, names should be at least two alphanumeric "
          "characters")),
    ("-ab", ('create -ab: "-ab" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path")),
    ("a/b", None), (".x", None), ("x y", None), ("..", None), ("é1", None),
])
def test_invalid_names(store: VolumeStore, name: str, message: str | None) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.create(name)
    assert str(info.value) == (message or
                               f'create {name}: "{name}" includes invalid characters for a local '
                               'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If '
                               "you intended to pass a host directory, use absolute path")
    assert store.all() == []


@pytest.mark.parametrize("name", ["ab", "a.b", "A_b-c.d", "0x", "x" * 200])
def test_valid_names(store: VolumeStore, name: str) -> None:
    assert store.create(name).name == name


def test_unknown_driver(store: VolumeStore) -> None:
    with pytest.raises(NotFound) as info:
        store.create("data", driver="flocker")
    assert str(info.value) == ('create data: error looking up volume plugin flocker: plugin '
                               '"flocker" not found')


def test_get_missing(store: VolumeStore) -> None:
    with pytest.raises(NotFound) as info:
        store.get("nope")
    assert str(info.value) == "get nope: no such volume"


def test_remove(store: VolumeStore) -> None:
    vol = store.create("data")
    (vol.mountpoint / "sub").mkdir()
    (vol.mountpoint / "sub" / "f").write_text("x")
    store.remove("data")
    assert store.find("data") is None and not (store.root / "data").exists()
    assert list((store.root / ".trash").iterdir()) == []
    with pytest.raises(NotFound, match="^get data: no such volume$"):
        store.remove("data")
    store.remove("data", force=True)  # -f: missing is fine


def test_remove_in_use(store: VolumeStore) -> None:
    store.create("data")
    USERS["data"] = ["c1" * 32, "c2" * 32]
    with pytest.raises(Conflict) as info:
        store.remove("data", force=True, in_use_by=in_use_by)
    assert str(info.value) == f"remove data: volume is in use - [{'c1' * 32}, {'c2' * 32}]"
    assert store.find("data") is not None


def test_mount_refs_count_as_use(store: VolumeStore) -> None:
    store.create("data")
    assert store.mount("data", "copyup") == store.data_path("data")
    with pytest.raises(Conflict, match=r"in use - \[copyup\]"):
        store.remove("data")
    store.unmount("data", "copyup")
    store.unmount("data", "copyup")  # idempotent
    store.remove("data")


def test_list_filters(store: VolumeStore) -> None:
    store.create("alpha", labels={"env": "prod", "tier": "db"})
    store.create("beta", labels={"env": "dev"})
    anon = store.create().name
    USERS["alpha"] = ["c1"]

    def names(**filters: list[str]) -> list[str]:
        return [v.name for v in store.list(filters, in_use_by)]

    assert names() == sorted(["alpha", "beta", anon])
    assert names(dangling=["true"]) == sorted(["beta", anon])
    assert names(dangling=["1"]) == sorted(["beta", anon])
    assert names(dangling=["false"]) == ["alpha"]
    assert names(name=["alp"]) == ["alpha"]
    assert names(name=["^b.t"]) == ["beta"]
    assert names(name=["alpha", "beta"]) == ["alpha", "beta"]
    assert names(label=["env"]) == ["alpha", "beta"]
    assert names(label=["env=prod"]) == ["alpha"]
    assert names(label=["env", "tier=db"]) == ["alpha"]
    assert names(label=[ANONYMOUS_LABEL]) == [anon]
    assert names(driver=["local"]) == sorted(["alpha", "beta", anon])
    assert names(driver=["other"]) == []
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'dangling=\[maybe\]'$"):
        names(dangling=["maybe"])
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'dangling=\[true false\]'$"):
        names(dangling=["true", "false"])
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'until'$"):
        names(until=["1h"])


def test_prune_anonymous_only_unless_all(store: VolumeStore) -> None:
    named = store.create("named")
    anon = store.create()
    used = store.create()
    (anon.mountpoint / "f").write_bytes(b"x" * 1000)
    (named.mountpoint / "f").write_bytes(b"y" * 10)
    USERS[used.name] = ["c1"]
    report = store.prune({}, in_use_by)
    assert report.deleted == (anon.name,) and report.reclaimed == 1000
    report = store.prune({"all": ["true"]}, in_use_by)
    assert report.deleted == ("named",) and report.reclaimed == 10
    assert [v.name for v in store.all()] == [used.name]


def test_prune_filters(store: VolumeStore) -> None:
    store.create("keep", labels={"keep": "1"})
    store.create("drop", labels={"x": "y"})
    store.create("tmpfs1", options={"type": "tmpfs", "device": "tmpfs"})
    report = store.prune({"all": ["1"], "label!": ["keep"]})
    assert report.deleted == ("drop",)  # volumes with mount options are never pruned
    assert store.prune({"all": ["0"]}).deleted == ()
    report = store.prune({"all": ["true"], "label": ["keep=1"]})
    assert report.deleted == ("keep",)
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'dangling'$"):
        store.prune({"dangling": ["true"]})
    with pytest.raises(InvalidArgument) as info:
        store.prune({"all": ["yes"]})
    assert str(info.value) == ("invalid filter 'all': strconv.ParseBool: parsing \"yes\": "
                               "invalid syntax")


def test_usage(store: VolumeStore) -> None:
    vol = store.create("data")
    (vol.mountpoint / "a").write_bytes(b"x" * 100)
    os.link(vol.mountpoint / "a", vol.mountpoint / "hard")  # counted once
    (vol.mountpoint / "d").mkdir()
    (vol.mountpoint / "d" / "b").write_bytes(b"x" * 20)
    store.create("opts", options={"type": "tmpfs", "device": "tmpfs"})
    USERS["data"] = ["c1", "c2"]
    [row] = store.usage(in_use_by)
    assert (row.volume.name, row.size, row.ref_count) == ("data", 120, 2)


@pytest.mark.parametrize("opts,message", [
    ({"foo": "bar"}, 'create v1: invalid option: "foo"'),
    ({"type": "tmpfs"}, 'create v1: missing required option: "device"'),
    ({"device": "tmpfs"}, 'create v1: missing required option: "type"'),
    ({"o": "size=1m", "device": "tmpfs"}, 'create v1: missing required option: "type"'),
    ({"size": "10m"}, "create v1: quota size requested but no quota support"),
    ({"size": "lots"}, "create v1: invalid size: 'lots'"),
    ({"type": "nfs", "device": ":/export", "o": "addr=1.2.3.4"},
     ('create v1: unsupported local volume type "nfs" (o="addr=1.2.3.4"): dockyard mounts '
     "type=tmpfs, or binds with type=none,o=bind,device=/path")),
    ({"type": "none", "device": "/x"},
     ('create v1: unsupported local volume type "none" (o=""): dockyard mounts type=tmpfs, or '
     "binds with type=none,o=bind,device=/path")),
    ({"type": "none", "o": "bind", "device": "rel"},
     "create v1: bind device must be an absolute path: rel"),
])
def test_option_validation(store: VolumeStore, opts: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.create("v1", options=opts)
    assert str(info.value) == message
    assert store.find("v1") is None and not (store.root / "v1").exists()


def test_parse_options() -> None:
    assert parse_options("v", {}) is None
    assert parse_options("v", {"size": "0"}) is None
    tmpfs = parse_options("v", {"type": "tmpfs", "device": "tmpfs",
                                "o": "size=100m,uid=1000,noexec,nosuid"})
    assert tmpfs is not None and (tmpfs.fstype, tmpfs.data, tmpfs.bind) == (
        "tmpfs", "size=100m,uid=1000", False)
    bind = parse_options("v", {"type": "none", "o": "bind,ro", "device": "/srv"})
    assert bind is not None and bind.bind and bind.remount_flags & mounts.MS_RDONLY


@ROOT
def test_tmpfs_volume_mounted_while_used(store: VolumeStore) -> None:
    vol = store.create("t1", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    assert vol.inspect()["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert not is_mounted(vol.mountpoint)
    assert store.mount("t1", "c1") == vol.mountpoint
    assert is_mounted(vol.mountpoint)
    (vol.mountpoint / "f").write_text("shared")
    store.mount("t1", "c2")
    store.unmount("t1", "c1")
    assert (vol.mountpoint / "f").read_text() == "shared"  # c2 still holds it
    store.unmount("t1", "c2")
    assert not is_mounted(vol.mountpoint)
    assert not (vol.mountpoint / "f").exists()


@ROOT
def test_tmpfs_size_is_enforced(store: VolumeStore) -> None:
    store.create("t1", options={"type": "tmpfs", "device": "tmpfs", "o": "size=64k"})
    data = store.mount("t1", "c1")
    with pytest.raises(OSError):
        (data / "big").write_bytes(b"x" * 256 * 1024)
    store.unmount("t1", "c1")


@ROOT
def test_bind_volume(store: VolumeStore, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("precious")
    store.create("b1", options={"type": "none", "o": "bind,ro", "device": str(host)})
    data = store.mount("b1", "c1")
    store.mount("b1", "c2")  # a second user adopts the mount: binds do not stack
    assert mount_points().count(os.path.realpath(data)) == 1
    store.unmount("b1", "c2")
    assert (data / "keep").read_text() == "precious"
    with pytest.raises(OSError):
        (data / "new").write_text("x")  # ro applied by the remount
    with pytest.raises(Conflict):
        store.remove("b1")
    store.unmount("b1", "c1")
    store.remove("b1")
    assert (host / "keep").read_text() == "precious"  # removal never touches the host dir


@ROOT
def test_bind_volume_missing_device(store: VolumeStore, tmp_path: Path) -> None:
    store.create("b1", options={"type": "none", "o": "bind", "device": str(tmp_path / "no")})
    with pytest.raises(Exception, match="failed to mount local volume"):
        store.mount("b1", "c1")
    assert store.active("b1") == frozenset()


@ROOT
def test_remove_and_sweep_never_empty_a_bound_host_dir(store: VolumeStore,
                                                       tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("precious")
    store.create("b1", options={"type": "none", "o": "bind", "device": str(host)})
    store.mount("b1", "c1")
    with store.db.tx() as cur:  # a crash after the row went, before the directory did
        cur.execute("DELETE FROM volumes WHERE name='b1'")
    restarted = VolumeStore(store.db, store.root)
    assert restarted.sweep() == ["b1"]
    assert not (store.root / "b1").exists()
    assert (host / "keep").read_text() == "precious"


@ROOT
def test_sweep_adopts_and_unmounts(store: VolumeStore) -> None:
    store.create("t1", options={"type": "tmpfs", "device": "tmpfs"})
    store.create("t2", options={"type": "tmpfs", "device": "tmpfs"})
    store.mount("t1", "c1")
    store.mount("t2", "c2")
    (store.data_path("t1") / "f").write_text("kept")
    restarted = VolumeStore(store.db, store.root)  # a daemon restart: refs are gone
    restarted.mount("t1", "c1")  # recovery re-takes the running container's volumes
    assert restarted.sweep() == []
    assert (store.data_path("t1") / "f").read_text() == "kept"  # adopted, not remounted
    assert not is_mounted(store.data_path("t2"))


def test_sweep_removes_orphans_and_leftovers(store: VolumeStore) -> None:
    store.create("data")
    (store.root / "orphan" / "_data").mkdir(parents=True)
    (store.root / "orphan" / "_data" / "f").write_text("x")
    (store.root / ".tmp" / "half-made" / "_data").mkdir(parents=True)
    (store.root / ".trash").mkdir(exist_ok=True)
    (store.root / ".trash" / "gone").write_text("x")
    assert store.sweep() == ["orphan"]
    assert sorted(os.listdir(store.root)) == [".tmp", ".trash", "data"]
    assert os.listdir(store.root / ".tmp") == os.listdir(store.root / ".trash") == []


def test_create_replaces_an_orphan_directory(store: VolumeStore) -> None:
    (store.root / "data" / "_data").mkdir(parents=True)
    (store.root / "data" / "_data" / "stale").write_text("x")
    vol = store.create("data")
    assert os.listdir(vol.mountpoint) == []


def test_mount_heals_a_missing_data_dir(store: VolumeStore) -> None:
    vol = store.create("data")
    vol.mountpoint.rmdir()
    assert store.mount("data", "c1").is_dir()
    store.unmount("data", "c1")
