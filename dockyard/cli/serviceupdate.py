"""``service update`` flags applied to a service's current Spec (docker's ``updateService``):
only given flags change anything; lists are merged by key, as docker merges them."""
from __future__ import annotations

import argparse
import copy
from collections.abc import Mapping
from typing import Any

from dockyard.cli import runparse as rp
from dockyard.cli.listopts import kv_map
from dockyard.cli.servicespec import (
    Spec,
    SpecError,
    given,
    log_driver,
    merge_resources,
    merge_restart_policy,
    merge_update_config,
)

_ALWAYS_ALLOWED_WITH_ROLLBACK = {"rollback", "detach", "quiet", "help", "args"}


def check_rollback(ns: argparse.Namespace) -> None:
    if not ns.rollback:
        return
    for dest, value in vars(ns).items():
        if dest not in _ALWAYS_ALLOWED_WITH_ROLLBACK and value not in (None, []):
            raise SpecError("other flags may not be combined with --rollback")


def _put(out: Spec, key: str, value: Any) -> None:
    """Set, or drop when zero (the field is ``omitempty``)."""
    if value in (None, "", 0, [], {}, False):
        out.pop(key, None)
    else:
        out[key] = value


def _merge_map(current: Mapping[str, str] | None, add: list[str],
               remove: list[str]) -> dict[str, str] | None:
    out = dict(current) if current is not None else None
    if out is not None:
        for key in remove:
            out.pop(key, None)
    if add:
        out = {**(out or {}), **kv_map(add)}
    return out


def _merge_env(current: list[str], add: list[str], remove: list[str],
               environ: Mapping[str, str]) -> list[str]:
    out = [e for e in current if e.partition("=")[0] not in set(remove)]
    for item in (rp.env_value(a, environ) for a in add):
        key = item.partition("=")[0]
        at = [i for i, e in enumerate(out) if e.partition("=")[0] == key]
        if at:
            out[at[0]] = item
        else:
            out.append(item)
    return out


def _merge_mounts(current: list[Spec], add: list[Spec], remove: list[str]) -> list[Spec]:
    by_target: dict[str, Spec] = {}
    for mount in add:
        if mount.get("Target") in by_target:
            raise SpecError("duplicate mount target")
        by_target[str(mount.get("Target"))] = mount
    for mount in current:
        by_target.setdefault(str(mount.get("Target")), mount)
    kept = [m for t, m in by_target.items() if t not in set(remove)]
    return sorted(kept, key=lambda m: (str(m.get("Source", "")), str(m.get("Target", ""))))


def _port_key(port: Mapping[str, Any]) -> str:
    return (f"{port.get('PublishedPort', 0)}:{port.get('TargetPort', 0)}/"
            f"{port.get('Protocol', '')}/{port.get('PublishMode', '')}")


def _same_port(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (a.get("Protocol") or "tcp") == (b.get("Protocol") or "tcp") and \
        a.get("TargetPort") == b.get("TargetPort") and \
        (a.get("PublishMode") or "ingress") == (b.get("PublishMode") or "ingress")


def _merge_ports(current: list[Spec], add: list[Spec], remove: list[Spec]) -> list[Spec]:
    existing: dict[str, Spec] = {}
    for port in current:
        existing.setdefault(_port_key(port), port)
    out = [p for p in existing.values() if not any(_same_port(p, r) for r in remove)]
    out += [p for p in add if _port_key(p) not in existing]
    return sorted(out, key=_port_key)


def _health(ns: argparse.Namespace, cspec: Spec) -> None:
    flags = ("health_cmd", "health_interval", "health_timeout", "health_start_period",
             "health_start_interval", "health_retries")
    if not ns.no_healthcheck and not any(given(ns, f) for f in flags):
        return
    if ns.no_healthcheck:
        if any(given(ns, f) for f in flags):
            raise SpecError("--no-healthcheck conflicts with --health-* options")
        cspec["Healthcheck"] = {"Test": ["NONE"]}
        return
    health = dict(cspec.get("Healthcheck") or {})
    if (health.get("Test") or [None])[0] == "NONE":
        health.pop("Test", None)
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start_period", "StartPeriod"), ("start_interval", "StartInterval"),
                      ("retries", "Retries")):
        if given(ns, f"health_{flag}"):
            _put(health, key, getattr(ns, f"health_{flag}"))
    if given(ns, "health_cmd"):
        _put(health, "Test", ["CMD-SHELL", ns.health_cmd] if ns.health_cmd else None)
    cspec["Healthcheck"] = health


def _container(ns: argparse.Namespace, cspec: Spec, environ: Mapping[str, str]) -> None:
    _put(cspec, "Labels", _merge_map(cspec.get("Labels"), ns.container_label_add,
                                     ns.container_label_rm))
    for dest, key in (("image", "Image"), ("command_args", "Args"), ("entrypoint", "Command"),
                      ("workdir", "Dir"), ("user", "User"), ("hostname", "Hostname"),
                      ("stop_grace_period", "StopGracePeriod"), ("tty", "TTY"),
                      ("read_only", "ReadOnly"), ("stop_signal", "StopSignal")):
        if given(ns, dest):
            _put(cspec, key, getattr(ns, dest))
    if given(ns, "stop_grace_period"):
        cspec["StopGracePeriod"] = ns.stop_grace_period  # a pointer: 0 is kept
    if ns.env_add or ns.env_rm:
        _put(cspec, "Env", _merge_env(list(cspec.get("Env") or []), ns.env_add, ns.env_rm,
                                      environ))
    if given(ns, "init"):
        cspec["Init"] = bool(ns.init)
    _put(cspec, "Mounts", _merge_mounts(list(cspec.get("Mounts") or []), ns.mount_add,
                                        ns.mount_rm))
    _health(ns, cspec)


def _task(ns: argparse.Namespace, task: Spec) -> None:
    limits = ("limit_cpu", "limit_memory", "limit_pids", "reserve_cpu", "reserve_memory")
    if any(given(ns, f) for f in limits):
        task["Resources"] = merge_resources(ns, task.get("Resources"))
    _put(task, "RestartPolicy", merge_restart_policy(ns, task.get("RestartPolicy"),
                                                     create=False))
    if ns.constraint_add or ns.constraint_rm:
        placement = task.setdefault("Placement", {})
        wanted = list(placement.get("Constraints") or []) + ns.constraint_add
        _put(placement, "Constraints", sorted(c for c in wanted if c not in ns.constraint_rm))
    if given(ns, "replicas_max_per_node"):
        _put(task.setdefault("Placement", {}), "MaxReplicas", ns.replicas_max_per_node)
    if given(ns, "log_driver"):
        task["LogDriver"] = log_driver(ns) or task.get("LogDriver")
        _put(task, "LogDriver", task["LogDriver"])
    if ns.force:
        task["ForceUpdate"] = int(task.get("ForceUpdate") or 0) + 1


def apply_update(current: Mapping[str, Any], ns: argparse.Namespace,
                 environ: Mapping[str, str]) -> Spec:
    """A new Spec: ``current`` (the service's Spec) with the given flags applied."""
    spec: Spec = copy.deepcopy(dict(current))
    labels = _merge_map(spec.get("Labels"), ns.label_add, ns.label_rm)
    if labels is not None:
        spec["Labels"] = labels
    task = spec.setdefault("TaskTemplate", {})
    _container(ns, task.setdefault("ContainerSpec", {}), environ)
    _task(ns, task)
    if given(ns, "replicas"):
        mode = spec.get("Mode") or {}
        if mode.get("Replicated") is None:
            raise SpecError("replicas can only be used with replicated mode")
        mode["Replicated"]["Replicas"] = ns.replicas
    for kind, key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
        _put(spec, key, merge_update_config(ns, kind, spec.get(key)))
    if given(ns, "endpoint_mode"):
        spec.setdefault("EndpointSpec", {})["Mode"] = ns.endpoint_mode.lower()
    if ns.publish_add or ns.publish_rm:
        endpoint = spec.setdefault("EndpointSpec", {})
        _put(endpoint, "Ports", _merge_ports(list(endpoint.get("Ports") or []),
                                             [p for g in ns.publish_add for p in g],
                                             [p for g in ns.publish_rm for p in g]))
    return spec
