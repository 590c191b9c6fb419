"""Precompiled seccomp BPF: the program (checked by running it in a small cBPF interpreter), the
cache, and the spec option. Needs libseccomp.so.2 (skipped without it); no root."""
from __future__ import annotations

import base64
import ctypes
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import Unavailable
from dockyard.runtime import seccomp, seccomp_bpf
from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES
from dockyard.runtime.seccomp_bpf import ANNOTATION, BpfCache, compile_bpf, precompiled_annotation
from dockyard.runtime.spec import HostFacts, SpecOptions, build_spec


def _have_libseccomp() -> bool:
    try:
        seccomp_bpf.libseccomp_version()
    except Unavailable:
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_libseccomp(), reason="needs libseccomp.so.2")

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
ALLOW, KILL_PROCESS, TRAP, LOG = 0x7FFF0000, 0x80000000, 0x00030000, 0x7FFC0000
EPERM, ENOSYS = 0x00050001, 0x00050026
X86 = ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
HOST = HostFacts(arch="x86_64", last_cap=40, host_devices=(), cap_bounding=None)


def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (),
            arch: int = AUDIT_ARCH_X86_64) -> int:
    """Evaluate a classic BPF seccomp program on ``struct seccomp_data``; the return value."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full)
    insns = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = pc = 0
    mem = [0] * 16
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls, src = code & 0x07, code & 0x08
        if cls == 0x00:  # LD
            mode = code & 0xE0
            a = (struct.unpack_from("<I", data, k)[0] if mode == 0x20 else k if mode == 0x00
                 else mem[k] if mode == 0x60 else len(data))
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k] if code & 0xE0 == 0x60 else len(data)
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            v = x if src else k
            op = code & 0xF0
            a = {0x00: a + v, 0x10: a - v, 0x20: a * v, 0x30: a // v if v else 0,
                 0x40: a | v, 0x50: a & v, 0x60: a << v, 0x70: a >> v, 0x80: -a,
                 0xA0: a ^ v}[op] & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op, v = code & 0xF0, (x if src else k)
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: a == v, 0x20: a > v, 0x30: a >= v, 0x40: bool(a & v)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x


def nr_of(name: str, arch: int = AUDIT_ARCH_X86_64) -> int:
    lib = seccomp_bpf._lib()
    fn = lib.seccomp_syscall_resolve_name_arch
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_uint32, ctypes.c_char_p]
    nr = fn(arch, name.encode())
    assert nr >= 0, name
    return int(nr)


def default_section(caps: list[str] | None = None) -> dict[str, Any]:
    return seccomp.compile_profile(seccomp.default_profile(),
                                   list(DEFAULT_CAPABILITIES if caps is None else caps), *X86)


@pytest.fixture(scope="module")
def default_program() -> bytes:
    return compile_bpf(default_section())


def test_default_profile_compiles_to_a_program(default_program: bytes) -> None:
    assert default_program and len(default_program) % 8 == 0
    assert len(default_program) <= 4096 * 8
    assert compile_bpf(default_section()) == default_program  # deterministic
    code, _, _, k = struct.unpack_from("<HBBI", default_program, 0)
    assert (code, k) == (0x20, 4)  # first: load seccomp_data.arch


@pytest.mark.parametrize("name,args,expected", [
    ("read", (), ALLOW), ("execve", (), ALLOW), ("ptrace", (), ALLOW), ("chroot", (), ALLOW),
    ("mount", (), EPERM), ("unshare", (), EPERM), ("keyctl", (), EPERM), ("add_key", (), EPERM),
    ("setns", (), EPERM), ("bpf", (), EPERM), ("kexec_load", (), EPERM), ("reboot", (), EPERM),
    ("clone3", (), ENOSYS),
    ("clone", (0x11 | 0x00100000,), ALLOW),  # SIGCHLD | CLONE_PARENT_SETTID-ish: no namespaces
    ("clone", (0x10000000,), EPERM),  # CLONE_NEWUSER
    ("clone", (0x00020000 | 0x11,), EPERM),  # CLONE_NEWNS
    ("socket", (2,), ALLOW), ("socket", (40,), EPERM),  # AF_INET; AF_VSOCK
    ("personality", (0,), ALLOW), ("personality", (0xFFFFFFFF,), ALLOW),
    ("personality", (0x0400000,), EPERM),
])
def test_default_program_verdicts(default_program: bytes, name: str, args: tuple[int, ...],
                                  expected: int) -> None:
    assert run_bpf(default_program, nr_of(name), args) == expected


def test_default_program_covers_i386_and_kills_other_arches(default_program: bytes) -> None:
    assert run_bpf(default_program, nr_of("mount", AUDIT_ARCH_I386), arch=AUDIT_ARCH_I386) == EPERM
    assert run_bpf(default_program, nr_of("read", AUDIT_ARCH_I386), arch=AUDIT_ARCH_I386) == ALLOW
    bad = run_bpf(default_program, 0, arch=0xC00000B7)  # aarch64: libseccomp's bad-arch action
    assert bad in (0, KILL_PROCESS)


def test_cap_sys_admin_changes_the_program(default_program: bytes) -> None:
    admin = compile_bpf(default_section([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]))
    assert admin != default_program
    assert run_bpf(admin, nr_of("mount")) == ALLOW
    assert run_bpf(admin, nr_of("clone"), (0x10000000,)) == ALLOW


def test_actions_errno_ret_and_same_index_args() -> None:
    section = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getpgrp"], "action": "SCMP_ACT_LOG"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # = default: skipped like crun
            # two conditions on arg 0: crun adds one rule each (OR)
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            # conditions on different args: one rule with both (AND)
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0xF0, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }
    prog = compile_bpf(section)
    assert run_bpf(prog, nr_of("mkdir")) == 0x00050000 | 38
    assert run_bpf(prog, nr_of("rmdir")) == KILL_PROCESS
    assert run_bpf(prog, nr_of("getppid")) == TRAP
    assert run_bpf(prog, nr_of("getpgrp")) == LOG
    assert run_bpf(prog, nr_of("getpid")) == ALLOW
    personality = nr_of("personality")
    assert [run_bpf(prog, personality, (v,)) for v in (1, 2, 3)] == [EPERM, EPERM, ALLOW]
    kill = nr_of("kill")
    assert [run_bpf(prog, kill, a) for a in ((1, 9), (1, 15), (2, 9))] == [EPERM, ALLOW, ALLOW]
    socket = nr_of("socket")
    assert [run_bpf(prog, socket, (v,)) for v in (0x11, 0x1F, 0x21)] == [EPERM, EPERM, ALLOW]


def test_default_errno_ret_and_trace() -> None:
    prog = compile_bpf({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["write"], "action": "SCMP_ACT_TRACE"}]})
    assert run_bpf(prog, nr_of("close")) == 0x00050000 | 38
    assert run_bpf(prog, nr_of("write")) == 0x7FF00000 | 1  # TRACE(errnoRet or EPERM), as crun
    assert run_bpf(prog, nr_of("read")) == ALLOW


# --- precompiled_annotation and the cache ---------------------------------------------------

def test_annotation_is_base64_of_the_program(tmp_path: Path, default_program: bytes) -> None:
    got = precompiled_annotation(default_section(), tmp_path / "a")
    assert got is not None and list(got) == [ANNOTATION]
    assert base64.b64decode(got[ANNOTATION], validate=True) == default_program


def test_cache_miss_then_memory_then_disk_hit(tmp_path: Path, default_program: bytes) -> None:
    directory = tmp_path / "seccomp-cache"
    cache = BpfCache(directory)
    first = cache.value(default_section())
    assert (cache.compiles, cache.hits, cache.disk_hits) == (1, 0, 0)
    files = list(directory.iterdir())
    assert [f.suffix for f in files] == [".bpf"] and files[0].read_bytes() == default_program
    assert cache.value(default_section()) == first
    assert (cache.compiles, cache.hits) == (1, 1)
    reordered = json.loads(json.dumps(default_section()), object_pairs_hook=lambda p: dict(p[::-1]))
    assert cache.value(reordered) == first and cache.hits == 2  # canonical JSON key
    other = BpfCache(directory)  # a restarted daemon: read from disk, no compile
    assert other.value(default_section()) == first
    assert (other.compiles, other.disk_hits) == (0, 1)
    cache.value(default_section(["CAP_CHOWN"]))
    assert cache.compiles == 2 and len(list(directory.glob("*.bpf"))) == 2
    assert not list(directory.glob(".tmp-*"))


def test_corrupt_cache_file_is_recompiled(tmp_path: Path, default_program: bytes) -> None:
    cache = BpfCache(tmp_path)
    key = seccomp_bpf.cache_key(default_section())
    (tmp_path / f"{key}.bpf").write_bytes(b"garbage")  # not a whole number of instructions
    assert base64.b64decode(cache.value(default_section())) == default_program
    assert cache.compiles == 1 and (tmp_path / f"{key}.bpf").read_bytes() == default_program


def test_memory_lru_is_bounded() -> None:
    cache = BpfCache(None, max_entries=2)
    for errno_ret in (1, 2, 3):
        cache.value({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno_ret})
    cache.value({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1})
    assert cache.compiles == 4 and len(cache._memory) == 2


@pytest.mark.parametrize("section", [
    {"defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
    {"defaultAction": "SCMP_ACT_NOTIFY"},
    {"defaultAction": "SCMP_ACT_ALLOW",  # crun rejects errnoRet on ALLOW: let crun say so
     "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]},
    {"defaultAction": "SCMP_ACT_BOGUS"},
    {"syscalls": []},
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]},
])
def test_unsupported_or_invalid_gives_none(section: dict[str, Any]) -> None:
    assert precompiled_annotation(section, None) is None


def test_not_for_runc_nor_without_libseccomp(monkeypatch: pytest.MonkeyPatch) -> None:
    assert precompiled_annotation(default_section(), None, runtime="runc") is None
    assert precompiled_annotation(default_section(), None, runtime="/usr/sbin/runc") is None
    assert precompiled_annotation(default_section(), None, runtime="/usr/bin/crun") is not None

    def missing() -> None:
        raise Unavailable("libseccomp is not available")
    monkeypatch.setattr(seccomp_bpf, "_lib", missing)
    monkeypatch.setattr(seccomp_bpf, "_caches", {})
    assert precompiled_annotation(default_section(), None) is None


# --- the spec option ------------------------------------------------------------------------

def spec_with(tmp_path: Path, runtime: str = "crun", **kw: Any) -> dict[str, Any]:
    opts = SpecOptions(rootfs=tmp_path, args=("/bin/sh",), **kw)
    return build_spec(opts, HOST, extra_opts=[
        seccomp_bpf.with_precompiled_seccomp(tmp_path / "cache", runtime)])


def test_spec_option_replaces_the_section(tmp_path: Path, default_program: bytes) -> None:
    plain = build_spec(SpecOptions(rootfs=tmp_path, args=("/bin/sh",)), HOST)
    spec = spec_with(tmp_path, annotations={"x": "y"})
    assert "seccomp" not in spec["linux"]
    assert spec["annotations"]["x"] == "y"
    assert base64.b64decode(spec["annotations"][ANNOTATION]) == compile_bpf(
        plain["linux"]["seccomp"])
    assert list(spec).index("annotations") < list(spec).index("linux")  # canonical order
    assert json.loads(json.dumps(spec)) == spec


def test_spec_option_leaves_other_cases_alone(tmp_path: Path) -> None:
    assert "seccomp" in spec_with(tmp_path, runtime="runc")["linux"]
    assert ANNOTATION not in spec_with(tmp_path, runtime="runc").get("annotations", {})
    assert ANNOTATION not in spec_with(tmp_path, privileged=True).get("annotations", {})
    unconfined = spec_with(tmp_path, security_opt=("seccomp=unconfined",))
    assert ANNOTATION not in unconfined.get("annotations", {})
    own = spec_with(tmp_path, annotations={ANNOTATION: "AAAA"})
    assert own["annotations"][ANNOTATION] == "AAAA" and "seccomp" in own["linux"]
    strict = spec_with(tmp_path, annotations={"run.oci.seccomp_fail_unknown_syscall": "1"})
    assert ANNOTATION not in strict["annotations"] and "seccomp" in strict["linux"]
    notify = {"defaultAction": "SCMP_ACT_NOTIFY"}
    kept = spec_with(tmp_path, security_opt=("seccomp=" + json.dumps(notify),))
    assert kept["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_NOTIFY"
    assert ANNOTATION not in kept.get("annotations", {})


def test_spec_option_keeps_a_section_with_flags(tmp_path: Path) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    spec = spec_with(tmp_path, security_opt=("seccomp=" + json.dumps(profile),))
    assert spec["linux"]["seccomp"]["flags"] == ["SECCOMP_FILTER_FLAG_LOG"]
    assert ANNOTATION in spec["annotations"]
