"""Precompiled seccomp for crun: the ``run.oci.seccomp_bpf_data`` annotation.

``crun create`` otherwise compiles ``linux.seccomp`` with libseccomp on every start (~10 ms for
Docker's default profile; crun 1.8.1 has no cache for it). crun (since containers/crun#578; checked
with 1.8.1) accepts the finished program as the annotation ``run.oci.seccomp_bpf_data``: standard
base64 (RFC 4648, padded) of the raw ``struct sock_filter`` array. crun writes it to
``<state>/<id>/seccomp.bpf`` and loads it with ``seccomp(SECCOMP_SET_MODE_FILTER)`` instead of
compiling, at the same point and under the same no_new_privs rules as a compiled one; ``crun exec``
loads that file too (it never recompiles). With the annotation crun ignores the section except for
its ``flags``.

``compile_bpf`` builds the program the way crun's ``libcrun_generate_seccomp`` does, with the same
libseccomp (through ctypes), so the bytes are identical to what crun would have produced. Results
are cached in memory (LRU) and on disk (``<cache_dir>/<sha256>.bpf``), keyed by the canonical JSON
of the section plus the libseccomp version and kernel (whose features change the program).
runc does not know the annotation: never use it there.
"""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument, NotImplementedYet, Unavailable
from dockyard.runtime.spec_types import SpecOptions

ANNOTATION = "run.oci.seccomp_bpf_data"
# crun annotations that change how the section is compiled or loaded: leave those to crun.
_CRUN_SECCOMP_ANNOTATIONS = ("run.oci.seccomp_fail_unknown_syscall", "run.oci.seccomp.receiver",
                             "run.oci.seccomp.plugins")
_FORMAT = "dockyard-seccomp-bpf-1"  # bump when the cache key or file format changes
MEMORY_ENTRIES = 32
DISK_ENTRIES = 256

_CMP = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ACTIONS = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_KILL": 0x00000000,
            "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
            "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_LOG": 0x7FFC0000}
_WITH_ERRNO = {"SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000}
_U64 = (1 << 64) - 1


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


@cache
def _lib() -> ctypes.CDLL:
    """libseccomp.so.2, loaded on first use (crun links the same library)."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise Unavailable(f"libseccomp is not available: {exc}") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.restype = None
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    lib.seccomp_version.argtypes = []
    return lib


def libseccomp_version() -> str:
    v = _lib().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _action(name: Any, errno_ret: int) -> int:
    """crun's get_seccomp_action. NOTIFY needs crun's listener plumbing: not precompiled."""
    if name in _WITH_ERRNO:
        return _WITH_ERRNO[name] | (errno_ret & 0xFFFF)
    if name in _ACTIONS:
        return _ACTIONS[name]
    if name == "SCMP_ACT_NOTIFY":
        raise NotImplementedYet("SCMP_ACT_NOTIFY cannot be precompiled")
    raise InvalidArgument(f"seccomp get action `{name}`")


def _errno_ret(holder: Mapping[str, Any], key: str, action: Any) -> int:
    if holder.get(key) is None:
        return errno.EPERM
    if action not in _WITH_ERRNO:
        raise InvalidArgument(f"errno value specified for action `{action}`")
    return int(holder[key])


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise InvalidArgument(f"{what}: {os.strerror(-ret)}")


def _arg_cmps(args: list[Mapping[str, Any]]) -> tuple[list[_ArgCmp], bool]:
    """The comparisons (crun looks at 6 at most) and whether an index repeats."""
    cmps, seen, repeated = [], set(), False
    for arg in args[:6]:
        index = int(arg.get("index", 0))
        if not 0 <= index < 6:
            raise InvalidArgument(f"invalid seccomp index {index}")
        repeated = repeated or index in seen
        seen.add(index)
        if arg.get("op") not in _CMP:
            raise InvalidArgument(f"seccomp get operator `{arg.get('op')}`")
        a, b = int(arg.get("value", 0)), int(arg.get("valueTwo", 0))
        if not (0 <= a <= _U64 and 0 <= b <= _U64):
            raise InvalidArgument("seccomp argument value out of range")
        cmps.append(_ArgCmp(index, _CMP[arg["op"]], a, b))
    return cmps, repeated


def _add_rules(lib: ctypes.CDLL, ctx: int, rule: Mapping[str, Any], default_action: int) -> None:
    act = rule.get("action")
    action = _action(act, _errno_ret(rule, "errnoRet", act))
    if action == default_action:
        return  # crun skips these (libseccomp would refuse them)
    args = rule.get("args")
    cmps, repeated = _arg_cmps(list(args)) if args is not None else ([], False)
    for name in rule.get("names") or []:
        nr = lib.seccomp_syscall_resolve_name(str(name).encode())
        if nr == -1:  # __NR_SCMP_ERROR: crun warns and ignores unknown names
            continue
        if not repeated:
            array = (_ArgCmp * max(len(cmps), 1))(*cmps)
            _check(lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array),
                   f"seccomp_rule_add `{name}`")
            continue
        for cmp in cmps:  # several conditions on one argument: one rule per condition
            single = (_ArgCmp * 1)(cmp)
            _check(lib.seccomp_rule_add_array(ctx, action, nr, 1, single),
                   "seccomp_rule_add_array")


def compile_bpf(section: Mapping[str, Any]) -> bytes:
    """The BPF program crun's libcrun_generate_seccomp would produce for this ``linux.seccomp``.

    Raises InvalidArgument for sections crun would reject, NotImplementedYet for actions that
    cannot be precompiled, Unavailable without libseccomp."""
    lib = _lib()
    default = section.get("defaultAction")
    if default is None:
        raise InvalidArgument("seccomp misses the default action")
    default_action = _action(default, _errno_ret(section, "defaultErrnoRet", default))
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise InvalidArgument("error seccomp_init")
    try:
        for arch in section.get("architectures") or []:
            short = str(arch).removeprefix("SCMP_ARCH_")[:31].lower()
            token = lib.seccomp_arch_resolve_name(short.encode())
            if token == 0:
                raise InvalidArgument(f"seccomp unknown architecture `{arch}`")
            ret = lib.seccomp_arch_add(ctx, token)
            if ret != -errno.EEXIST:
                _check(ret, "seccomp adding architecture")
        for rule in section.get("syscalls") or []:
            _add_rules(lib, ctx, rule, default_action)
        fd = os.memfd_create("dockyard-seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _valid_program(data: bytes) -> bool:
    return 0 < len(data) <= 4096 * 8 and len(data) % 8 == 0  # BPF_MAXINSNS sock_filters


def cache_key(section: Mapping[str, Any]) -> str:
    """sha256 of the canonical section and of what else shapes the program."""
    uname = os.uname()
    text = json.dumps([_FORMAT, libseccomp_version(), uname.release, uname.version,
                       uname.machine, section], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class BpfCache:
    """In-memory LRU of annotation values, backed by ``<directory>/<key>.bpf`` files."""

    def __init__(self, directory: Path | None, max_entries: int = MEMORY_ENTRIES) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.hits = self.disk_hits = self.compiles = 0
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def value(self, section: Mapping[str, Any]) -> str:
        """The annotation value for ``section`` (errors as ``compile_bpf``)."""
        key = cache_key(section)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._memory[key]
        program = self._read(key)
        if program is None:
            program = compile_bpf(section)
            self._write(key, program)
            self.compiles += 1
        else:
            self.disk_hits += 1
        value = base64.b64encode(program).decode("ascii")
        with self._lock:
            self._memory[key] = value
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        return value

    def _read(self, key: str) -> bytes | None:
        if self.directory is None:
            return None
        try:
            data = (self.directory / f"{key}.bpf").read_bytes()
        except OSError:
            return None
        return data if _valid_program(data) else None

    def _write(self, key: str, program: bytes) -> None:
        """Atomic (temp file + rename); a cache that cannot be written is only slower."""
        if self.directory is None:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(program)
                os.replace(tmp, self.directory / f"{key}.bpf")
            except BaseException:
                os.unlink(tmp)
                raise
            self._prune()
        except OSError:
            pass

    def _prune(self) -> None:
        assert self.directory is not None
        files = sorted(self.directory.glob("*.bpf"), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - DISK_ENTRIES)]:
            old.unlink(missing_ok=True)


_caches: dict[Path | None, BpfCache] = {}
_caches_lock = threading.Lock()


def shared_cache(cache_dir: Path | None) -> BpfCache:
    """One cache per directory per process."""
    with _caches_lock:
        if cache_dir not in _caches:
            _caches[cache_dir] = BpfCache(cache_dir)
        return _caches[cache_dir]


def is_crun(runtime: str | os.PathLike[str]) -> bool:
    """A runtime name (``crun``) or binary path (``/usr/bin/crun``) that is crun."""
    return Path(runtime).name == "crun"


def precompiled_annotation(seccomp_section: Mapping[str, Any], cache_dir: Path | None = None,
                           *, runtime: str | os.PathLike[str] = "crun",
                           ) -> dict[str, str] | None:
    """``{ANNOTATION: base64 program}``, or None when crun should compile the section itself:
    the runtime is not crun, libseccomp is missing, NOTIFY, or crun would reject the section."""
    if not is_crun(runtime):
        return None
    try:
        return {ANNOTATION: shared_cache(cache_dir).value(seccomp_section)}
    except (DockyardError, ValueError, TypeError, AttributeError):
        return None


SpecOpt = Callable[[dict[str, Any], SpecOptions], None]


def with_precompiled_seccomp(cache_dir: Path | None,
                             runtime: str | os.PathLike[str] = "crun") -> SpecOpt:
    """A spec option (apply after the default ones) replacing ``linux.seccomp`` with the
    annotation. The section stays when it sets ``flags`` (crun reads them only from there; with
    the annotation present it still does not compile it)."""
    def opt(spec: dict[str, Any], opts: SpecOptions) -> None:
        section = (spec.get("linux") or {}).get("seccomp")
        annotations = spec.get("annotations") or {}
        if section is None or ANNOTATION in annotations \
                or any(a in annotations for a in _CRUN_SECCOMP_ANNOTATIONS):
            return
        precompiled = precompiled_annotation(section, cache_dir, runtime=runtime)
        if precompiled is None:
            return
        spec["annotations"] = {**annotations, **precompiled}
        if section.get("flags") is None:  # crun: no flags -> SECCOMP_FILTER_FLAG_SPEC_ALLOW
            del spec["linux"]["seccomp"]
    return opt
