"""Seccomp: a default profile equivalent in effect to Docker's, and its compilation to OCI form.

Profiles use Docker's JSON format (``archMap``; rules with ``includes``/``excludes`` on caps and
arches). ``compile_profile`` resolves those conditions against the container's bounding set and
the host arch, like moby's ``setupSeccomp``, giving the ``linux.seccomp`` object of config.json.
Everything not listed fails with EPERM; ``clone3`` without CAP_SYS_ADMIN fails with ENOSYS so
libc falls back to ``clone``, whose namespace flags are masked off.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument

EPERM = 1
ENOSYS = 38
AF_VSOCK = 40
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000

_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr listxattrat
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync
munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
ptrace process_vm_readv process_vm_writev
""".split()

# Allowed only when the bounding set holds the capability (same order as Docker's profile).
_BY_CAPABILITY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
    ("CAP_SYS_ADMIN", ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                       "fspick", "listmount", "lookup_dcookie", "mount", "mount_setattr",
                       "move_mount", "name_to_handle_at", "open_tree", "perf_event_open",
                       "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
                       "statmount", "syslog", "umount", "umount2", "unshare")),
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_CHROOT", ("chroot",)),
    ("CAP_SYS_MODULE", ("delete_module", "init_module", "finit_module")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                        "process_vm_writev", "ptrace")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "stime", "clock_settime", "clock_settime64")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("get_mempolicy", "mbind", "move_pages", "set_mempolicy",
                      "set_mempolicy_home_node")),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
)

_BY_ARCH: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("arm", "arm64"), ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                        "breakpoint", "cacheflush", "set_tls")),
    (("amd64", "x32"), ("arch_prctl",)),
    (("amd64", "x32", "386"), ("modify_ldt",)),
)

_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # LINUX, LINUX32, UNAME26, query

_ARCH_MAP = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
)


def _arg(index: int, value: int, op: str) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": 0, "op": op}


def _allow(names: Sequence[str], **extra: Any) -> dict[str, Any]:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", **extra}


def default_profile() -> dict[str, Any]:
    """The default profile in Docker's profile format (conditions not yet resolved)."""
    rules: list[dict[str, Any]] = [_allow(_ALLOWED)]
    rules.append(_allow(["socket"], args=[_arg(0, AF_VSOCK, "SCMP_CMP_NE")]))
    rules += [_allow(["personality"], args=[_arg(0, p, "SCMP_CMP_EQ")]) for p in _PERSONALITIES]
    rules += [_allow(names, includes={"arches": list(arches)}) for arches, names in _BY_ARCH]
    rules += [_allow(names, includes={"caps": [cap]}) for cap, names in _BY_CAPABILITY]
    rules.append(_allow(["clone"], args=[_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
                        excludes={"caps": ["CAP_SYS_ADMIN"]}))
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [{"architecture": a, "subArchitectures": list(s)} for a, s in _ARCH_MAP],
        "syscalls": rules,
    }


def _applies(rule: Mapping[str, Any], caps: set[str], go_arch: str) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if exc.get("arches") and go_arch in exc["arches"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    return True


def compile_profile(profile: Mapping[str, Any], bounding: Sequence[str], go_arch: str,
                    seccomp_arches: Sequence[str]) -> dict[str, Any]:
    """OCI ``linux.seccomp`` from a Docker-format (or already OCI-format) profile."""
    if not isinstance(profile, Mapping) or "defaultAction" not in profile:
        raise InvalidArgument("Decoding seccomp profile failed: missing defaultAction")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("'architectures' and 'archMap' were specified in the seccomp "
                              "profile, use either 'architectures' or 'archMap'")
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") in seccomp_arches:
            arches += [entry["architecture"], *entry.get("subArchitectures", [])]
    if arches:
        out["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    caps = set(bounding)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        names = list(rule.get("names") or [])
        if rule.get("name"):
            if names:
                raise InvalidArgument("'name' and 'names' were specified in the seccomp "
                                      "profile, use either 'name' or 'names'")
            names = [rule["name"]]
        if not _applies(rule, caps, go_arch):
            continue
        new: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            new["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            new["args"] = [{"index": a["index"], "value": a.get("value", 0),
                            "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                           for a in rule["args"]]
        syscalls.append(new)
    out["syscalls"] = syscalls
    return out


def load_profile(value: str) -> dict[str, Any]:
    """``--security-opt seccomp=VALUE``: inline JSON (what the docker CLI sends) or a file path."""
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise InvalidArgument(f"opening seccomp profile ({value}) failed: "
                                  f"{exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument("Decoding seccomp profile failed: not a JSON object")
    return data


def allowed_syscalls(oci: Mapping[str, Any]) -> set[str]:
    """Names an OCI seccomp object allows unconditionally (rules without args)."""
    return {n for r in oci.get("syscalls", []) if r["action"] == "SCMP_ACT_ALLOW"
            and not r.get("args") for n in r["names"]}
