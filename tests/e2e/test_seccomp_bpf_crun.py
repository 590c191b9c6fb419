"""crun with the precompiled seccomp program (``run.oci.seccomp_bpf_data``) against crun compiling
``linux.seccomp`` itself: same program bytes, same behaviour, and what it saves at create.

Needs root, crun and a static /bin/busybox; the syscall probe also needs gcc with a static libc
(skipped otherwise). On a hybrid cgroup host crun runs in a private mount namespace with
/sys/fs/cgroup/unified unmounted (it then uses cgroup v1).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime import seccomp
from dockyard.runtime.seccomp_bpf import ANNOTATION, compile_bpf, with_precompiled_seccomp
from dockyard.runtime.spec import HostFacts, SpecOptions, build_spec

CRUN = shutil.which("crun")
GCC = shutil.which("gcc")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "ls", "grep", "echo", "true", "sleep", "unshare", "mount", "hostname",
           "nsenter", "chroot", "ionice", "renice", "date", "linux32", "swapoff", "id", "head")
PREFIX = "dyseccomp-test-" + secrets.token_hex(4)
CGROUP_ROOT = Path("/sys/fs/cgroup")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(CRUN is None, reason="needs crun"),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs a static /bin/busybox"),
]

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static void p(const char *name, long ret) {
  if (ret < 0) printf("%s errno=%d\n", name, errno); else printf("%s ok\n", name);
}
int main(void) {
  p("keyctl", syscall(SYS_keyctl, 0, -3, 0));
  p("add_key", syscall(SYS_add_key, "nosuchtype", "d", NULL, 0, -3));
  p("request_key", syscall(SYS_request_key, "nosuchtype", "d", NULL, 0));
  p("bpf", syscall(SYS_bpf, -1, NULL, 0));
  p("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
  p("userfaultfd", syscall(SYS_userfaultfd, -1));
  p("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
  p("init_module", syscall(SYS_init_module, NULL, 0, ""));
  p("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
  p("acct", syscall(SYS_acct, NULL));
  p("swapon", syscall(SYS_swapon, "/nonexistent", 0));
  p("setns", syscall(SYS_setns, -1, 0));
  p("mount", syscall(SYS_mount, "none", "/nonexistent", "tmpfs", 0, NULL));
  p("umount2", syscall(SYS_umount2, "/nonexistent", 0));
  p("sethostname", syscall(SYS_sethostname, "x", -1));
  p("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, NULL));
  p("nfsservctl", syscall(SYS_nfsservctl, 0, NULL, NULL));
  p("clone3", syscall(SYS_clone3, NULL, 0));
  p("clone_newns_fs", syscall(SYS_clone, CLONE_NEWNS | CLONE_FS, NULL, NULL, NULL, 0));
  p("clone_sighand", syscall(SYS_clone, CLONE_SIGHAND, NULL, NULL, NULL, 0));
  p("socket_vsock", syscall(SYS_socket, 40, SOCK_STREAM, 0));
  p("socket_inet", syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0));
  p("personality_query", syscall(SYS_personality, 0xffffffff));
  p("personality_norandom", syscall(SYS_personality, 0x0040000));
  p("chroot", syscall(SYS_chroot, "/nonexistent"));
  p("ptrace", syscall(SYS_ptrace, -1, 0, 0, 0));
  p("getpid", syscall(SYS_getpid));
  p("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
  p("unshare_ns", syscall(SYS_unshare, CLONE_NEWNS));
  return 0;
}
"""

SHELL_PROBES = [
    "unshare -m true", "unshare -n true", "mount -t tmpfs none /mnt", "hostname probe-host",
    "nsenter -t 1 -m true", "chroot / true", "ionice -c 3 true", "renice -n 5 $$",
    "date -s 2000.01.01-00:00:00", "linux32 true", "swapoff -a", "ls /", "sh -c 'echo hi'",
    "id", "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|CapEff):' /proc/self/status",
]
CUSTOM_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
     "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
              {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]},
    {"names": ["vhangup", "no_such_syscall"], "action": "SCMP_ACT_KILL_PROCESS"}]}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-new-privileges": {"security_opt": ("no-new-privileges:true",)},
    "user-no-caps": {"user": "1000:1000", "cap_drop": ("ALL",)},
    "cap-sys-admin": {"cap_add": ("SYS_ADMIN",)},
    "custom-profile": {"security_opt": ("seccomp=" + json.dumps(CUSTOM_PROFILE),)},
}
# Sections only compared as programs (crun create, no start). crun's init loads the filter before
# dropping privileges, so it must leave alone what crun itself still calls.
EXTRA_SECTIONS = [
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
     "syscalls": [{"names": ["syslog"], "action": "SCMP_ACT_TRAP"},
                  {"names": ["vhangup"], "action": "SCMP_ACT_LOG"},
                  {"names": ["acct"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                  {"names": ["add_key"], "action": "SCMP_ACT_KILL_THREAD"},
                  {"names": ["request_key"], "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                  {"names": ["kcmp"], "action": "SCMP_ACT_KILL",
                   "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_GE"},
                            {"index": 0, "value": 0xFF, "valueTwo": 1,
                             "op": "SCMP_CMP_MASKED_EQ"}]}]},
    {**seccomp.default_profile(), "defaultErrnoRet": 38},
]


def _hybrid() -> bool:
    unified = (CGROUP_ROOT / "unified").is_mount()
    return unified and not (CGROUP_ROOT / "cgroup.controllers").exists()


def _in_runtime_ns(argv: list[str]) -> list[str]:
    if not _hybrid():
        return argv
    quoted = " ".join(f"'{a}'" for a in argv)
    return ["unshare", "-m", "sh", "-c", f"umount /sys/fs/cgroup/unified && exec {quoted}"]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dyseccomp-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def rootfs(workdir: Path) -> Path:
    root = workdir / "rootfs"
    root.mkdir(mode=0o755)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "mnt"):
        (root / d).mkdir()
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\n")
    if GCC:
        src = workdir / "probe.c"
        src.write_text(PROBE_C)
        subprocess.run([GCC, "-static", "-O1", "-o", str(root / "bin" / "probe"), str(src)],
                       check=False, capture_output=True)
    return root


@pytest.fixture(scope="module")
def state(workdir: Path) -> Iterator[Path]:
    path = workdir / "crun-state"
    path.mkdir()
    yield path
    for cid in os.listdir(path):  # anything a failed test left behind
        if not cid.startswith("."):
            subprocess.run(_in_runtime_ns([CRUN or "crun", "--root", str(path), "delete", "-f",
                                           cid]), capture_output=True, check=False, timeout=30)
    for controller in CGROUP_ROOT.iterdir():
        parent = controller / PREFIX
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


class Crun:
    def __init__(self, rootfs: Path, state: Path, bundles: Path) -> None:
        self.rootfs, self.state, self.bundles = rootfs, state, bundles

    def argv(self, *args: str) -> list[str]:
        return _in_runtime_ns([CRUN or "crun", "--root", str(self.state), *args])

    def bundle(self, cmd: str, precompiled: bool, **kw: Any) -> tuple[str, Path, dict[str, Any]]:
        cid = "s" + secrets.token_hex(6)
        opts = replace(SpecOptions(rootfs=self.rootfs, args=("/bin/sh", "-c", cmd),
                                   env=("PATH=/bin",), hostname=cid,
                                   cgroups_path=f"/{PREFIX}/{cid}"), **kw)
        extra = [with_precompiled_seccomp(self.bundles / "seccomp-cache", "crun")] \
            if precompiled else []
        spec = build_spec(opts, HostFacts.probe(), extra_opts=extra)
        bundle = self.bundles / cid
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(spec))
        return cid, bundle, spec

    def run(self, cmd: str, precompiled: bool, **kw: Any) -> subprocess.CompletedProcess[str]:
        cid, bundle, _ = self.bundle(cmd, precompiled, **kw)
        try:
            return subprocess.run(self.argv("run", "--bundle", str(bundle), cid), text=True,
                                  stdin=subprocess.DEVNULL, capture_output=True, check=False,
                                  timeout=60)
        finally:
            self.delete(cid)

    def detached(self, command: str, bundle: Path, cid: str) -> None:
        """``create``/``run -d``: the container keeps crun's stdio, so no pipes to wait on."""
        with tempfile.TemporaryFile() as err:
            p = subprocess.run(self.argv(command, *(["-d"] if command == "run" else []),
                                         "--bundle", str(bundle), cid),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                               check=False, timeout=60)
            err.seek(0)
            assert p.returncode == 0, err.read().decode(errors="replace")

    def delete(self, cid: str) -> None:
        subprocess.run(self.argv("delete", "-f", cid), capture_output=True, check=False, timeout=30)
        for controller in CGROUP_ROOT.iterdir():
            leftover = controller / PREFIX / cid
            if leftover.is_dir():
                leftover.rmdir()

    def installed_program(self, precompiled: bool, **kw: Any) -> tuple[bytes, dict[str, Any]]:
        """``crun create``, then the program crun wrote for init to load (<state>/<id>)."""
        cid, bundle, spec = self.bundle("true", precompiled, **kw)
        try:
            self.detached("create", bundle, cid)
            return (self.state / cid / "seccomp.bpf").read_bytes(), spec
        finally:
            self.delete(cid)


@pytest.fixture
def crun(rootfs: Path, state: Path, workdir: Path) -> Iterator[Crun]:
    bundles = Path(tempfile.mkdtemp(dir=workdir))
    yield Crun(rootfs, state, bundles)
    shutil.rmtree(bundles, ignore_errors=True)


def _field(text: str, name: str) -> str:
    return next(ln.split(":", 1)[1].strip() for ln in text.splitlines()
                if ln.startswith(name + ":"))


def test_precompiled_default_container(crun: Crun) -> None:
    _, _, spec = crun.bundle("true", precompiled=True)
    assert "seccomp" not in spec["linux"] and ANNOTATION in spec["annotations"]
    p = crun.run("cat /proc/self/status; ls /; sh -c 'echo inner'; "
                 "unshare -m true || echo unshare-denied; "
                 "mount -t tmpfs none /mnt || echo mount-denied", precompiled=True)
    assert p.returncode == 0, p.stderr
    assert _field(p.stdout, "Seccomp") == "2"
    assert _field(p.stdout, "Seccomp_filters") == "1"
    assert _field(p.stdout, "NoNewPrivs") == "0"
    lines = p.stdout.splitlines()
    assert "bin" in lines and "inner" in lines
    assert "unshare-denied" in lines and "mount-denied" in lines
    assert "Operation not permitted" in p.stderr or "permission denied" in p.stderr


@pytest.mark.skipif(GCC is None, reason="needs gcc for the syscall probe")
def test_precompiled_syscall_verdicts(crun: Crun, rootfs: Path) -> None:
    if not (rootfs / "bin" / "probe").exists():
        pytest.skip("could not build a static probe")
    p = crun.run("probe", precompiled=True)
    assert p.returncode == 0, p.stderr
    got = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    for name in ("keyctl", "add_key", "request_key", "bpf", "mount", "umount2", "setns",
                 "unshare_ns", "unshare_user", "clone_newns_fs", "socket_vsock",
                 "personality_norandom", "io_uring_setup"):
        assert got[name] == "errno=1", (name, got[name])  # EPERM from the filter
    assert got["clone3"] == "errno=38"  # ENOSYS, so libc falls back to clone
    assert got["clone_sighand"] == "errno=22"  # allowed: the kernel's EINVAL
    assert got["socket_inet"] == got["getpid"] == got["personality_query"] == "ok"
    assert got["chroot"] == "errno=2"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_probes_match_crun_compiled(crun: Crun, rootfs: Path, variant: str) -> None:
    probes = [*SHELL_PROBES, *(["probe"] if (rootfs / "bin" / "probe").exists() else [])]
    script = "; ".join(f"echo \"== {c}\"; {c} 2>&1; echo \"rc=$?\"" for c in probes)
    script += "; mkdir /tmp/d 2>&1 && rmdir /tmp/d; echo rc=$?"
    outputs = {}
    for precompiled in (False, True):
        p = crun.run(script, precompiled, **VARIANTS[variant])
        assert p.returncode == 0, p.stderr
        outputs[precompiled] = p.stdout.replace("probe-host", "")
    assert outputs[True] == outputs[False]
    assert "Seccomp:\t2" in outputs[True]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_installed_program_is_what_crun_compiles(crun: Crun, variant: str) -> None:
    """crun writes the program its init loads to <state>/<id>/seccomp.bpf: compiled by crun
    from the section, it equals ours byte for byte; with the annotation, it is the annotation."""
    by_crun, spec = crun.installed_program(False, **VARIANTS[variant])
    assert compile_bpf(spec["linux"]["seccomp"]) == by_crun
    loaded, pre_spec = crun.installed_program(True, **VARIANTS[variant])
    assert loaded == by_crun == base64.b64decode(pre_spec["annotations"][ANNOTATION])


@pytest.mark.parametrize("section", EXTRA_SECTIONS, ids=["actions", "default-errno-ret"])
def test_extra_actions_compile_like_crun(crun: Crun, section: dict[str, Any]) -> None:
    by_crun, spec = crun.installed_program(
        False, security_opt=("seccomp=" + json.dumps(section),))
    assert compile_bpf(spec["linux"]["seccomp"]) == by_crun


def test_annotation_wins_over_a_kept_section(crun: Crun) -> None:
    """Sections with ``flags`` are kept next to the annotation (crun reads flags only there):
    crun must load the annotation's program, not compile the section."""
    deny_mkdir = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    cid, bundle, spec = crun.bundle("mkdir /tmp/w && rmdir /tmp/w && echo made", True,
                                    security_opt=("seccomp=" + json.dumps(deny_mkdir),))
    assert spec["linux"]["seccomp"]["flags"] == ["SECCOMP_FILTER_FLAG_LOG"]
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "flags": []}
    (bundle / "config.json").write_text(json.dumps(spec))
    try:
        p = subprocess.run(crun.argv("run", "--bundle", str(bundle), cid), text=True,
                           stdin=subprocess.DEVNULL, capture_output=True, check=False,
                           timeout=60)
    finally:
        crun.delete(cid)
    assert "made" not in p.stdout and "not permitted" in p.stderr, (p.stdout, p.stderr)


def test_exec_gets_the_precompiled_filter(crun: Crun) -> None:
    cid, bundle, _ = crun.bundle("sleep 60", precompiled=True)
    try:
        crun.detached("run", bundle, cid)
        p = subprocess.run(crun.argv("exec", cid, "sh", "-c",
                                     "grep -E '^Seccomp' /proc/self/status; unshare -m true"),
                           text=True, capture_output=True, check=False, timeout=60)
        assert _field(p.stdout, "Seccomp") == "2" and _field(p.stdout, "Seccomp_filters") == "1"
        assert p.returncode != 0 and "not permitted" in p.stderr
    finally:
        crun.delete(cid)


TIMER = r"""
import json, statistics, subprocess, sys, time
crun, root, rounds, bundles = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
out = {}
for label, (cid, bundle) in bundles.items():
    create, run = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run([crun, "--root", root, "create", "--bundle", bundle, cid], check=True,
                       stdin=subprocess.DEVNULL)
        create.append(time.perf_counter() - t)
        subprocess.run([crun, "--root", root, "delete", "-f", cid], check=True)
        t = time.perf_counter()
        subprocess.run([crun, "--root", root, "run", "--bundle", bundle, cid], check=True,
                       stdin=subprocess.DEVNULL)
        run.append(time.perf_counter() - t)
        subprocess.run([crun, "--root", root, "delete", "-f", cid], check=False)
    out[label] = [statistics.median(create) * 1000, min(create) * 1000,
                  statistics.median(run) * 1000]
print(json.dumps(out))
"""


def test_create_time_with_and_without_precompiled(crun: Crun) -> None:
    """Measured and printed (run with -s to see it), not asserted."""
    bundles = {}
    for label, precompiled, kw in (("linux.seccomp", False, {}), ("precompiled", True, {}),
                                   ("unconfined", False,
                                    {"security_opt": ("seccomp=unconfined",)})):
        cid, bundle, _ = crun.bundle("true", precompiled, **kw)
        bundles[label] = (cid, str(bundle))
    try:
        p = subprocess.run(_in_runtime_ns([sys.executable, "-c", TIMER, CRUN or "crun",
                                           str(crun.state), "20", json.dumps(bundles)]),
                           text=True, capture_output=True, check=False, timeout=300)
        assert p.returncode == 0, p.stderr
    finally:
        for cid, _ in bundles.values():
            crun.delete(cid)
    for label, (create, best, run) in json.loads(p.stdout).items():
        print(f"\n{label:14s} crun create median {create:5.1f} ms (min {best:5.1f}), "
              f"crun run /bin/true median {run:5.1f} ms")
