"""Run generated config.json files with the real crun to prove the spec does what Docker's does.

Needs root and crun. On a hybrid cgroup host crun refuses to run, so each call runs crun in a
private mount namespace with /sys/fs/cgroup/unified unmounted (crun then uses cgroup v1).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.runtime.spec import HostFacts, Mount, Resources, SpecOptions, build_spec

CRUN = shutil.which("crun")
BUSYBOX = Path("/bin/busybox")
TINI = shutil.which("tini-static")
APPLETS = ("sh", "cat", "id", "mount", "ls", "sleep", "touch", "echo", "hostname", "grep",
           "wc", "ps", "stat", "head", "umount", "unshare", "true")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(CRUN is None, reason="needs crun"),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs a static /bin/busybox"),
]

PREFIX = "dockyard-spec-test-" + secrets.token_hex(4)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _hybrid() -> bool:
    unified = (CGROUP_ROOT / "unified").is_mount()
    return unified and not (CGROUP_ROOT / "cgroup.controllers").exists()


def _crun_argv(state: Path, *args: str) -> list[str]:
    crun = [CRUN or "crun", "--root", str(state), *args]
    if not _hybrid():
        return crun
    quoted = " ".join(f"'{a}'" for a in crun)
    return ["unshare", "-m", "sh", "-c", f"umount /sys/fs/cgroup/unified && exec {quoted}"]


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="dockyard-spec-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def rootfs(workdir: Path) -> Path:
    root = workdir / "rootfs"
    root.mkdir(mode=0o755)  # "/" of the container: non-root users must traverse it
    for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "mnt", "root"):
        (root / d).mkdir()
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin" / "docker-init").touch()  # mount point for --init
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        "app:x:1000:1000::/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text(
        "root:x:0:root\nwheel:x:10:root,app\napp:x:1000:\nnogroup:x:65534:\n")
    return root


@pytest.fixture(scope="module")
def state_dir(workdir: Path):
    state = workdir / "crun-state"
    state.mkdir()
    yield state
    for controller in CGROUP_ROOT.iterdir():
        parent = controller / PREFIX
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


def run(rootfs: Path, state: Path, tmp_path: Path, cmd: str,
        **kw: object) -> subprocess.CompletedProcess[str]:
    """Build the spec for ``sh -c cmd`` with SpecOptions overrides and crun-run it."""
    cid = "t" + secrets.token_hex(6)
    opts = SpecOptions(rootfs=rootfs, args=("/bin/sh", "-c", cmd),
                       env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
                       hostname=cid, cgroups_path=f"/{PREFIX}/{cid}")
    opts = replace(opts, **kw)
    spec = build_spec(opts, HostFacts.probe())
    bundle = tmp_path / cid
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec, indent=2))
    try:
        return subprocess.run(_crun_argv(state, "run", "--bundle", str(bundle), cid),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(_crun_argv(state, "delete", "-f", cid), capture_output=True, timeout=30)
        for controller in CGROUP_ROOT.iterdir():
            leftover = controller / PREFIX / cid
            if leftover.is_dir():
                leftover.rmdir()


def _status(text: str, field: str) -> str:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {text!r}")


@pytest.fixture
def bundles(workdir: Path):
    path = Path(tempfile.mkdtemp(dir=workdir))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def crun(rootfs: Path, state_dir: Path, bundles: Path):
    return lambda cmd, **kw: run(rootfs, state_dir, bundles, cmd, **kw)


def test_default_cannot_mount(crun) -> None:
    p = crun("mount -t tmpfs none /mnt")
    assert p.returncode != 0
    assert "permission denied" in p.stderr.lower() or "not permitted" in p.stderr.lower()


def test_default_capabilities(crun) -> None:
    p = crun("cat /proc/self/status")
    assert p.returncode == 0, p.stderr
    assert _status(p.stdout, "CapEff") == "00000000a80425fb"
    assert _status(p.stdout, "CapBnd") == "00000000a80425fb"
    assert _status(p.stdout, "Seccomp") == "2"
    assert _status(p.stdout, "NoNewPrivs") == "0"


def test_privileged_can_mount(crun) -> None:
    p = crun("mount -t tmpfs none /mnt && echo mounted && grep -c Seccomp:.0 /proc/self/status",
             privileged=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["mounted", "1"]


def test_cap_add_sys_admin_can_mount(crun) -> None:
    p = crun("mount -t tmpfs none /mnt && echo mounted", cap_add=("sys_admin",))
    assert p.returncode == 0, p.stderr
    assert "mounted" in p.stdout


def test_cap_drop_all_as_user(crun) -> None:
    p = crun("id; grep -E '^Cap(Eff|Bnd)' /proc/self/status", cap_drop=("ALL",), user="1000:1000")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("uid=1000(app) gid=1000(app)")
    assert _status(p.stdout, "CapEff") == "0000000000000000"
    assert _status(p.stdout, "CapBnd") == "0000000000000000"


def test_named_user_gets_supplementary_groups(crun) -> None:
    p = crun("id -u; id -G", user="app")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1000", "1000", "10"]


def test_readonly_rootfs(crun) -> None:
    p = crun("touch /x", readonly_rootfs=True)
    assert p.returncode != 0
    assert "read-only file system" in p.stderr.lower()
    p = crun("touch /dev/shm/x && echo ok", readonly_rootfs=True)
    assert p.stdout.strip() == "ok", p.stderr


def test_masked_and_readonly_paths(crun) -> None:
    present = [f for f in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if Path(f).exists()]
    sizes = "; ".join(f"wc -c < {f}" for f in present)
    p = crun(f"{sizes}; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid || echo ro")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0"] * len(present) + ["0", "ro"]


def test_no_new_privileges(crun) -> None:
    p = crun("cat /proc/self/status", security_opt=("no-new-privileges:true",))
    assert p.returncode == 0, p.stderr
    assert _status(p.stdout, "NoNewPrivs") == "1"


def test_hostname(crun) -> None:
    p = crun("hostname", hostname="web-1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "web-1"


def test_memory_limit(crun) -> None:
    p = crun("cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
             resources=Resources(memory=64 * 1024 * 1024, pids_limit=100))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(64 * 1024 * 1024)


def test_seccomp_unconfined_and_ptrace_cap(crun) -> None:
    p = crun("grep Seccomp: /proc/self/status", security_opt=("seccomp=unconfined",))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[1] == "0"
    # duplicate names across rules (ptrace in the base list and the CAP_SYS_PTRACE rule)
    p = crun("echo ok", cap_add=("SYS_PTRACE", "SYS_NICE", "SYSLOG"))
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_unshare_blocked_by_seccomp(crun) -> None:
    p = crun("unshare -u true && echo escaped || echo blocked")
    assert p.stdout.strip() == "blocked", p.stderr


def test_tmpfs_shm_and_ulimit(crun) -> None:
    p = crun("grep -E ' /(run|dev/shm) ' /proc/mounts; ulimit -n",
             tmpfs={"/run": "size=1m"}, shm_size=8 * 1024 * 1024)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "/run tmpfs" in out and "size=1024k" in out and "noexec" in out.split("/run")[1]
    assert "/dev/shm tmpfs" in out and "size=8192k" in out
    assert out.split()[-1] == str(HostFacts.probe().default_nofile)


def test_device_mapping(crun) -> None:
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    p = crun("stat -c '%t:%T' /dev/fuse && cat /dev/fuse; echo rc=$?", devices=("/dev/fuse",))
    assert p.stdout.splitlines()[0] == "a:e5", p.stderr  # 10:229
    p = crun("ls /dev/fuse 2>&1; echo done")
    assert "No such file" in p.stdout


@pytest.mark.skipif(TINI is None, reason="needs tini-static")
def test_init(crun) -> None:
    p = crun("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
             init_path=Path(TINI or ""))
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith("/sbin/docker-init -- /bin/sh")


def test_host_network(crun) -> None:
    p = crun("ls /sys/class/net | wc -l", network="host")
    assert p.returncode == 0, p.stderr
    host_count = len(os.listdir("/sys/class/net"))
    assert int(p.stdout.strip()) == host_count
    p = crun("ls /sys/class/net")
    assert p.stdout.split() == ["lo"]


def test_device_cgroup_denies_other_nodes(crun) -> None:
    p = crun("mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem", device_cgroup_rules=("c 42:* rmw",))
    assert p.returncode != 0
    assert "not permitted" in p.stderr


def test_bind_mount_readonly(crun, bundles: Path) -> None:
    src = bundles / "vol"
    src.mkdir()
    (src / "f").write_text("hello\n")
    vol = Mount("/data", "bind", str(src), ("rbind", "ro", "rprivate"))
    p = crun("cat /data/f; touch /data/g || echo ro", mounts=(vol,))
    assert p.stdout.split() == ["hello", "ro"], p.stderr


def test_custom_seccomp_profile_inline(crun) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    p = crun("mkdir /tmp/x || echo denied; touch /tmp/y && echo touched",
             security_opt=("seccomp=" + json.dumps(profile),))
    assert p.stdout.split() == ["denied", "touched"], p.stderr
    assert "not permitted" in p.stderr
