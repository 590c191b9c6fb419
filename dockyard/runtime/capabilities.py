"""Linux capabilities with Docker's names, defaults and ``--cap-add``/``--cap-drop`` rules.

Names are always returned in the ``CAP_*`` form the OCI runtime spec uses. ``tweak`` follows
moby's ``caps.TweakCapabilities``: privileged gets everything, ``ALL`` in add means "all but the
dropped ones", ``ALL`` in drop means "only the added ones", otherwise defaults minus drop plus add.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from dockyard.errors import InvalidArgument

ALL = "ALL"

# Index = capability number, as in linux/capability.h (CAP_LAST_CAP is 40 since Linux 5.9).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",  # 5
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",  # 40
)

# Docker's default set, in Docker's order (oci/caps/defaults.go).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

_CAP_LAST_CAP = Path("/proc/sys/kernel/cap_last_cap")


def kernel_last_cap(path: Path = _CAP_LAST_CAP) -> int:
    """The highest capability number the running kernel knows (all names if unreadable)."""
    try:
        return min(int(path.read_text().strip()), len(CAPABILITY_NAMES) - 1)
    except (OSError, ValueError):
        return len(CAPABILITY_NAMES) - 1


def all_capabilities(last_cap: int | None = None, bounding_mask: int | None = None) -> list[str]:
    """Every capability the kernel supports (what ``--privileged`` and ``--cap-add ALL`` get),
    limited to ``bounding_mask`` (the engine's own bounding set) when given: a runtime cannot
    grant a capability its caller lacks."""
    last = kernel_last_cap() if last_cap is None else last_cap
    names = CAPABILITY_NAMES[: last + 1]
    if bounding_mask is None:
        return list(names)
    return [n for i, n in enumerate(names) if bounding_mask >> i & 1]


def process_bounding_mask(status: Path = Path("/proc/self/status")) -> int | None:
    """CapBnd of this process, None if unreadable."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    return None


def normalize(name: str) -> str:
    """``net_admin``/``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``all`` -> ``ALL``; an unknown name
    -> InvalidArgument."""
    upper = name.strip().upper()
    if upper == ALL:
        return ALL
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITY_NAMES:
        raise InvalidArgument(f'unknown capability: "{upper}"')
    return upper


def normalize_list(names: Iterable[str]) -> list[str]:
    """Normalise each name, dropping duplicates but keeping first-seen order."""
    out: list[str] = []
    for name in names:
        cap = normalize(name)
        if cap not in out:
            out.append(cap)
    return out


def tweak(
    defaults: Sequence[str],
    add: Iterable[str] = (),
    drop: Iterable[str] = (),
    *,
    privileged: bool = False,
    last_cap: int | None = None,
    bounding_mask: int | None = None,
) -> list[str]:
    """The effective capability list for a container, with Docker's semantics and errors.

    Names are validated even when privileged; the result only holds capabilities the kernel
    (``last_cap``) and the engine (``bounding_mask``) have."""
    cap_add = normalize_list(add)
    cap_drop = normalize_list(drop)
    everything = all_capabilities(last_cap, bounding_mask)
    if privileged:
        return everything
    supported = set(everything)
    if not cap_add and not cap_drop:
        return [c for c in defaults if c in supported]
    if ALL in cap_add:
        return [c for c in everything if c not in cap_drop]
    if ALL in cap_drop:
        caps = list(cap_add)
    else:
        caps = [c for c in defaults if c not in cap_drop]
        caps += [c for c in cap_add if c not in caps]
    # A name this library knows but the running kernel does not: the runtime would refuse it.
    return [c for c in caps if c in supported]


def capability_mask(caps: Iterable[str]) -> int:
    """The bitmask ``/proc/<pid>/status`` shows for these capabilities (e.g. CapEff)."""
    mask = 0
    for cap in caps:
        mask |= 1 << CAPABILITY_NAMES.index(normalize(cap))
    return mask
