"""A compose project as a swarm stack: the networks to create and the service specs to deploy,
named and labelled the way ``docker stack deploy`` does (``<stack>_<name>``, the
``com.docker.stack.namespace`` label on everything, ``com.docker.stack.image`` on services).
Pure: no API calls, so every conversion is unit-tested."""
from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.compose.model import (Deploy, HealthCheck, Project, Service, ServiceNetwork,
                                    ServiceVolume)

NAMESPACE = "com.docker.stack.namespace"
IMAGE = "com.docker.stack.image"
Spec = dict[str, Any]


class StackError(Exception):
    """The compose file cannot be deployed as a stack (the message names the service)."""


@dataclass
class StackPlan:
    networks: dict[str, Spec] = field(default_factory=dict)  # name → /networks/create body
    external_networks: list[str] = field(default_factory=list)
    services: dict[str, Spec] = field(default_factory=dict)  # compose key → ServiceSpec
    secrets: dict[str, Spec] = field(default_factory=dict)  # name → SecretSpec
    configs: dict[str, Spec] = field(default_factory=dict)  # name → ConfigSpec


def scope(namespace: str, name: str) -> str:
    return f"{namespace}_{name}"


def with_stack_label(namespace: str, labels: dict[str, str] | None) -> dict[str, str]:
    return {**(labels or {}), NAMESPACE: namespace}


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1e9))


# docker's compose loader for stacks: service keys it ignores with a warning
UNSUPPORTED = ("build", "cgroupns_mode", "cgroup_parent", "devices", "domainname",
               "external_links", "ipc", "links", "mac_address", "network_mode", "pid",
               "privileged", "security_opt", "shm_size", "userns_mode")


def unsupported_keys(project: Project) -> list[str]:
    """The keys of ``UNSUPPORTED`` some service sets, sorted (docker's warning lists them)."""
    found = set()
    for svc in project.services.values():
        present = {"build": svc.build is not None, "devices": bool(svc.devices),
                   "domainname": bool(svc.domainname), "links": bool(svc.links),
                   "network_mode": svc.network_mode is not None, "privileged": svc.privileged,
                   "shm_size": svc.shm_size is not None}
        found |= {k for k, v in present.items() if v}
        found |= {k for k in svc.passthrough if k in UNSUPPORTED}
    return sorted(found)


def convert(project: Project, namespace: str,
            read: Callable[[str], bytes] = lambda p: Path(p).read_bytes()) -> StackPlan:
    """``read`` gives a file secret's or config's data (the only I/O)."""
    plan = StackPlan(secrets=file_objects(project.secrets, namespace, read),
                     configs=file_objects(project.configs, namespace, read))
    used = {net for svc in project.services.values() for net in (svc.networks or ["default"])}
    for key in sorted(used):
        net = project.networks.get(key)
        if net is not None and net.external:
            plan.external_networks.append(net.name)
            continue
        name = net.name if net is not None and net.name else scope(namespace, key)
        body: Spec = {"Name": name, "Driver": (net.driver if net else None) or "overlay",
                      "Labels": with_stack_label(namespace, net.labels if net else None),
                      "Scope": "swarm"}
        if net is not None:
            body.update({"Options": dict(net.driver_opts), "Internal": net.internal,
                         "Attachable": net.attachable})
            if net.ipam:
                body["IPAM"] = {"Driver": net.ipam.get("driver") or "default",
                                "Config": [{k.capitalize() if k != "ip_range" else "IPRange": v
                                            for k, v in c.items()}
                                           for c in net.ipam.get("config") or []]}
        plan.networks[name] = body
    for key, svc in project.services.items():
        try:
            plan.services[key] = service_spec(project, namespace, svc)
        except StackError as exc:
            raise StackError(f"service {key}: {exc}") from None
    return plan


def service_spec(project: Project, namespace: str, svc: Service) -> Spec:
    if not svc.image:
        raise StackError("image is required (stacks do not build)")
    deploy = svc.deploy or Deploy()
    container: Spec = {"Image": svc.image, "Labels": with_stack_label(namespace, svc.labels)}
    optional = {"Command": list(svc.entrypoint) if svc.entrypoint is not None else None,
                "Args": list(svc.command) if svc.command is not None else None,
                "Hostname": svc.hostname, "Dir": svc.working_dir, "User": svc.user,
                "Env": sorted(f"{k}={v}" for k, v in svc.environment.items()) or None,
                "StopSignal": svc.stop_signal, "StopGracePeriod": _ns(svc.stop_grace_period),
                "TTY": svc.tty or None, "OpenStdin": svc.stdin_open or None,
                "ReadOnly": svc.read_only or None, "Init": svc.init,
                "Hosts": [f"{ip} {host}" for host, ip in svc.extra_hosts.items()] or None,
                "CapabilityAdd": list(svc.cap_add) or None,
                "CapabilityDrop": list(svc.cap_drop) or None,
                "Sysctls": dict(svc.sysctls) or None,
                "Mounts": [_mount(project, namespace, v) for v in svc.volumes] or None,
                "Healthcheck": _health(svc.healthcheck)}
    for section, items, top in (("Secrets", svc.secrets, project.secrets),
                                ("Configs", svc.configs, project.configs)):
        if items:
            container[section] = file_refs(namespace, section, items, top)
    container.update({k: v for k, v in optional.items() if v is not None})
    if svc.dns or svc.dns_search:
        container["DNSConfig"] = {"Nameservers": list(svc.dns), "Search": list(svc.dns_search)}
    task: Spec = {"ContainerSpec": container, "Networks": _attachments(project, namespace, svc),
                  "Placement": {"Constraints": list(deploy.placement_constraints)}}
    if deploy.placement_preferences:
        task["Placement"]["Preferences"] = [{"Spread": {"SpreadDescriptor": p}}
                                            for p in deploy.placement_preferences]
    task["Resources"] = _resources(deploy)
    container["Privileges"] = {"CredentialSpec": None, "SELinuxContext": None,
                               "NoNewPrivileges": False}
    restart = _restart(svc, deploy)
    if restart is not None:
        task["RestartPolicy"] = restart
    labels = with_stack_label(namespace, deploy.labels)
    labels[IMAGE] = svc.image
    return {"Name": scope(namespace, svc.name), "Labels": labels, "TaskTemplate": task,
            "Mode": _mode(deploy), "EndpointSpec": _endpoint(svc, deploy)}


def _mode(deploy: Deploy) -> Spec:
    mode = deploy.mode or "replicated"
    if mode == "global":
        return {"Global": {}}
    if mode == "replicated":
        return {"Replicated": {"Replicas": 1 if deploy.replicas is None else deploy.replicas}}
    raise StackError(f"unsupported mode: {mode!r}")


def _endpoint(svc: Service, deploy: Deploy) -> Spec:
    ports = []
    for p in sorted(svc.ports, key=lambda p: (p.target, p.published or "", p.protocol)):
        port: Spec = {"Protocol": p.protocol, "TargetPort": p.target,
                      "PublishMode": p.mode or "ingress"}
        if p.published:
            if "-" in p.published:
                raise StackError(f"port ranges are not supported in a stack: {p.published}")
            port["PublishedPort"] = int(p.published)
        if p.name:
            port["Name"] = p.name
        ports.append(port)
    endpoint: Spec = {"Ports": ports}
    if deploy.endpoint_mode:
        endpoint["Mode"] = deploy.endpoint_mode.lower()
    return endpoint


def _attachments(project: Project, namespace: str, svc: Service) -> list[Spec]:
    out = []
    attached: dict[str, ServiceNetwork | None] = {**svc.networks} if svc.networks else \
        {"default": None}
    for key, cfg in attached.items():
        net = project.networks.get(key)
        if net is None and key != "default":
            raise StackError(f"undefined network {key!r}")
        target = net.name if net is not None and net.name else scope(namespace, key)
        aliases = [*(cfg.aliases if cfg is not None else ()), svc.name]
        out.append({"Target": target, "Aliases": aliases})
    return sorted(out, key=lambda a: str(a["Target"]))


def _mount(project: Project, namespace: str, vol: ServiceVolume) -> Spec:
    mount: Spec = {"Type": vol.type, "Target": vol.target}
    if vol.read_only:
        mount["ReadOnly"] = True
    if vol.type == "volume":
        if vol.source:
            declared = project.volumes.get(vol.source)
            mount["Source"] = declared.name if declared is not None else \
                scope(namespace, vol.source)
            mount["VolumeOptions"] = {"Labels": {NAMESPACE: namespace}}
            if vol.nocopy:
                mount["VolumeOptions"]["NoCopy"] = True
    elif vol.type == "bind":
        mount["Source"] = vol.source
        if vol.propagation:
            mount["BindOptions"] = {"Propagation": vol.propagation}
    elif vol.type == "tmpfs":
        options = {k: v for k, v in (("SizeBytes", vol.tmpfs_size), ("Mode", vol.tmpfs_mode))
                   if v is not None}
        if options:
            mount["TmpfsOptions"] = options
    else:
        raise StackError(f"volume type {vol.type!r} is not supported in a stack")
    return mount


def _health(check: HealthCheck | None) -> Spec | None:
    if check is None:
        return None
    if check.disable:
        return {"Test": ["NONE"]}
    out: Spec = {"Test": list(check.test)}
    for wire, value in (("Interval", check.interval), ("Timeout", check.timeout),
                        ("StartPeriod", check.start_period),
                        ("StartInterval", check.start_interval)):
        if value is not None:
            out[wire] = _ns(value)
    if check.retries is not None:
        out["Retries"] = check.retries
    return out


def _resources(deploy: Deploy) -> Spec:
    out: Spec = {}
    for wire, res in (("Limits", deploy.limits), ("Reservations", deploy.reservations)):
        if res is None:
            continue
        part: Spec = {}
        if res.cpus is not None:
            part["NanoCPUs"] = int(round(res.cpus * 1e9))
        if res.memory is not None:
            part["MemoryBytes"] = res.memory
        if res.pids is not None and wire == "Limits":
            part["Pids"] = res.pids
        if part:
            out[wire] = part
    return out


def _restart(svc: Service, deploy: Deploy) -> Spec | None:
    policy = deploy.restart_policy
    if policy is not None:
        out: Spec = {"Condition": policy.condition or "any"}
        for wire, value in (("Delay", policy.delay), ("Window", policy.window)):
            if value is not None:
                out[wire] = _ns(value)
        if policy.max_attempts is not None:
            out["MaxAttempts"] = policy.max_attempts
        return out
    name, _, count = (svc.restart or "").partition(":")
    if name in ("", "no"):
        return None
    condition = {"always": "any", "unless-stopped": "any", "on-failure": "on-failure"}.get(name)
    if condition is None:
        raise StackError(f"invalid restart policy: unknown policy '{name}'")
    out = {"Condition": condition}
    if count.isdigit() and int(count) > 0:
        out["MaxAttempts"] = int(count)
    return out


def _object_name(namespace: str, key: str, cfg: Mapping[str, Any]) -> str:
    if cfg.get("name"):
        return str(cfg["name"])
    return key if cfg.get("external") else scope(namespace, key)


def file_objects(declared: Mapping[str, Mapping[str, Any]], namespace: str,
                 read: Callable[[str], bytes]) -> dict[str, Spec]:
    """The top-level ``secrets:``/``configs:`` a stack creates (external ones exist already):
    ``<stack>_<key>`` unless named, labelled with the stack, the file's bytes as ``Data``."""
    out: dict[str, Spec] = {}
    for key in sorted(declared):
        cfg = declared[key] or {}
        if cfg.get("external") or not cfg.get("file"):
            continue
        try:
            data = read(str(cfg["file"]))
        except OSError as exc:
            raise StackError(f"open {cfg['file']}: {(exc.strerror or str(exc)).lower()}") \
                from None
        name = _object_name(namespace, key, cfg)
        out[name] = {"Name": name, "Labels": with_stack_label(namespace, cfg.get("labels")),
                     "Data": base64.b64encode(data).decode()}
    return out


def file_refs(namespace: str, section: str, items: Sequence[Mapping[str, Any]],
              declared: Mapping[str, Mapping[str, Any]]) -> list[Spec]:
    """A service's secret/config references as docker's stack deploy makes them (the ids are
    filled in at deploy time, from the names): target the source's key, uid/gid "0",
    mode 0444, sorted by name."""
    field_name = "SecretName" if section == "Secrets" else "ConfigName"
    refs = []
    for item in items:
        source = str(item.get("source"))
        mode = item.get("mode")
        refs.append({"File": {"Name": str(item.get("target") or source),
                              "UID": str(item.get("uid") or "0"),
                              "GID": str(item.get("gid") or "0"),
                              "Mode": _mode_bits(mode)},
                     field_name: _object_name(namespace, source, declared.get(source) or {})})
    return sorted(refs, key=lambda r: str(r[field_name]))


def _mode_bits(mode: Any) -> int:
    if mode is None:
        return 0o444
    if isinstance(mode, str):  # "0440": octal, as compose reads a quoted mode
        try:
            return int(mode, 8)
        except ValueError:
            raise StackError(f"invalid mode {mode!r}") from None
    return int(mode)
