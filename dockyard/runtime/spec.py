"""Build the OCI runtime config.json for a container, as Docker (moby's ``createSpec``) would.

The spec is made by applying small "spec options" in order, like containerd's ``oci.SpecOpts``:
each is ``(spec: dict, opts: SpecOptions) -> None`` and edits the dict in place. Those that
depend on the host take a ``HostFacts`` and are bound with ``functools.partial``.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.runtime import capabilities, seccomp
from dockyard.runtime.spec_devices import spec_devices
from dockyard.runtime.spec_mounts import (DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS,
                                          INIT_PATH_IN_CONTAINER, container_mounts,
                                          rootfs_propagation)
from dockyard.runtime.spec_resources import resources_to_oci, rlimits
from dockyard.runtime.spec_types import HostFacts, Mount, Resources, SpecOptions, Ulimit
from dockyard.runtime.spec_user import process_user, resolve_user

__all__ = ["OCI_VERSION", "HostFacts", "Mount", "Resources", "SecurityOptions", "SpecOpt",
           "SpecOptions", "Ulimit", "build_spec", "default_spec_opts", "parse_security_opts",
           "resolve_user"]

OCI_VERSION = "1.0.2-dev"
SpecOpt = Callable[[dict[str, Any], SpecOptions], None]


@dataclass(frozen=True)
class SecurityOptions:
    """``--security-opt`` parsed. seccomp: None or "builtin" = the default profile,
    "unconfined" = none, else a profile (inline JSON, as the docker CLI sends it, or a path)."""

    no_new_privileges: bool = False
    seccomp: str | None = None
    unconfined_paths: bool = False


_BOOL = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def parse_security_opts(values: Iterable[str]) -> SecurityOptions:
    """Docker's parseSecurityOpt. label/apparmor are accepted and ignored (no LSM here)."""
    nnp, profile, unconfined_paths = False, None, False
    for opt in values:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, value = opt.split(sep, 1)
        if key == "no-new-privileges":
            if value.lower() not in _BOOL:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            nnp = _BOOL[value.lower()]
        elif key == "seccomp":
            if not value:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            profile = value
        elif key == "systempaths" and value == "unconfined":
            unconfined_paths = True
        elif key not in ("label", "apparmor"):
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return SecurityOptions(nnp, profile, unconfined_paths)


# --- namespaces ------------------------------------------------------------------------------

_NEW = {"", "new", "private", "default"}


def namespace_mode(kind: str, value: str) -> str:
    """``new``, ``host`` or an absolute namespace path for one ``--<kind>`` mode."""
    if value.startswith("/"):
        return posixpath.normpath(value)
    if value == "host":
        return "host"
    if value in _NEW or (kind == "ipc" and value in ("shareable", "none")) \
            or (kind == "network" and not value.startswith("container:")):
        return "new"  # a user-defined network name also gets its own namespace
    if value.startswith("container:"):
        raise InvalidArgument(f"{kind} mode {value!r}: resolve the container to a namespace path")
    raise InvalidArgument(f"invalid {kind} mode: {value}")


def _namespaces(opts: SpecOptions) -> list[dict[str, str]]:
    modes = [("mount", "private"), ("network", opts.network), ("uts", opts.uts),
             ("pid", opts.pid), ("ipc", opts.ipc), ("cgroup", opts.cgroupns)]
    out = []
    for kind, value in modes:
        mode = namespace_mode(kind, value)
        if mode == "new":
            out.append({"type": kind})
        elif mode != "host":
            out.append({"type": kind, "path": mode})
    return out


# --- spec options ----------------------------------------------------------------------------

def with_defaults(spec: dict[str, Any], opts: SpecOptions) -> None:
    spec.update({"ociVersion": OCI_VERSION, "process": {}, "root": {}, "mounts": [],
                 "linux": {"resources": {}}})


def with_root(spec: dict[str, Any], opts: SpecOptions) -> None:
    spec["root"] = {"path": str(opts.rootfs)}
    if opts.readonly_rootfs:
        spec["root"]["readonly"] = True


def with_process(spec: dict[str, Any], opts: SpecOptions) -> None:
    if not opts.args:
        raise InvalidArgument("No command specified")
    cwd = opts.cwd or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an "
                              "absolute path")
    proc = spec["process"]
    if opts.tty:
        proc["terminal"] = True
    if opts.console_size and (opts.console_size[0] > 0 or opts.console_size[1] > 0):
        proc["consoleSize"] = {"height": opts.console_size[0], "width": opts.console_size[1]}
    args = list(opts.args)
    if opts.init_path is not None:
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
    proc.update({"args": args, "env": list(opts.env), "cwd": cwd})


def with_hostname(spec: dict[str, Any], opts: SpecOptions) -> None:
    if namespace_mode("uts", opts.uts) == "host":
        return
    if opts.hostname:
        spec["hostname"] = opts.hostname
    if opts.domainname:  # Docker sets the NIS domain through this sysctl, not "domainname"
        spec["linux"].setdefault("sysctl", {})["kernel.domainname"] = opts.domainname


def with_user(spec: dict[str, Any], opts: SpecOptions) -> None:
    spec["process"]["user"] = process_user(opts.rootfs, opts.user, opts.group_add)


def with_capabilities(spec: dict[str, Any], opts: SpecOptions, host: HostFacts) -> None:
    caps = capabilities.tweak(capabilities.DEFAULT_CAPABILITIES, opts.cap_add, opts.cap_drop,
                              privileged=opts.privileged, last_cap=host.last_cap,
                              bounding_mask=host.cap_bounding)
    if spec["process"]["user"]["uid"] == 0:
        spec["process"]["capabilities"] = {"bounding": caps, "effective": list(caps),
                                           "permitted": list(caps)}
    else:  # a non-root process starts with no effective caps; only the bounding set is kept
        spec["process"]["capabilities"] = {"bounding": caps}


def with_rlimits(spec: dict[str, Any], opts: SpecOptions, host: HostFacts) -> None:
    spec["process"]["rlimits"] = rlimits(opts.ulimits, host.default_nofile)


def with_security(spec: dict[str, Any], opts: SpecOptions) -> None:
    if parse_security_opts(opts.security_opt).no_new_privileges:
        spec["process"]["noNewPrivileges"] = True


def with_oom_score_adj(spec: dict[str, Any], opts: SpecOptions) -> None:
    if not -1000 <= opts.oom_score_adj <= 1000:
        raise InvalidArgument(f"Invalid value {opts.oom_score_adj}, range for oom score adj is "
                              "[-1000, 1000]")
    spec["process"]["oomScoreAdj"] = opts.oom_score_adj


def with_mounts(spec: dict[str, Any], opts: SpecOptions) -> None:
    spec["mounts"] = container_mounts(
        shm_size=opts.shm_size, user_mounts=opts.mounts, tmpfs=opts.tmpfs,
        ipc_mode="host" if namespace_mode("ipc", opts.ipc) == "host" else opts.ipc,
        readonly_rootfs=opts.readonly_rootfs, privileged=opts.privileged,
        init_source=None if opts.init_path is None else str(opts.init_path))
    propagation = rootfs_propagation(opts.mounts)
    if propagation:
        spec["linux"]["rootfsPropagation"] = propagation


def with_masked_paths(spec: dict[str, Any], opts: SpecOptions) -> None:
    if opts.privileged or parse_security_opts(opts.security_opt).unconfined_paths:
        return
    masked = DEFAULT_MASKED_PATHS if opts.masked_paths is None else opts.masked_paths
    readonly = DEFAULT_READONLY_PATHS if opts.readonly_paths is None else opts.readonly_paths
    if masked:
        spec["linux"]["maskedPaths"] = list(masked)
    if readonly:
        spec["linux"]["readonlyPaths"] = list(readonly)


def with_namespaces(spec: dict[str, Any], opts: SpecOptions) -> None:
    spec["linux"]["namespaces"] = _namespaces(opts)


_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


def check_sysctl(key: str, opts: SpecOptions) -> None:
    """runc's rule: only sysctls of namespaces the container owns."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if namespace_mode("ipc", opts.ipc) == "host":
            raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
    elif key.startswith("net."):
        if namespace_mode("network", opts.network) == "host":
            raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
    elif key in ("kernel.hostname", "kernel.domainname"):
        if namespace_mode("uts", opts.uts) == "host":
            raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts uts namespace')
    else:
        raise InvalidArgument(f'sysctl "{key}" is not in a separate kernel namespace')


def with_sysctls(spec: dict[str, Any], opts: SpecOptions) -> None:
    for key, value in opts.sysctls.items():
        check_sysctl(key, opts)
        spec["linux"].setdefault("sysctl", {})[key] = str(value)


def with_resources(spec: dict[str, Any], opts: SpecOptions, host: HostFacts) -> None:
    spec["linux"]["resources"].update(resources_to_oci(opts.resources, host.swap_limit))


def with_devices(spec: dict[str, Any], opts: SpecOptions, host: HostFacts) -> None:
    nodes = None if host.host_devices is None else [dict(d) for d in host.host_devices]
    devices, rules = spec_devices(opts.devices, opts.device_cgroup_rules, opts.privileged, nodes)
    if devices:
        spec["linux"]["devices"] = devices
    spec["linux"]["resources"]["devices"] = rules


def with_cgroups_path(spec: dict[str, Any], opts: SpecOptions) -> None:
    if opts.cgroups_path:
        spec["linux"]["cgroupsPath"] = opts.cgroups_path


def with_seccomp(spec: dict[str, Any], opts: SpecOptions, host: HostFacts) -> None:
    """After capabilities: the profile's cap-gated rules follow the bounding set."""
    profile = parse_security_opts(opts.security_opt).seccomp
    if opts.privileged or profile == "unconfined":
        return
    builtin = profile is None or profile == "builtin"  # Docker's name for its default profile
    source = seccomp.default_profile() if builtin else seccomp.load_profile(profile or "")
    spec["linux"]["seccomp"] = seccomp.compile_profile(
        source, spec["process"]["capabilities"]["bounding"], host.go_arch, host.seccomp_arches)


def with_annotations(spec: dict[str, Any], opts: SpecOptions) -> None:
    if opts.annotations:
        spec["annotations"] = dict(opts.annotations)


def default_spec_opts(host: HostFacts) -> list[SpecOpt]:
    """The options ``build_spec`` applies, in order."""
    return [with_defaults, with_root, with_process, with_hostname, with_user,
            partial(with_capabilities, host=host), partial(with_rlimits, host=host), with_security,
            with_oom_score_adj, with_mounts, with_masked_paths, with_namespaces, with_sysctls,
            partial(with_resources, host=host), partial(with_devices, host=host),
            with_cgroups_path, partial(with_seccomp, host=host), with_annotations]


# --- assembly --------------------------------------------------------------------------------

_ORDER: dict[str, tuple[str, ...]] = {
    "": ("ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
         "annotations", "linux"),
    "process": ("terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities",
                "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj"),
    "linux": ("uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces",
              "devices", "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths"),
    "resources": ("devices", "memory", "cpu", "pids", "blockIO"),
}


def _ordered(d: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(order)}
    return {k: d[k] for k in sorted(d, key=lambda k: rank.get(k, len(order)))}


def canonical(spec: dict[str, Any]) -> dict[str, Any]:
    """Same content, keys in the runtime-spec's field order (stable, readable JSON)."""
    out = _ordered(spec, _ORDER[""])
    out["process"] = _ordered(out["process"], _ORDER["process"])
    out["linux"] = _ordered(out["linux"], _ORDER["linux"])
    out["linux"]["resources"] = _ordered(out["linux"]["resources"], _ORDER["resources"])
    return out


def build_spec(opts: SpecOptions, host: HostFacts | None = None,
               extra_opts: Iterable[SpecOpt] = ()) -> dict[str, Any]:
    """The OCI runtime-spec config dict for ``opts`` (``host`` defaults to the running host)."""
    spec: dict[str, Any] = {}
    for opt in [*default_spec_opts(host or HostFacts.probe()), *extra_opts]:
        opt(spec, opts)
    return canonical(spec)


def user_mount(destination: str, source: str, *, readonly: bool = False,
               propagation: str = "rprivate") -> Mount:
    """A bind mount as Docker writes a ``-v src:dst[:ro]`` volume (rbind, [ro,] propagation)."""
    options = ["rbind", *(["ro"] if readonly else []), *([propagation] if propagation else [])]
    return Mount(destination=destination, type="bind", source=source, options=tuple(options))
