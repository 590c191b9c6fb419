"""``service create`` flags → the ServiceSpec the docker CLI sends (its ``ToService``).

Go leaves zero ``omitempty`` fields out, so only what was given (or what docker always sends:
``Labels``, ``Init``, ``DNSConfig``, ``Resources``, ``Placement``, ``ForceUpdate``,
``EndpointSpec``) appears. Durations are nanoseconds, memory bytes, CPUs NanoCPUs.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.cli import runparse as rp
from dockyard.cli.listopts import kv_map
from dockyard.cli.refs import familiar_name, split_reference

Spec = dict[str, Any]
SECOND = 1_000_000_000


class SpecError(ValueError):
    """A flag combination docker refuses before calling the daemon (printed as is, rc 1)."""


def given(ns: argparse.Namespace, dest: str) -> bool:
    """pflag's ``Changed``: scalar flags default to None, list flags to []."""
    value = getattr(ns, dest, None)
    return value not in (None, [])


def _set(out: Spec, key: str, value: Any) -> None:
    """Go's ``omitempty``: zero values are left out."""
    if value not in (None, "", 0, [], {}, False):
        out[key] = value


def with_tag(image: str) -> str:
    """The client's imageWithTagString: ``busybox`` → ``busybox:latest`` (familiar form)."""
    name, tag, digest = split_reference(image)
    if not _valid_name(name):
        return image
    text = familiar_name(name)
    if tag or not digest:
        text += f":{tag or 'latest'}"
    return text + (f"@{digest}" if digest else "")


def with_digest(image: str, digest: str) -> str:
    """imageWithDigestString: pin ``name:tag`` to the registry's digest."""
    name, tag, current = split_reference(image)
    if current or not digest or not _valid_name(name):
        return image
    return familiar_name(name) + (f":{tag}" if tag else "") + f"@{digest}"


def _valid_name(name: str) -> bool:
    return bool(re.match(r"^[a-z0-9]+([._/:-]+[a-z0-9]+)*$", name)) and \
        not re.match(r"^[a-f0-9]{64}$", name)


def env_list(items: list[str], files: list[str], environ: Mapping[str, str],
             read_text: Callable[[str], str]) -> list[str]:
    """ReadKVEnvStrings, then a later ``KEY=`` replaces an earlier one (order kept)."""
    values: list[str] = []
    for path in files:
        try:
            text = read_text(path)
        except OSError as exc:
            raise SpecError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
        values.extend(rp.read_kv_file(text, environ))
    values.extend(rp.env_value(item, environ) for item in items)
    out: list[str] = []
    for env in values:
        key = env.partition("=")[0]
        out = [c for c in out if c == env or not c.startswith(key + "=")]
        out.append(env)
    return out


def service_mode(ns: argparse.Namespace) -> Spec:
    replicas, most = ns.replicas, ns.replicas_max_per_node or 0
    if ns.mode == "global" or ns.mode == "global-job":
        if replicas is not None:
            raise SpecError("replicas can only be used with replicated or replicated-job mode")
        if most > 0 and ns.mode == "global":
            raise SpecError("replicas-max-per-node can only be used with replicated or "
                            "replicated-job mode")
        if ns.mode == "global-job" and ns.max_concurrent is not None:
            raise SpecError("max-concurrent can only be used with replicated-job mode")
        return {"Global": {}} if ns.mode == "global" else {"GlobalJob": {}}
    if ns.mode == "replicated":
        return {"Replicated": {} if replicas is None else {"Replicas": replicas}}
    if ns.mode == "replicated-job":
        job: Spec = {}
        _set(job, "MaxConcurrent", ns.max_concurrent if ns.max_concurrent is not None
             else replicas)
        _set(job, "TotalCompletions", replicas)
        return {"ReplicatedJob": job}
    raise SpecError(f"Unknown mode: {ns.mode}, only replicated and global supported")


def default_update_config() -> Spec:
    """swarmkit's defaults (parallelism 1, pause on failure, 5s monitor, stop-first)."""
    return {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * SECOND,
            "MaxFailureRatio": 0, "Order": "stop-first"}  # Delay 0 is left out


def merge_update_config(ns: argparse.Namespace, kind: str, current: Spec | None) -> Spec | None:
    """``--update-*``/``--rollback-*``: None unless one is given; defaults fill the rest."""
    fields = (("parallelism", "Parallelism"), ("delay", "Delay"),
              ("failure_action", "FailureAction"), ("monitor", "Monitor"),
              ("max_failure_ratio", "MaxFailureRatio"), ("order", "Order"))
    if not any(given(ns, f"{kind}_{flag}") for flag, _ in fields):
        return current
    config = dict(current) if current is not None else default_update_config()
    for flag, key in fields:
        if given(ns, f"{kind}_{flag}"):
            value = getattr(ns, f"{kind}_{flag}")
            config[key] = int(value) if key == "MaxFailureRatio" and value == int(value) \
                else value
    ordered = {k: config[k] for _, k in fields if k in config}
    if not ordered.get("Delay"):
        ordered.pop("Delay", None)
    return ordered


def default_restart_policy() -> Spec:
    return {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}


def merge_restart_policy(ns: argparse.Namespace, current: Spec | None,
                         create: bool) -> Spec | None:
    flags = (("restart_condition", "Condition"), ("restart_delay", "Delay"),
             ("restart_max_attempts", "MaxAttempts"), ("restart_window", "Window"))
    if not any(given(ns, flag) for flag, _ in flags):
        return current
    policy = {} if create else dict(current or default_restart_policy())
    for flag, key in flags:
        if given(ns, flag):
            policy[key] = getattr(ns, flag)
    return {k: policy[k] for _, k in flags if k in policy}


def merge_resources(ns: argparse.Namespace, current: Spec | None) -> Spec:
    resources = {"Limits": dict((current or {}).get("Limits") or {}),
                 "Reservations": dict((current or {}).get("Reservations") or {})}
    for flag, part, key in (("limit_cpu", "Limits", "NanoCPUs"),
                            ("limit_memory", "Limits", "MemoryBytes"),
                            ("limit_pids", "Limits", "Pids"),
                            ("reserve_cpu", "Reservations", "NanoCPUs"),
                            ("reserve_memory", "Reservations", "MemoryBytes")):
        if given(ns, flag):
            resources[part][key] = getattr(ns, flag)
            if not resources[part][key]:
                del resources[part][key]
    return {**(current or {}), **resources}


def health_config(ns: argparse.Namespace) -> Spec | None:
    durations = ("interval", "timeout", "start_period", "start_interval")
    have = bool(ns.health_cmd) or ns.health_retries not in (None, 0) or \
        any(getattr(ns, f"health_{d}") is not None for d in durations)
    if ns.no_healthcheck:
        if have:
            raise SpecError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    health: Spec = {}
    if ns.health_cmd:
        health["Test"] = ["CMD-SHELL", ns.health_cmd]
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
        _set(health, key, getattr(ns, f"health_{flag}"))
    _set(health, "Retries", ns.health_retries)
    return health


def log_driver(ns: argparse.Namespace) -> Spec | None:
    if not ns.log_driver:
        return None
    driver: Spec = {"Name": ns.log_driver}
    _set(driver, "Options", kv_map(ns.log_opt))
    return driver


def placement_prefs(items: list[str]) -> list[Spec]:
    prefs = []
    for item in items:
        strategy, sep, arg = item.partition("=")
        if not sep or not strategy:
            raise SpecError('placement preference must be of the format "<strategy>=<arg>"')
        if strategy.lower() != "spread":
            raise SpecError(f"unsupported placement preference {strategy} (only spread is "
                            "supported)")
        prefs.append({"Spread": {"SpreadDescriptor": arg}})
    return prefs


def network_attachment(item: str) -> Spec:
    """``name`` or ``name=x,alias=y,driver-opt=k=v`` → a NetworkAttachmentConfig."""
    if "=" not in item:
        return {"Target": item}
    out: Spec = {"Target": ""}
    for field in item.split(","):
        key, _, value = field.partition("=")
        if key in ("name", "target"):
            out["Target"] = value
        elif key == "alias":
            out.setdefault("Aliases", []).append(value)
        elif key == "driver-opt":
            k, _, v = value.partition("=")
            out.setdefault("DriverOpts", {})[k] = v
        else:
            raise SpecError(f"invalid field key {key}")
    return out


def swarm_hosts(items: list[str]) -> list[str]:
    """``host:ip`` (or ``host=ip``) → swarm's ``ip host`` form."""
    out = []
    for item in items:
        host, sep, ip = item.partition("=") if "=" in item else item.partition(":")
        if sep:
            out.append(f"{ip} {host}")
    return out


def container_spec(ns: argparse.Namespace, image: str, args: list[str],
                   env: list[str]) -> Spec:
    spec: Spec = {"Image": image}
    _set(spec, "Labels", kv_map(ns.container_label))
    _set(spec, "Command", ns.entrypoint)
    _set(spec, "Args", args)
    _set(spec, "Hostname", ns.hostname)
    _set(spec, "Env", env)
    _set(spec, "Dir", ns.workdir)
    _set(spec, "User", ns.user)
    _set(spec, "Groups", ns.group)
    spec["Init"] = bool(ns.init)
    _set(spec, "StopSignal", ns.stop_signal)
    _set(spec, "TTY", bool(ns.tty))
    _set(spec, "ReadOnly", bool(ns.read_only))
    _set(spec, "Mounts", list(ns.mount))
    if ns.stop_grace_period is not None:
        spec["StopGracePeriod"] = ns.stop_grace_period
    _set(spec, "Healthcheck", health_config(ns))
    _set(spec, "Hosts", swarm_hosts(ns.host))
    dns: Spec = {}
    for key, values in (("Nameservers", ns.dns), ("Search", ns.dns_search),
                        ("Options", ns.dns_option)):
        _set(dns, key, values)
    spec["DNSConfig"] = dns
    _set(spec, "Sysctls", kv_map(ns.sysctl))
    _set(spec, "OomScoreAdj", ns.oom_score_adj)
    return spec


def create_spec(ns: argparse.Namespace, image: str, args: list[str],
                environ: Mapping[str, str], read_text: Callable[[str], str]) -> Spec:
    """The whole ServiceSpec of ``service create`` (networks by name, images unresolved)."""
    env = env_list(ns.env, ns.env_file, environ, read_text)
    mode = service_mode(ns)
    task: Spec = {"ContainerSpec": container_spec(ns, image, args, env),
                  "Resources": merge_resources(ns, None)}
    _set(task, "RestartPolicy", merge_restart_policy(ns, None, create=True))
    placement: Spec = {}
    _set(placement, "Constraints", list(ns.constraint))
    _set(placement, "Preferences", placement_prefs(ns.placement_pref))
    _set(placement, "MaxReplicas", ns.replicas_max_per_node)
    task["Placement"] = placement
    networks = sorted((network_attachment(n) for n in ns.network), key=lambda n: n["Target"])
    _set(task, "Networks", networks)
    _set(task, "LogDriver", log_driver(ns))
    task["ForceUpdate"] = 0
    spec: Spec = {}
    _set(spec, "Name", ns.name)
    spec["Labels"] = kv_map(ns.label)
    spec["TaskTemplate"] = task
    spec["Mode"] = mode
    _set(spec, "UpdateConfig", merge_update_config(ns, "update", None))
    _set(spec, "RollbackConfig", merge_update_config(ns, "rollback", None))
    endpoint: Spec = {"Mode": (ns.endpoint_mode or "vip").lower()}
    _set(endpoint, "Ports", [p for group in ns.publish for p in group])
    spec["EndpointSpec"] = endpoint
    return spec
