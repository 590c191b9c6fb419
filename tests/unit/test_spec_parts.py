"""The smaller pieces of the OCI spec builder: mounts, devices, resources, security options."""
from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime.spec import (HostFacts, Mount, Resources, SpecOptions, Ulimit, build_spec,
                                   namespace_mode, parse_security_opts, user_mount)
from dockyard.runtime.spec_devices import (default_device_rules, parse_cgroup_rule, parse_device,
                                           spec_devices)
from dockyard.runtime.spec_mounts import container_mounts, merge_tmpfs_options, tmpfs_mount
from dockyard.runtime.spec_resources import parse_ulimit, resources_to_oci, rlimits

HOST = HostFacts(arch="x86_64", last_cap=40, host_devices=())


def spec(tmp_path: Path, **kw) -> dict:
    return build_spec(SpecOptions(rootfs=tmp_path, args=("sh",), **kw), HOST)


def dests(s: dict) -> list[str]:
    return [m["destination"] for m in s["mounts"]]


# --- security options ------------------------------------------------------------------------

@pytest.mark.parametrize("opts,nnp,profile", [
    (["no-new-privileges"], True, None),
    (["no-new-privileges:true"], True, None),
    (["no-new-privileges=false"], False, None),
    (["seccomp=unconfined"], False, "unconfined"),
    (["seccomp:/p.json", "label=disable", "apparmor=unconfined"], False, "/p.json"),
])
def test_security_opts(opts: list[str], nnp: bool, profile: str | None) -> None:
    parsed = parse_security_opts(opts)
    assert (parsed.no_new_privileges, parsed.seccomp) == (nnp, profile)


@pytest.mark.parametrize("opt,msg", [
    ("foo", 'invalid --security-opt 1: "foo"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
])
def test_security_opt_errors(opt: str, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        parse_security_opts([opt])


def test_no_new_privileges_in_spec(tmp_path: Path) -> None:
    assert "noNewPrivileges" not in spec(tmp_path)["process"]
    assert spec(tmp_path, security_opt=("no-new-privileges",))["process"]["noNewPrivileges"]


def test_systempaths_unconfined(tmp_path: Path) -> None:
    s = spec(tmp_path, security_opt=("systempaths=unconfined",))
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]


# --- namespaces ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,value,want", [
    ("network", "", "new"), ("network", "bridge", "new"), ("network", "mynet", "new"),
    ("network", "none", "new"), ("network", "host", "host"),
    ("network", "/var/run/netns/x/", "/var/run/netns/x"), ("ipc", "shareable", "new"),
    ("ipc", "none", "new"), ("pid", "private", "new"), ("uts", "host", "host"),
    ("cgroup", "host", "host"),
])
def test_namespace_mode(kind: str, value: str, want: str) -> None:
    assert namespace_mode(kind, value) == want


@pytest.mark.parametrize("kind,value", [("pid", "bogus"), ("ipc", "container:abc"),
                                        ("network", "container:abc")])
def test_namespace_mode_errors(kind: str, value: str) -> None:
    with pytest.raises(InvalidArgument):
        namespace_mode(kind, value)


def test_host_uts_drops_hostname(tmp_path: Path) -> None:
    s = spec(tmp_path, hostname="h", domainname="d", uts="host")
    assert "hostname" not in s and "sysctl" not in s["linux"]
    assert {"type": "uts"} not in s["linux"]["namespaces"]


# --- mounts ----------------------------------------------------------------------------------

def test_merge_tmpfs_options() -> None:
    assert merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m",
                                "size=2m", "defaults", "shared"]) == [
        "nosuid", "nodev", "exec", "size=2m", "shared"]
    with pytest.raises(InvalidArgument, match=r'Invalid tmpfs option \["foo"\]'):
        merge_tmpfs_options(["foo"])
    with pytest.raises(InvalidArgument, match=r'Invalid tmpfs option \["bar" "1"\]'):
        merge_tmpfs_options(["bar=1"])


def test_tmpfs_mount() -> None:
    m = tmpfs_mount("/run/", "ro,mode=1770")
    assert m == Mount("/run", "tmpfs", "tmpfs", ("noexec", "nosuid", "nodev", "rprivate", "ro",
                                                 "mode=1770"))
    with pytest.raises(InvalidArgument, match="mount path must be absolute"):
        tmpfs_mount("run", "")


def test_user_mount_overrides_default_and_sorting(tmp_path: Path) -> None:
    s = spec(tmp_path, mounts=(user_mount("/a/b/c", "/x"), user_mount("/dev/shm", "/shm"),
                               user_mount("/a", "/y", readonly=True)))
    assert dests(s) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                        "/a", "/dev/shm", "/a/b/c"]
    assert s["mounts"][6]["options"] == ["rbind", "ro", "rprivate"]


def test_dev_mount_drops_default_dev_children(tmp_path: Path) -> None:
    s = spec(tmp_path, mounts=(user_mount("/dev", "/dev"),))
    assert dests(s) == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_ipc_modes_and_shm(tmp_path: Path) -> None:
    assert "/dev/shm" not in dests(spec(tmp_path, ipc="none"))
    host = spec(tmp_path, ipc="host")
    assert host["mounts"][-1] == {"destination": "/dev/shm", "type": "bind",
                                  "source": "/dev/shm", "options": ["rbind", "rprivate"]}
    assert {"type": "ipc"} not in host["linux"]["namespaces"]
    shm = [m for m in spec(tmp_path, shm_size=0)["mounts"] if m["destination"] == "/dev/shm"]
    assert shm[0]["options"][-1] == "size=67108864"
    with pytest.raises(InvalidArgument, match="SHM size"):
        spec(tmp_path, shm_size=-1)


def test_readonly_rootfs_and_privileged_mount_flags() -> None:
    ms = container_mounts(shm_size=1, user_mounts=[Mount("/v", "bind", "/s", ("rbind",))],
                          tmpfs={}, ipc_mode="private", readonly_rootfs=True, privileged=True,
                          init_source=None)
    by = {m["destination"]: m["options"] for m in ms}
    assert "ro" not in by["/sys"] and "ro" not in by["/sys/fs/cgroup"]
    assert by["/v"] == ["rbind"] and "ro" not in by["/dev/shm"] and "ro" not in by["/proc"]


def test_rootfs_propagation(tmp_path: Path) -> None:
    s = spec(tmp_path, mounts=(user_mount("/a", "/a", propagation="rslave"),))
    assert s["linux"]["rootfsPropagation"] == "rslave"
    s = spec(tmp_path, mounts=(user_mount("/a", "/a", propagation="rshared"),))
    assert s["linux"]["rootfsPropagation"] == "shared"
    assert "rootfsPropagation" not in spec(tmp_path)["linux"]


def test_init(tmp_path: Path) -> None:
    s = spec(tmp_path, init_path=Path("/usr/bin/tini-static"))
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    assert s["mounts"][7] == {"destination": "/sbin/docker-init", "type": "bind",
                              "source": "/usr/bin/tini-static", "options": ["bind", "ro"]}


# --- devices ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("/dev/fuse", ("/dev/fuse", "/dev/fuse", "rwm")),
    ("/dev/fuse:/dev/f2", ("/dev/fuse", "/dev/f2", "rwm")),
    ("/dev/sda:r", ("/dev/sda", "/dev/sda", "r")),
    ("/dev/sda:/dev/xvda:rw", ("/dev/sda", "/dev/xvda", "rw")),
])
def test_parse_device(text: str, want: tuple[str, str, str]) -> None:
    d = parse_device(text)
    assert (d.path_on_host, d.path_in_container, d.permissions) == want


@pytest.mark.parametrize("text,msg", [
    ("a:b:c:d", "invalid device specification"), ("/dev/x:/y:rwx", "bad mode specified: rwx"),
    ("/dev/x:/y:rr", "bad mode"), ("/dev/x:rel", "rel is not an absolute path"),
])
def test_parse_device_errors(text: str, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        parse_device(text)


def test_device_from_host_path() -> None:
    devs, rules = spec_devices(("/dev/null:/dev/n2:rw",), (), False, None)
    assert devs == [{"path": "/dev/n2", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
                     "uid": 0, "gid": 0}]
    assert rules[-1] == {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    assert rules[:-1] == default_device_rules()


def test_device_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match='adding custom device "/nonexistent"'):
        spec_devices(("/nonexistent",), (), False, None)
    (tmp_path / "f").write_text("")
    with pytest.raises(InvalidArgument, match="not a device node"):
        spec_devices((f"{tmp_path}/f:/dev/f",), (), False, None)


def test_privileged_devices() -> None:
    host = [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660,
             "uid": 0, "gid": 6}]
    devs, rules = spec_devices(("/dev/null", "/dev/null:/dev/n2:r"), (), True, host)
    assert [d["path"] for d in devs] == ["/dev/sda", "/dev/n2"]
    assert rules == [{"allow": True, "access": "rwm"}]


def test_cgroup_rules() -> None:
    assert parse_cgroup_rule("c 42:* rmw") == {"allow": True, "type": "c", "major": 42,
                                               "access": "rmw"}
    assert parse_cgroup_rule("a *:* m") == {"allow": True, "type": "a", "access": "m"}
    with pytest.raises(InvalidArgument, match="invalid device cgroup format 'x 1:2 r'"):
        parse_cgroup_rule("x 1:2 r")


def test_default_rules_deny_first() -> None:
    rules = default_device_rules()
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {(r["major"], r.get("minor")) for r in rules[1:]} == {
        (1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, None)}


# --- resources, rlimits, sysctls -------------------------------------------------------------

def test_resources_docker_semantics() -> None:
    assert resources_to_oci(Resources()) == {}
    mem = resources_to_oci(Resources(memory=100 << 20))["memory"]
    assert mem == {"limit": 100 << 20, "swap": 200 << 20}
    assert "swap" not in resources_to_oci(Resources(memory=100 << 20, memory_swap=-1))["memory"]
    assert "swap" not in resources_to_oci(Resources(memory=100 << 20), swap_limit=False)["memory"]
    assert resources_to_oci(Resources(cpus=2_500_000_000))["cpu"] == {"quota": 250000,
                                                                      "period": 100000}
    assert resources_to_oci(Resources(pids_limit=0))["pids"] == {"limit": -1}
    assert resources_to_oci(Resources(cpu_quota=50000, cpu_period=200000))["cpu"] == {
        "quota": 50000, "period": 200000}


@pytest.mark.parametrize("res,msg", [
    (Resources(memory=1024), "Minimum memory limit allowed is 6MB"),
    (Resources(memory_swap=100 << 20), "always set the Memory limit"),
    (Resources(memory=100 << 20, memory_swap=50 << 20), "memoryswap limit should be larger"),
    (Resources(memory=10 << 20, memory_reservation=20 << 20), "memory reservation limit"),
    (Resources(memory_reservation=1), "Minimum memory reservation allowed is 6MB"),
    (Resources(cpus=10**9, cpu_quota=1000), "Nano CPUs and CPU Quota"),
    (Resources(cpus=10**9, cpu_period=1000), "Nano CPUs and CPU Period"),
    (Resources(cpu_period=10), "CPU cfs period"),
    (Resources(cpu_quota=10), "CPU cfs quota"),
    (Resources(blkio_weight=5), "blkio weight"),
    (Resources(cpuset_cpus="0-a"), "Invalid value 0-a for cpuset cpus"),
    (Resources(cpuset_mems="3-1"), "Invalid value 3-1 for cpuset mems"),
    (Resources(memory_swappiness=101), "valid memory swappiness range is 0-100"),
])
def test_resource_errors(res: Resources, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        resources_to_oci(res)


def test_rlimits() -> None:
    assert rlimits([]) == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    assert rlimits([Ulimit("NOFILE", 10, 20)]) == [{"type": "RLIMIT_NOFILE", "hard": 20,
                                                    "soft": 10}]
    assert rlimits([Ulimit("core", -1, -1)], 0) == [
        {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}]
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        rlimits([Ulimit("bogus", 1, 1)])
    with pytest.raises(InvalidArgument, match="soft limit must be less than or equal to hard"):
        rlimits([Ulimit("nofile", 20, 10)])


def test_parse_ulimit() -> None:
    assert parse_ulimit("nofile=1024:2048") == Ulimit("nofile", 1024, 2048)
    assert parse_ulimit("nproc=512") == Ulimit("nproc", 512, 512)
    with pytest.raises(InvalidArgument):
        parse_ulimit("nofile")


def test_sysctls(tmp_path: Path) -> None:
    s = spec(tmp_path, sysctls={"net.core.somaxconn": "1024", "fs.mqueue.msg_max": "20"})
    assert s["linux"]["sysctl"] == {"net.core.somaxconn": "1024", "fs.mqueue.msg_max": "20"}
    with pytest.raises(InvalidArgument, match="not allowed in host network namespace"):
        spec(tmp_path, network="host", sysctls={"net.ipv4.ip_forward": "1"})
    with pytest.raises(InvalidArgument, match="hosts ipc namespace"):
        spec(tmp_path, ipc="host", sysctls={"kernel.shmmax": "1"})
    with pytest.raises(InvalidArgument, match="is not in a separate kernel namespace"):
        spec(tmp_path, sysctls={"vm.swappiness": "1"})


# --- process ---------------------------------------------------------------------------------

def test_process_checks(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="No command specified"):
        build_spec(SpecOptions(rootfs=tmp_path, args=()), HOST)
    with pytest.raises(InvalidArgument, match="needs to be an absolute path"):
        spec(tmp_path, cwd="rel")
    with pytest.raises(InvalidArgument, match="range for oom score adj"):
        spec(tmp_path, oom_score_adj=1001)


def test_non_root_gets_only_bounding(tmp_path: Path) -> None:
    assert list(spec(tmp_path, user="1:1")["process"]["capabilities"]) == ["bounding"]


def test_from_dict_rejects_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown spec option"):
        SpecOptions.from_dict({"rootfs": str(tmp_path), "args": ["sh"], "bogus": 1})


def test_extra_opts_and_annotations(tmp_path: Path) -> None:
    def label(s: dict, opts: SpecOptions) -> None:
        s.setdefault("annotations", {})["extra"] = "yes"

    s = build_spec(SpecOptions(rootfs=tmp_path, args=("sh",), annotations={"a": "b"}), HOST,
                   extra_opts=[label])
    assert s["annotations"] == {"a": "b", "extra": "yes"}
