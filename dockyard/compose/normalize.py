"""Merged, validated compose dict → :class:`Project`: short syntaxes expanded, env files
read, defaults (the ``default`` network, resource names) filled in, references checked."""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dockyard.compose import extras
from dockyard.compose.consistency import Blame, ServiceProblem, blamed, check_service
from dockyard.compose.envfile import read_env_file
from dockyard.compose.merge import list_to_mapping
from dockyard.compose.model import (
    BuildConfig,
    Dependency,
    Deploy,
    HealthCheck,
    Network,
    PortConfig,
    Project,
    Resources,
    RestartPolicy,
    Service,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
    Volume,
)
from dockyard.compose.units import (
    loc,
    parse_duration,
    parse_size,
    to_bool,
    to_float,
    to_int,
)
from dockyard.errors import InvalidArgument, NotFound

_PORT = re.compile(r"^(?:(?:\[?(?P<ip>[0-9a-fA-F.:]+?)\]?:)?(?P<pub>\d*(?:-\d+)?):)?"
                   r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>\w+))?$")
_PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): "" if v is None else _scalar(v)
            for k, v in (list_to_mapping("labels", value) or {}).items()}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _words(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(v) for v in value)


def _range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def parse_ports(spec: Any, where: str = "") -> list[PortConfig]:
    """Short (``[ip:][published[-range]:]target[-range][/proto]``) or long port syntax."""
    if isinstance(spec, dict):
        pub = spec.get("published")
        return [PortConfig(target=int(to_int(spec["target"], where + "target") or 0),
                           published=None if pub in (None, "") else str(pub),
                           host_ip=spec.get("host_ip"), protocol=spec.get("protocol", "tcp"),
                           mode=spec.get("mode", "ingress"), name=spec.get("name"),
                           app_protocol=spec.get("app_protocol"))]
    m = _PORT.match(str(spec))
    if not m:
        raise InvalidArgument(f"{loc(where)}invalid port specification {spec!r}")
    targets = _range(m.group("target"))
    pub = m.group("pub") or None
    proto = m.group("proto") or "tcp"
    ip = m.group("ip")
    if pub and "-" in pub and len(_range(pub)) == len(targets) and len(targets) > 1:
        pubs: list[str | None] = [str(p) for p in _range(pub)]
    elif pub and len(targets) > 1:
        raise InvalidArgument(f"{loc(where)}invalid port range {spec!r}")
    else:
        pubs = [pub] * len(targets)
    return [PortConfig(target=t, published=p, host_ip=ip, protocol=proto)
            for t, p in zip(targets, pubs)]


def parse_volume(spec: Any, where: str = "") -> ServiceVolume:
    """Short (``src:dst[:opts]``, ``name:dst``, ``/anon``) or long volume syntax."""
    if isinstance(spec, dict):
        bind, vol, tmpfs = spec.get("bind") or {}, spec.get("volume") or {}, spec.get("tmpfs") or {}
        return ServiceVolume(
            type=spec["type"], target=spec["target"], source=spec.get("source"),
            read_only=bool(spec.get("read_only", False)), consistency=spec.get("consistency"),
            propagation=bind.get("propagation"),
            create_host_path=bind.get("create_host_path"), selinux=bind.get("selinux"),
            nocopy=bool(vol.get("nocopy", False)), subpath=vol.get("subpath"),
            tmpfs_size=parse_size(tmpfs.get("size"), where + "size"),
            tmpfs_mode=tmpfs.get("mode"))
    parts = str(spec).split(":")
    if len(parts) == 1:
        return ServiceVolume(type="volume", target=parts[0])
    if len(parts) > 3:
        raise InvalidArgument(f"{loc(where)}invalid volume specification {spec!r}")
    source, target = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    if not target.startswith("/"):
        raise InvalidArgument(f"{loc(where)}invalid volume specification {spec!r}: "
                              "target must be an absolute path")
    kind = "bind" if source.startswith("/") else "volume"
    return ServiceVolume(
        type=kind, source=source, target=target, read_only="ro" in opts,
        propagation=next((o for o in opts if o in _PROPAGATION), None),
        selinux=next((o for o in opts if o in ("z", "Z")), None),
        nocopy="nocopy" in opts, create_host_path=True if kind == "bind" else None)


def _environment(raw: dict[str, Any], env: Mapping[str, str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.get("env_file") or []:
        path = item["path"] if isinstance(item, dict) else item
        required = item.get("required", True) if isinstance(item, dict) else True
        out.update(read_env_file(Path(path), env, required=required))
    for key, value in (list_to_mapping("environment", raw.get("environment")) or {}).items():
        if value is None:
            if key in env:
                out[key] = env[key]
        else:
            out[key] = _scalar(value)
    return out


def _healthcheck(raw: Any, where: str) -> HealthCheck | None:
    if raw is None:
        return None
    test = raw.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    disable = bool(raw.get("disable")) or (test is not None and list(test) == ["NONE"])
    return HealthCheck(
        test=tuple(test or ()), interval=parse_duration(raw.get("interval"), where + "interval"),
        timeout=parse_duration(raw.get("timeout"), where + "timeout"),
        start_period=parse_duration(raw.get("start_period"), where + "start_period"),
        start_interval=parse_duration(raw.get("start_interval"), where + "start_interval"),
        retries=to_int(raw.get("retries"), where + "retries"), disable=disable)


def _resources(raw: Any, where: str) -> Resources | None:
    if not raw:
        return None
    cpus = raw.get("cpus")
    return Resources(cpus=to_float(cpus, where + "cpus"),
                     memory=parse_size(raw.get("memory"), where + "memory"),
                     pids=to_int(raw.get("pids"), where + "pids"))


def _deploy(raw: Any, where: str) -> Deploy | None:
    if raw is None:
        return None
    res = raw.get("resources") or {}
    rp = raw.get("restart_policy")
    placement = raw.get("placement") or {}
    return Deploy(
        mode=raw.get("mode"), replicas=to_int(raw.get("replicas"), where + "replicas"), labels=_str_map(raw.get("labels")),
        limits=_resources(res.get("limits"), where + "resources.limits."),
        reservations=_resources(res.get("reservations"), where + "resources.reservations."),
        restart_policy=None if rp is None else RestartPolicy(
            condition=rp.get("condition"), delay=parse_duration(rp.get("delay"), where + "delay"),
            max_attempts=to_int(rp.get("max_attempts"), where + "restart_policy.max_attempts"), window=parse_duration(rp.get("window"), where + "window")),
        placement_constraints=tuple(placement.get("constraints") or ()),
        placement_preferences=tuple(f"{k}={v}" for p in placement.get("preferences") or ()
                                    for k, v in p.items()),
        endpoint_mode=raw.get("endpoint_mode"))


def _build(raw: Any) -> BuildConfig | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"context": raw}
    return BuildConfig(
        context=str(raw.get("context", ".")), dockerfile=raw.get("dockerfile"),
        args={k: None if v is None else _scalar(v)
              for k, v in (list_to_mapping("args", raw.get("args")) or {}).items()},
        target=raw.get("target"), labels=_str_map(raw.get("labels")),
        network=raw.get("network"), cache_from=tuple(raw.get("cache_from") or ()),
        extra_hosts=_str_map(list_to_mapping("extra_hosts", raw.get("extra_hosts"))),
        shm_size=parse_size(raw.get("shm_size")), dockerfile_inline=raw.get("dockerfile_inline"))


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int)):
        return (str(value),)
    return tuple(str(v) for v in value)


def _labels(raw: dict[str, Any], env: Mapping[str, str], where: str) -> dict[str, str]:
    """``label_file`` (env-file syntax, in order), then ``labels`` over them."""
    out: dict[str, str] = {}
    files = raw.get("label_file")
    for path in [files] if isinstance(files, str) else files or ():
        try:
            out.update(read_env_file(Path(path), env))
        except NotFound:
            raise InvalidArgument(f"{where}label_file: label file {path} not found") from None
    out.update(_str_map(raw.get("labels")))
    return out


def _service(name: str, raw: dict[str, Any], env: Mapping[str, str],
             warn: Callable[[str], None] = lambda _m: None) -> Service:
    where = f"services.{name}."
    w = f"services.{name}."
    networks = {}
    for net, cfg in (list_to_mapping("networks", raw.get("networks")) or {}).items():
        cfg = cfg or {}
        networks[net] = ServiceNetwork(
            aliases=tuple(cfg.get("aliases") or ()), ipv4_address=cfg.get("ipv4_address"),
            ipv6_address=cfg.get("ipv6_address"), priority=cfg.get("priority", 0),
            mac_address=cfg.get("mac_address"))
    depends: dict[str, Dependency] = {}
    for dep, cfg in (list_to_mapping("depends_on", raw.get("depends_on")) or {}).items():
        cfg = cfg or {}
        depends[dep] = Dependency(condition=cfg.get("condition", "service_started"),
                                  restart=bool(cfg.get("restart", False)),
                                  required=bool(cfg.get("required", True)))
    implicit = [link.split(":")[0] for link in raw.get("links") or ()]
    implicit += [v.split(":")[0] for v in raw.get("volumes_from") or ()
                 if not v.startswith("container:")]
    mode = raw.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:"):
        implicit.append(mode.split(":", 1)[1])
    implicit += extras.depends(raw)
    for dep in implicit:
        depends.setdefault(dep, Dependency())
    ulimits = {}
    for key, lim in (raw.get("ulimits") or {}).items():
        ulimits[key] = Ulimit(int(lim), int(lim)) if isinstance(lim, (int, str)) \
            else Ulimit(int(lim["soft"]), int(lim["hard"]))
    ports = tuple(p for i, spec in enumerate(raw.get("ports") or ())
                  for p in parse_ports(spec, f"{w}ports.{i}."))
    cpus = raw.get("cpus")
    return Service(
        name=name, image=raw.get("image"), build=_build(raw.get("build")),
        command=_words(raw.get("command")), entrypoint=_words(raw.get("entrypoint")),
        environment=_environment(raw, env, where), ports=ports,
        expose=_tuple(raw.get("expose")),
        volumes=tuple(parse_volume(v, f"{w}volumes.{i}.")
                      for i, v in enumerate(raw.get("volumes") or ())),
        volumes_from=_tuple(raw.get("volumes_from")), links=_tuple(raw.get("links")),
        networks=networks, network_mode=mode, depends_on=depends,
        healthcheck=_healthcheck(raw.get("healthcheck"), w + "healthcheck."), restart=raw.get("restart"),
        container_name=raw.get("container_name"), hostname=raw.get("hostname"),
        domainname=raw.get("domainname"),
        user=None if raw.get("user") is None else str(raw["user"]),
        working_dir=raw.get("working_dir"), labels=_labels(raw, env, w),
        cap_add=_tuple(raw.get("cap_add")), cap_drop=_tuple(raw.get("cap_drop")),
        privileged=bool(to_bool(raw.get("privileged"), w + "privileged")),
        read_only=bool(to_bool(raw.get("read_only"), w + "read_only")), tmpfs=_tuple(raw.get("tmpfs")),
        ulimits=ulimits, mem_limit=parse_size(raw.get("mem_limit"), where + "mem_limit"),
        memswap_limit=parse_size(raw.get("memswap_limit"), where + "memswap_limit"),
        shm_size=parse_size(raw.get("shm_size"), where + "shm_size"),
        cpus=to_float(cpus, w + "cpus"), cpu_shares=to_int(raw.get("cpu_shares"), w + "cpu_shares"),
        pids_limit=to_int(raw.get("pids_limit"), w + "pids_limit"), stop_signal=raw.get("stop_signal"),
        stop_grace_period=parse_duration(raw.get("stop_grace_period"), where + "stop_grace_period"),
        init=to_bool(raw.get("init"), w + "init"), tty=bool(to_bool(raw.get("tty"), w + "tty")),
        stdin_open=bool(to_bool(raw.get("stdin_open"), w + "stdin_open")), profiles=_tuple(raw.get("profiles")),
        scale=to_int(raw.get("scale"), w + "scale"), deploy=_deploy(raw.get("deploy"), w + "deploy."),
        dns=_tuple(raw.get("dns")), dns_search=_tuple(raw.get("dns_search")),
        extra_hosts=_str_map(list_to_mapping("extra_hosts", raw.get("extra_hosts"))),
        devices=tuple(d if isinstance(d, str) else f"{d['source']}:{d['target']}"
                      for d in raw.get("devices") or ()),
        sysctls=_str_map(raw.get("sysctls")), pull_policy=raw.get("pull_policy"),
        platform=raw.get("platform"),
        secrets=tuple({"source": s} if isinstance(s, str) else dict(s)
                      for s in raw.get("secrets") or ()),
        configs=tuple({"source": c} if isinstance(c, str) else dict(c)
                      for c in raw.get("configs") or ()),
        logging=raw.get("logging"),
        extensions={k: v for k, v in raw.items() if k.startswith("x-")},
        passthrough=extras.read(name, raw, warn))


def _resource_name(project: str, key: str, raw: dict[str, Any]) -> str:
    if raw.get("name"):
        return str(raw["name"])
    ext = raw.get("external")
    if isinstance(ext, dict) and ext.get("name"):  # legacy external.name
        return str(ext["name"])
    return key if ext else f"{project}_{key}"


def normalize(doc: dict[str, Any], *, name: str, working_dir: str, env: Mapping[str, str],
              profiles: set[str], warnings: tuple[str, ...] = (),
              env_files: tuple[str, ...] = (),
              blame: Blame = lambda _service, _key: "compose.yaml") -> Project:
    """Raises ``InvalidArgument`` ``"<file>: <problem>"``, the file as ``blame`` names it."""
    raw_services: dict[str, Any] = {k: v or {} for k, v in (doc.get("services") or {}).items()}
    active = {n: s for n, s in raw_services.items()
              if not s.get("profiles") or "*" in profiles or profiles & set(s["profiles"])}
    disabled = tuple(sorted(set(raw_services) - set(active)))
    services = {}
    more: list[str] = []
    for n, raw_svc in sorted(active.items()):
        try:
            services[n] = _service(n, raw_svc, env, more.append)
            for section in ("secrets", "configs"):
                extras.check_sources(n, raw_svc, doc.get(section) or {}, section)
        except InvalidArgument as exc:
            raise blamed(blame, exc, n) from None
    warnings = (*warnings, *more)
    try:
        for svc in services.values():
            check_service(svc)
        return _project(doc, services, name=name, working_dir=working_dir, env=env,
                        disabled=disabled, warnings=warnings, env_files=env_files)
    except ServiceProblem as exc:
        raise blamed(blame, exc.error, exc.service, exc.key) from None


def _project(doc: dict[str, Any], services: dict[str, Service], *, name: str,
             working_dir: str, env: Mapping[str, str], disabled: tuple[str, ...],
             warnings: tuple[str, ...], env_files: tuple[str, ...]) -> Project:
    needs_default = any(not s.networks and s.network_mode is None for s in services.values())
    raw_networks = dict(doc.get("networks") or {})
    if needs_default and "default" not in raw_networks:
        raw_networks["default"] = {}
    services = {n: (s if s.networks or s.network_mode is not None else
                    _with(s, networks={"default": ServiceNetwork()}))
                for n, s in services.items()}
    networks = {}
    for key, raw in raw_networks.items():
        raw = raw or {}
        networks[key] = Network(
            name=_resource_name(name, key, raw), driver=raw.get("driver"),
            driver_opts=_str_map(raw.get("driver_opts")), external=bool(raw.get("external")),
            internal=bool(raw.get("internal", False)),
            attachable=bool(raw.get("attachable", False)), enable_ipv6=raw.get("enable_ipv6"),
            ipam=raw.get("ipam"), labels=_str_map(raw.get("labels")))
    volumes = {}
    for key, raw in (doc.get("volumes") or {}).items():
        raw = raw or {}
        volumes[key] = Volume(name=_resource_name(name, key, raw), driver=raw.get("driver"),
                              driver_opts=_str_map(raw.get("driver_opts")),
                              external=bool(raw.get("external")),
                              labels=_str_map(raw.get("labels")))
    for svc in services.values():
        for net in svc.networks:
            if net not in networks:
                raise ServiceProblem(InvalidArgument(
                    f"service {svc.name!r} refers to undefined network {net}: invalid compose "
                    "project"), svc.name, "networks")
        for vol in svc.volumes:
            if vol.type == "volume" and vol.source and vol.source not in volumes:
                raise ServiceProblem(InvalidArgument(
                    f"service {svc.name!r} refers to undefined volume {vol.source}: invalid "
                    "compose project"), svc.name, "volumes")
        for dep, cond in svc.depends_on.items():
            if dep not in services and cond.required:
                why = " (disabled by profiles)" if dep in disabled else ""
                raise ServiceProblem(InvalidArgument(
                    f"service {svc.name!r} depends on undefined service {dep!r}{why}: invalid "
                    "compose project"), svc.name, "depends_on")
    return Project(name=name, working_dir=working_dir, services=services, networks=networks,
                   volumes=volumes, configs=dict(doc.get("configs") or {}),
                   secrets=dict(doc.get("secrets") or {}), disabled_services=disabled,
                   environment=dict(env), warnings=warnings, env_files=env_files)


def _with(svc: Service, **changes: Any) -> Service:
    from dataclasses import replace
    return replace(svc, **changes)
