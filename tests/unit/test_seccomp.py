from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime import seccomp
from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES, all_capabilities
from dockyard.runtime.spec import HostFacts, SpecOptions, build_spec

X86 = ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
ARM = ("arm64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])

BLOCKED_BY_DEFAULT = [
    "keyctl", "add_key", "request_key", "mount", "umount2", "unshare", "setns", "reboot",
    "swapon", "swapoff", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "bpf", "perf_event_open", "open_by_handle_at", "name_to_handle_at",
    "pivot_root", "acct", "clock_settime", "settimeofday", "iopl", "ioperm", "lookup_dcookie",
    "userfaultfd", "quotactl", "nfsservctl", "syslog", "vm86", "vm86old", "kcmp", "move_pages",
    "mbind", "get_mempolicy", "set_mempolicy", "fanotify_init", "io_uring_setup", "uselib",
    "create_module", "sysfs", "_sysctl", "ustat", "vhangup", "fsopen", "open_tree", "clone",
    "clone3", "personality", "socket", "arm_fadvise64_64",
]
ALLOWED_BY_DEFAULT = [
    "read", "write", "openat", "execve", "exit_group", "futex", "mmap", "rt_sigaction", "wait4",
    "chroot", "ptrace", "process_vm_readv", "arch_prctl", "modify_ldt", "statx", "rseq",
    "faccessat2", "close_range", "pidfd_open", "fanotify_mark", "setuid", "capset",
]


def compiled(caps=DEFAULT_CAPABILITIES, arch=X86) -> dict:
    return seccomp.compile_profile(seccomp.default_profile(), list(caps), *arch)


def rules_for(profile: dict, name: str) -> list[dict]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_default_action_is_eperm() -> None:
    p = compiled()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == X86[1]
    assert compiled(arch=ARM)["architectures"] == ARM[1]


@pytest.mark.parametrize("name", BLOCKED_BY_DEFAULT)
def test_blocked_without_caps(name: str) -> None:
    assert name not in seccomp.allowed_syscalls(compiled())


@pytest.mark.parametrize("name", ALLOWED_BY_DEFAULT)
def test_allowed(name: str) -> None:
    assert name in seccomp.allowed_syscalls(compiled())


def test_names_are_unique_in_base_list() -> None:
    base = seccomp.default_profile()["syscalls"][0]["names"]
    assert len(base) == len(set(base))


def test_clone_masks_namespace_flags_without_sys_admin() -> None:
    (rule,) = rules_for(compiled(), "clone")
    assert rule["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]
    (c3,) = rules_for(compiled(), "clone3")
    assert c3["action"] == "SCMP_ACT_ERRNO" and c3["errnoRet"] == 38


def test_sys_admin_opens_mount_family() -> None:
    p = compiled([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    allowed = seccomp.allowed_syscalls(p)
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3", "fanotify_init",
                 "name_to_handle_at", "sethostname", "bpf", "perf_event_open"):
        assert name in allowed
    assert all("args" not in r for r in rules_for(p, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(p, "clone3"))


@pytest.mark.parametrize("cap,names", [
    ("CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_TIME", ["settimeofday", "clock_settime"]),
    ("CAP_SYS_NICE", ["mbind", "move_pages", "get_mempolicy", "set_mempolicy"]),
    ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
    ("CAP_SYS_BOOT", ["reboot"]),
    ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
    ("CAP_SYS_PACCT", ["acct"]),
    ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
    ("CAP_SYSLOG", ["syslog"]),
    ("CAP_BPF", ["bpf"]),
    ("CAP_PERFMON", ["perf_event_open"]),
])
def test_capability_gated(cap: str, names: list[str]) -> None:
    allowed = seccomp.allowed_syscalls(compiled([*DEFAULT_CAPABILITIES, cap]))
    for name in names:
        assert name in allowed


def test_chroot_needs_sys_chroot() -> None:
    caps = [c for c in DEFAULT_CAPABILITIES if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in seccomp.allowed_syscalls(compiled(caps))


def test_never_allowed_even_with_all_caps() -> None:
    allowed = seccomp.allowed_syscalls(compiled(all_capabilities(40)))
    for name in ("keyctl", "add_key", "request_key", "kexec_load", "swapon", "pivot_root",
                 "userfaultfd", "nfsservctl", "vm86", "io_uring_setup"):
        assert name not in allowed


def test_personality_values() -> None:
    values = sorted(r["args"][0]["value"] for r in rules_for(compiled(), "personality"))
    assert values == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]


def test_socket_denies_vsock_only() -> None:
    (rule,) = rules_for(compiled(), "socket")
    assert rule["args"] == [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]


def test_arch_specific() -> None:
    arm = seccomp.allowed_syscalls(compiled(arch=ARM))
    assert "set_tls" in arm and "arch_prctl" not in arm and "modify_ldt" not in arm
    x86 = seccomp.allowed_syscalls(compiled())
    assert "set_tls" not in x86 and "arch_prctl" in x86


def test_compile_accepts_name_and_oci_form() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"name": "chmod", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    assert seccomp.compile_profile(profile, [], *X86) == {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}


def test_compile_errors() -> None:
    with pytest.raises(InvalidArgument, match="use either 'name' or 'names'"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}, [], *X86)
    with pytest.raises(InvalidArgument, match="use either 'architectures' or 'archMap'"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x"],
                                 "archMap": [{"architecture": "x"}]}, [], *X86)
    with pytest.raises(InvalidArgument, match="defaultAction"):
        seccomp.compile_profile({}, [], *X86)


def test_load_profile(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    assert seccomp.load_profile(str(f)) == {"defaultAction": "SCMP_ACT_ALLOW"}
    assert seccomp.load_profile('{"defaultAction": "SCMP_ACT_LOG"}')["defaultAction"] == \
        "SCMP_ACT_LOG"
    with pytest.raises(InvalidArgument, match="opening seccomp profile"):
        seccomp.load_profile(str(tmp_path / "missing.json"))
    f.write_text("{nope")
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        seccomp.load_profile(str(f))
    f.write_text("[1]")
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        seccomp.load_profile(str(f))


HOST = HostFacts(arch="x86_64", last_cap=40, host_devices=())


def _spec(tmp_path: Path, **kw) -> dict:
    return build_spec(SpecOptions(rootfs=tmp_path, args=("sh",), **kw), HOST)


def test_spec_default_and_disabled(tmp_path: Path) -> None:
    assert _spec(tmp_path)["linux"]["seccomp"]["defaultErrnoRet"] == 1
    assert _spec(tmp_path, security_opt=("seccomp=builtin",))["linux"]["seccomp"] == \
        _spec(tmp_path)["linux"]["seccomp"]
    assert "seccomp" not in _spec(tmp_path, privileged=True)["linux"]
    assert "seccomp" not in _spec(tmp_path, security_opt=("seccomp=unconfined",))["linux"]
    assert "seccomp" not in _spec(tmp_path, privileged=True,
                                  security_opt=("seccomp=/nonexistent",))["linux"]


def test_spec_custom_profile_uses_bounding_set(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO",
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    spec = _spec(tmp_path, security_opt=(f"seccomp={f}",))
    assert spec["linux"]["seccomp"]["syscalls"][0]["names"] == ["mount"]
    spec = _spec(tmp_path, security_opt=(f"seccomp={f}",), cap_add=("SYS_ADMIN",))
    assert spec["linux"]["seccomp"]["syscalls"] == []
