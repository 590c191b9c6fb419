"""Mount requests → MountSpecs: Docker's accepted and rejected -v / --mount / --tmpfs forms."""
from __future__ import annotations

from typing import Any

import pytest

from dockyard.cli.runparse import parse_mount as cli_mount
from dockyard.errors import InvalidArgument
from dockyard.volume import specs as S
from dockyard.volume.specs import MountSpec
from dockyard.volume.store import Volume

EXISTS = {"/src", "/hostPath", "/etc/hosts"}


def _exists(path: str) -> bool:
    return path in EXISTS


# -- -v / HostConfig.Binds --------------------------------------------------------------------
ACCEPTED_BINDS = [
    # raw, type, source, destination, volume name, read-only, propagation, mode, nocopy
    ("/home", "volume", "", "/home", "", False, "", "z", False),
    ("/home:/home", "bind", "/home", "/home", "", False, "rprivate", "", False),
    ("/home:/something/else", "bind", "/home", "/something/else", "", False, "rprivate", "",
     False),
    ("/with space", "volume", "", "/with space", "", False, "", "z", False),
    ("/home:/with space", "bind", "/home", "/with space", "", False, "rprivate", "", False),
    ("relative:/absolute-path", "volume", "", "/absolute-path", "relative", False, "", "z",
     False),
    ("hostPath:/containerPath:ro", "volume", "", "/containerPath", "hostPath", True, "", "ro",
     False),
    ("/hostPath:/containerPath:rw", "bind", "/hostPath", "/containerPath", "", False,
     "rprivate", "rw", False),
    ("/rw:/ro", "bind", "/rw", "/ro", "", False, "rprivate", "", False),
    ("/h:/c:shared", "bind", "/h", "/c", "", False, "shared", "shared", False),
    ("/h:/c:rslave", "bind", "/h", "/c", "", False, "rslave", "rslave", False),
    ("/h:/c:ro,z,shared", "bind", "/h", "/c", "", True, "shared", "ro,z,shared", False),
    ("/h:/c:Z,ro,slave", "bind", "/h", "/c", "", True, "slave", "Z,ro,slave", False),
    ("/h:/c:ro,Z,rprivate", "bind", "/h", "/c", "", True, "rprivate", "ro,Z,rprivate", False),
    ("/h:/c:cached", "bind", "/h", "/c", "", False, "rprivate", "cached", False),
    ("data:/ctr:rw,nocopy", "volume", "", "/ctr", "data", False, "", "rw,nocopy", True),
    ("data:/ctr:nocopy,ro", "volume", "", "/ctr", "data", True, "", "nocopy,ro", True),
    ("data:/ctr:z", "volume", "", "/ctr", "data", False, "", "z", False),
    ("/a/../b/:/c/./d/", "bind", "/b", "/c/d", "", False, "rprivate", "", False),
]


@pytest.mark.parametrize("raw,kind,source,dest,name,ro,prop,mode,nocopy", ACCEPTED_BINDS)
def test_accepted_binds(raw: str, kind: str, source: str, dest: str, name: str, ro: bool,
                        prop: str, mode: str, nocopy: bool) -> None:
    spec = S.parse_bind(raw)
    assert (spec.type, spec.source, spec.destination, spec.volume_name, spec.read_only,
            spec.propagation, spec.mode, spec.nocopy) == (kind, source, dest, name, ro, prop,
                                                          mode, nocopy)
    assert spec.anonymous == (kind == "volume" and not name)
    assert spec.driver == ("local" if kind == "volume" else "")
    assert spec.create_source == (kind == "bind")  # -v makes a missing host dir; --mount not


REJECTED_BINDS = [
    ("", "invalid volume specification: ''"),
    (":", "invalid volume specification: ':'"),
    ("/tmp:", "invalid volume specification: '/tmp:'"),
    (":test", "invalid volume specification: ':test'"),
    (":/test", "invalid volume specification: ':/test'"),
    ("tmp:", "invalid volume specification: 'tmp:'"),
    ("::", "invalid volume specification: '::'"),
    (":::", "invalid volume specification: ':::'"),
    ("/tmp:::", "invalid volume specification: '/tmp:::'"),
    ("/a:/b:ro:x", "invalid volume specification: '/a:/b:ro:x'"),
    ("/path:rw", "invalid volume specification: '/path:rw'"),
    ("/path:ro", "invalid volume specification: '/path:ro'"),
    ("path:ro", "invalid volume specification: 'path:ro'"),
    ("/path:shared", "invalid volume specification: '/path:shared'"),
    ("/path:/path:sw", "invalid mode: sw"),
    ("/path:/path:rwz", "invalid mode: rwz"),
    ("/path:/path:ro,rw", "invalid mode: ro,rw"),
    ("/path:/path:ro,rshared,rslave", "invalid mode: ro,rshared,rslave"),
    ("/path:/path:ro,z,rshared,rslave", "invalid mode: ro,z,rshared,rslave"),
    ("/path:/path:z,Z", "invalid mode: z,Z"),
    ("./", ("invalid volume specification: './': invalid mount config for type \"volume\": "
           "invalid mount path: './' mount path must be absolute")),
    ("../", ("invalid volume specification: '../': invalid mount config for type \"volume\": "
            "invalid mount path: '../' mount path must be absolute")),
    ("/:../", ("invalid volume specification: '/:../': invalid mount config for type \"bind\": "
              "invalid mount path: '../' mount path must be absolute")),
    ("/:path", ("invalid volume specification: '/:path': invalid mount config for type "
               "\"bind\": invalid mount path: 'path' mount path must be absolute")),
    ("/x:/", ("invalid volume specification: '/x:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'")),
    ("/x:/ctr:nocopy", ("invalid volume specification: '/x:/ctr:nocopy': invalid mount config "
                       "for type \"bind\": field VolumeOptions must not be specified")),
    ("name:/absolute-path:rshared", ("invalid volume specification: "
     "'name:/absolute-path:rshared': invalid mount config for type \"volume\": "
     "field BindOptions must not be specified")),
    ("name:/absolute-path:rprivate", ("invalid volume specification: "
     "'name:/absolute-path:rprivate': invalid mount config for type \"volume\": "
     "field BindOptions must not be specified")),
    ("a:/x", ("create a: volume name is too short, names should be at least two alphanumeric "
             "characters")),
    ("./data:/x", ('create ./data: "./data" includes invalid characters for a local volume name, '
                  'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                  "directory, use absolute path")),
    ("local/name:/x", ('create local/name: "local/name" includes invalid characters for a local '
                      'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended '
                      "to pass a host directory, use absolute path")),
]


@pytest.mark.parametrize("raw,message", REJECTED_BINDS)
def test_rejected_binds(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        S.parse_bind(raw)
    assert str(info.value) == message


def test_volume_driver_applies_to_named_volumes_only() -> None:
    assert S.parse_bind("data:/x", "flocker").driver == "flocker"
    assert S.parse_bind("/h:/x", "flocker").driver == ""


# -- --mount / HostConfig.Mounts --------------------------------------------------------------
ACCEPTED_MOUNTS: list[tuple[str, dict[str, Any]]] = [
    ("type=bind,src=/src,dst=/dst", {"type": "bind", "source": "/src", "destination": "/dst",
                                         "propagation": "rprivate", "read_only": False, "mode": ""}),
    ("type=bind,source=/src,target=/dst,readonly,bind-propagation=rshared",
     {"source": "/src", "read_only": True, "propagation": "rshared"}),
    ("type=bind,src=/src,destination=/dst/,ro=true", {"destination": "/dst", "read_only": True}),
    ("type=bind,src=/src,dst=/dst,bind-nonrecursive", {"non_recursive": True}),
    ("type=volume,src=data,dst=/data", {"type": "volume", "volume_name": "data", "mode": "z",
                                            "anonymous": False, "nocopy": False, "driver": "local",
                                            "propagation": ""}),
    ("type=volume,dst=/data", {"volume_name": "", "anonymous": True}),
    ("dst=/data", {"type": "volume", "anonymous": True}),
    ("type=volume,src=data,dst=/data,volume-nocopy", {"nocopy": True}),
    ("type=volume,src=data,dst=/data,volume-nocopy=false", {"nocopy": False}),
    (("type=volume,src=data,dst=/data,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
     "volume-label=a=b"), {"volume_options": (("device", "tmpfs"), ("type", "tmpfs")),
                             "volume_labels": (("a", "b"),)}),
    ("type=volume,src=data,dst=/data,volume-subpath=sub/dir", {"subpath": "sub/dir"}),
    ("type=tmpfs,dst=/run", {"type": "tmpfs", "options": (), "origin": "mounts"}),
    ("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
     {"options": ("mode=1770", "size=64m")}),
    ("type=tmpfs,dst=/run,tmpfs-size=1536k,readonly", {"options": ("ro", "size=1536k"),
                                                           "read_only": True}),
    ("type=tmpfs,dst=/run,tmpfs-size=1g", {"options": ("size=1g",)}),
]


@pytest.mark.parametrize("flag,expected", ACCEPTED_MOUNTS)
def test_accepted_mounts(flag: str, expected: dict[str, Any]) -> None:
    spec = S.parse_mount(cli_mount(flag), _exists)
    for key, value in expected.items():
        assert getattr(spec, key) == value, key


REJECTED_MOUNTS: list[tuple[dict[str, Any], str]] = [
    ({"Type": "bind", "Source": "/src"},
     'invalid mount config for type "bind": field Target must not be empty'),
    ({"Type": "bind", "Target": "/dst"},
     'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "/nope", "Target": "/dst"},
     'invalid mount config for type "bind": bind source path does not exist: /nope'),
    ({"Type": "bind", "Source": "rel", "Target": "/dst"},
     ("invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be "
     "absolute")),
    ({"Type": "bind", "Source": "/src", "Target": "/"},
     "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Source": "/src", "Target": "dst"},
     ("invalid mount config for type \"bind\": invalid mount path: 'dst' mount path must be "
     "absolute")),
    ({"Type": "bind", "Source": "/src", "Target": "/d", "BindOptions": {"Propagation": "x"}},
     'invalid mount config for type "bind": invalid propagation mode: x'),
    ({"Type": "bind", "Source": "/src", "Target": "/d", "VolumeOptions": {"NoCopy": True}},
     'invalid mount config for type "bind": field VolumeOptions must not be specified'),
    ({"Type": "volume", "Source": "v1", "Target": "/d", "BindOptions": {}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "volume", "Target": "/d", "ReadOnly": True},
     ('invalid mount config for type "volume": must not set ReadOnly mode when using '
     "anonymous volumes")),
    ({"Type": "volume", "Target": "/d", "VolumeOptions": {"Subpath": "x"}},
     ('invalid mount config for type "volume": must not set Subpath when using anonymous '
     "volumes")),
    ({"Type": "volume", "Source": "v1", "Target": "/d", "VolumeOptions": {"Subpath": "../x"}},
     ('invalid mount config for type "volume": subpath must be a relative path within the '
     "volume")),
    ({"Type": "volume", "Source": "v1", "Target": "/d", "VolumeOptions": {"Subpath": "/x"}},
     ('invalid mount config for type "volume": subpath must be a relative path within the '
     "volume")),
    ({"Type": "tmpfs", "Source": "x", "Target": "/d"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "tmpfs", "Target": "/d", "BindOptions": {"Propagation": "shared"}},
     'invalid mount config for type "tmpfs": field BindOptions must not be specified'),
    ({"Type": "tmpfs", "Target": "/d", "TmpfsOptions": {"Options": [["nosuid"]]}},
     'invalid mount config for type "tmpfs": invalid option: nosuid'),
    ({"Type": "npipe", "Source": "x", "Target": "/d"},
     'invalid mount config for type "npipe": mount type unknown'),
    ({"Target": "/d"}, 'invalid mount config for type "": mount type unknown'),
]


@pytest.mark.parametrize("mount,message", REJECTED_MOUNTS)
def test_rejected_mounts(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        S.parse_mount(mount, _exists)
    assert str(info.value) == message


def test_bind_create_mountpoint_skips_the_existence_check() -> None:
    spec = S.parse_mount({"Type": "bind", "Source": "/nope", "Target": "/d",
                          "BindOptions": {"CreateMountpoint": True}}, _exists)
    assert spec.create_source and spec.source == "/nope"


def test_tmpfs_exec_options() -> None:
    spec = S.parse_mount({"Type": "tmpfs", "Target": "/d",
                          "TmpfsOptions": {"Options": [["exec"]], "SizeBytes": 1000}})
    assert spec.options == ("size=1000", "exec")


# -- whole containers -------------------------------------------------------------------------
def _mounts(hc: dict[str, Any], image: tuple[str, ...] = (), others: Any = None
            ) -> list[MountSpec]:
    return S.container_mounts(hc, image, others, _exists)


def test_tmpfs_map() -> None:
    [spec] = _mounts({"Tmpfs": {"/run/": "size=64m,exec"}})
    assert (spec.type, spec.destination, spec.options, spec.origin) == (
        "tmpfs", "/run", ("size=64m", "exec"), "tmpfs")


@pytest.mark.parametrize("dest,message", [
    ("/", "invalid specification: destination can't be '/'"),
    ("run", "invalid mount path: 'run' mount path must be absolute"),
])
def test_tmpfs_map_rejects(dest: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        _mounts({"Tmpfs": {dest: ""}})


@pytest.mark.parametrize("hc,dest", [
    ({"Binds": ["/src:/x", "v1:/x/"]}, "/x"),
    ({"Binds": ["/src:/x"], "Tmpfs": {"/x": ""}}, "/x"),
    ({"Binds": ["/src:/x"], "Mounts": [{"Type": "volume", "Target": "/x"}]}, "/x"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/x"}, {"Type": "volume", "Target": "/x/"}]},
     "/x/"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/x"}], "Tmpfs": {"/x": ""}}, "/x"),
])
def test_duplicate_mount_points(hc: dict[str, Any], dest: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _mounts(hc)
    assert str(info.value) == f"Duplicate mount point: {dest}"


def test_image_volumes_are_anonymous_unless_the_path_is_taken() -> None:
    specs = _mounts({"Binds": ["v1:/data"], "Tmpfs": {"/run": ""}},
                    ("/data", "/run", "/cache/", "/logs"))
    by_dest = {s.destination: s for s in specs}
    assert by_dest["/data"].volume_name == "v1"
    assert by_dest["/run"].type == "tmpfs"
    for dest in ("/cache", "/logs"):
        assert by_dest[dest].anonymous and by_dest[dest].origin == "image"
        assert by_dest[dest].mode == "" and by_dest[dest].copy_up


def test_image_volume_relative_path_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="invalid volume specification: 'data'"):
        _mounts({}, ("data",))


def _other() -> list[MountSpec]:
    return [MountSpec("bind", "/a", "/src", propagation="rprivate"),
            MountSpec("volume", "/v", "/vols/v1/_data", volume_name="v1", driver="local",
                      mode="z"),
            MountSpec("volume", "/ro", "/vols/v2/_data", read_only=True, volume_name="v2",
                      driver="local", anonymous=True),
            MountSpec("tmpfs", "/run", origin="tmpfs")]


@pytest.mark.parametrize("spec,rw", [("other", True), ("other:rw", True), ("other:ro", False),
                                     ("other:ro,z", False)])
def test_volumes_from(spec: str, rw: bool) -> None:
    asked: list[str] = []

    def resolve(name: str) -> list[MountSpec]:
        asked.append(name)
        return _other()

    specs = _mounts({"VolumesFrom": [spec], "Binds": ["/src:/a:ro"]}, ("/v",), resolve)
    assert asked == ["other"]
    by_dest = {s.destination: s for s in specs}
    assert set(by_dest) == {"/a", "/v", "/ro"}  # the other's --tmpfs is not inherited
    assert by_dest["/a"].origin == "binds" and by_dest["/a"].read_only  # replaced, no error
    assert by_dest["/v"].origin == "volumes-from" and by_dest["/v"].read_only is not rw
    assert by_dest["/v"].mode == "" and not by_dest["/v"].copy_up
    assert by_dest["/ro"].read_only


@pytest.mark.parametrize("spec,message", [
    ("", "volumes-from specification cannot be an empty string"),
    ("other:xyz", "invalid mode: xyz"),
    ("other:rshared", "invalid mode: rshared"),
    ("other:nocopy", "invalid mode: nocopy"),
])
def test_volumes_from_rejects(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        S.parse_volumes_from(spec)
    assert str(info.value) == message


# -- outputs ----------------------------------------------------------------------------------
def _volume(name: str) -> Volume:
    from pathlib import Path
    return Volume(name, "local", Path(f"/var/lib/dockyard/volumes/{name}/_data"),
                  "2024-01-01T00:00:00Z")


def test_runtime_mounts_and_inspect() -> None:
    specs = _mounts({"Binds": ["/src:/b:ro", "v1:/v", "/src:/s:rshared"],
                     "Mounts": [{"Type": "bind", "Source": "/src", "Target": "/n",
                                 "BindOptions": {"NonRecursive": True}},
                                {"Type": "tmpfs", "Target": "/t",
                                 "TmpfsOptions": {"SizeBytes": 1 << 20}}],
                     "Tmpfs": {"/run": "size=64m"}})
    resolved = [s.with_volume(_volume(s.volume_name)) if s.type == "volume" else s
                for s in specs]
    out = S.runtime_mounts(resolved)
    assert [(m.destination, m.source, m.options) for m in out.mounts] == [
        ("/b", "/src", ("rbind", "ro", "rprivate")),
        ("/v", "/var/lib/dockyard/volumes/v1/_data", ("rbind",)),
        ("/s", "/src", ("rbind", "rshared")),
        ("/n", "/src", ("bind", "rprivate")),
    ]
    assert all(m.type == "bind" for m in out.mounts)
    assert out.tmpfs == {"/t": "size=1m", "/run": "size=64m"}
    assert S.inspect_mounts(resolved) == [
        {"Type": "bind", "Source": "/src", "Destination": "/b", "Mode": "ro", "RW": False,
         "Propagation": "rprivate"},
        {"Type": "volume", "Name": "v1", "Source": "/var/lib/dockyard/volumes/v1/_data",
         "Destination": "/v", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": "/src", "Destination": "/s", "Mode": "rshared", "RW": True,
         "Propagation": "rshared"},
        {"Type": "bind", "Source": "/src", "Destination": "/n", "Mode": "", "RW": True,
         "Propagation": "rprivate"},
        {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
         "Propagation": ""},
    ]


def test_unresolved_volume_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        S.runtime_mounts(_mounts({"Binds": ["v1:/v"]}))


def test_subpath_resolves_inside_the_volume(tmp_path: Any) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "esc").symlink_to("/etc")
    spec = MountSpec("volume", "/d", str(tmp_path), volume_name="v1", subpath="sub")
    assert S.runtime_mounts([spec]).mounts[0].source == str(tmp_path / "sub")
    escaping = MountSpec("volume", "/d", str(tmp_path), volume_name="v1", subpath="esc")
    with pytest.raises(InvalidArgument, match="cannot access path"):
        S.runtime_mounts([escaping])  # /etc resolved inside the volume: missing


def test_specs_round_trip_through_json() -> None:
    import json
    specs = _mounts({"Binds": ["/src:/b:ro"],
                     "Mounts": [{"Type": "volume", "Source": "v1", "Target": "/v",
                                 "VolumeOptions": {"Labels": {"a": "b"}, "DriverConfig": {
                                     "Name": "local", "Options": {"type": "tmpfs"}}}}],
                     "Tmpfs": {"/run": "size=64m,exec"}})
    data = json.loads(json.dumps([s.to_dict() for s in specs]))
    assert [MountSpec.from_dict(d) for d in data] == specs
