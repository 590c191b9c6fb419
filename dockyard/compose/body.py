"""Translation of one compose service replica into a ``POST /containers/create`` body.

Pure: no I/O. Names of other containers (links, volumes_from, ``service:`` network modes)
come from a ``resolve_container`` callback supplied by the converger.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dockyard.compose import extras
from dockyard.compose import labels as L
from dockyard.compose.model import Project, Service
from dockyard.compose.plan import container_name

# service name → (container name, container number) of each of its containers
LinkTargets = Callable[[str], Sequence[tuple[str, int]]]


def image_name(project: Project, service: Service) -> str:
    return service.image or f"{project.name}-{service.name}"


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000_000)


def _service_networks(service: Service) -> list[str]:
    return sorted(service.networks, key=lambda n: (-service.networks[n].priority, n))


def container_body(project: Project, service: Service, number: int, hash_: str,
                   config_files: Sequence[str] = (),
                   resolve_container: Callable[[str], str] | None = None,
                   link_targets: LinkTargets | None = None, image_id: str | None = None,
                   ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The create body, and the further networks to connect after creation.

    ``image_id`` (the ``sha256:…`` id of the service image, as the converger found it) goes
    into ``com.docker.compose.image`` as Compose v2 writes it; it is a label of the container
    only, never part of the config hash (that is computed from the service alone)."""
    labels = dict(service.labels)
    if service.deploy:
        pass  # deploy.labels belong to the swarm service, not the container
    labels.update({
        L.PROJECT: project.name, L.SERVICE: service.name, L.NUMBER: str(number),
        L.ONEOFF: "False", L.CONFIG_HASH: hash_, L.WORKING_DIR: project.working_dir,
        L.CONFIG_FILES: ",".join(config_files), L.VERSION: L.COMPOSE_VERSION,
        L.DEPENDS_ON: ",".join(
            f"{d}:{dep.condition}:{str(dep.restart).lower()}"
            for d, dep in service.depends_on.items())})
    if image_id:
        labels[L.IMAGE] = image_id
    if project.env_files:  # Compose v2: only when the project environment came from files
        labels[L.ENVIRONMENT_FILE] = ",".join(project.env_files)
    body: dict[str, Any] = {"Image": image_name(project, service), "Labels": labels}
    hc: dict[str, Any] = {}
    if service.command is not None:
        body["Cmd"] = list(service.command)
    if service.entrypoint is not None:
        body["Entrypoint"] = list(service.entrypoint)
    if service.environment:
        body["Env"] = [f"{k}={v}" for k, v in service.environment.items()]
    for key, value in (("Hostname", service.hostname), ("Domainname", service.domainname),
                       ("User", service.user), ("WorkingDir", service.working_dir),
                       ("StopSignal", service.stop_signal)):
        if value:
            body[key] = value
    if service.stop_grace_period is not None:
        body["StopTimeout"] = int(service.stop_grace_period)
    if service.tty:
        body["Tty"] = True
    if service.stdin_open:
        body["OpenStdin"] = True
    if service.healthcheck is not None:
        h = service.healthcheck
        body["Healthcheck"] = {"Test": ["NONE"]} if h.disable else {k: v for k, v in {
            "Test": list(h.test) or None, "Interval": _ns(h.interval), "Timeout": _ns(h.timeout),
            "StartPeriod": _ns(h.start_period), "StartInterval": _ns(h.start_interval),
            "Retries": h.retries}.items() if v is not None}
    # ports
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in service.ports:
        key = f"{p.target}/{p.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": p.host_ip or "",
                                             "HostPort": p.published or ""})
    for e in service.expose:
        port, _, proto = str(e).partition("/")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    if exposed:
        body["ExposedPorts"] = exposed
    if bindings:
        hc["PortBindings"] = bindings
    # volumes
    binds: list[str] = []
    anon: dict[str, dict[str, Any]] = {}
    tmpfs: dict[str, str] = {}
    for v in service.volumes:
        if v.type == "volume" and v.source:
            vol = project.volumes.get(v.source)
            src = vol.name if vol is not None else v.source
            opts = ["ro"] if v.read_only else []
            if v.nocopy:
                opts.append("nocopy")
            binds.append(":".join([src, v.target] + ([",".join(opts)] if opts else [])))
        elif v.type == "volume":
            anon[v.target] = {}
        elif v.type == "bind" and v.source:
            opts = (["ro"] if v.read_only else []) + [o for o in (v.propagation, v.selinux) if o]
            binds.append(":".join([v.source, v.target] + ([",".join(opts)] if opts else [])))
        elif v.type == "tmpfs":
            o = [f"size={v.tmpfs_size}"] if v.tmpfs_size else []
            if v.tmpfs_mode is not None:
                o.append(f"mode={v.tmpfs_mode:o}" if isinstance(v.tmpfs_mode, int)
                         else f"mode={v.tmpfs_mode}")
            tmpfs[v.target] = ",".join(o)
    for t in service.tmpfs:
        path, _, tmpfs_opts = t.partition(":")
        tmpfs[path] = tmpfs_opts
    binds += _file_mounts(project, service)
    if binds:
        hc["Binds"] = binds
    if anon:
        body["Volumes"] = anon
    if tmpfs:
        hc["Tmpfs"] = tmpfs
    if service.volumes_from:
        hc["VolumesFrom"] = [_volumes_from(v, resolve_container)
                             for v in service.volumes_from]
    # resources and security
    limits = service.deploy.limits if service.deploy and service.deploy.limits else None
    memory = service.mem_limit or (limits.memory if limits else None)
    cpus = service.cpus or (limits.cpus if limits else None)
    pids = service.pids_limit or (limits.pids if limits else None)
    restart = service.restart
    if service.deploy and service.deploy.restart_policy:  # Compose: deploy wins over restart
        rp = service.deploy.restart_policy
        restart = {"any": "always", "none": "no"}.get(rp.condition or "", rp.condition or "")
        if restart and rp.max_attempts:
            restart += f":{rp.max_attempts}"
    if restart:
        policy, _, count = restart.partition(":")
        hc["RestartPolicy"] = {"Name": policy, **({"MaximumRetryCount": int(count)} if count
                                                else {})}
    resources: tuple[tuple[str, Any], ...] = (
        ("Memory", memory), ("MemorySwap", service.memswap_limit),
        ("ShmSize", service.shm_size), ("CpuShares", service.cpu_shares), ("PidsLimit", pids),
        ("NanoCpus", int(cpus * 1e9) if cpus else None), ("Init", service.init))
    for key, value in resources:
        if value is not None:
            hc[key] = value
    if service.cap_add:
        hc["CapAdd"] = list(service.cap_add)
    if service.cap_drop:
        hc["CapDrop"] = list(service.cap_drop)
    if service.privileged:
        hc["Privileged"] = True
    if service.read_only:
        hc["ReadonlyRootfs"] = True
    if service.ulimits:
        hc["Ulimits"] = [{"Name": n, "Soft": u.soft, "Hard": u.hard}
                         for n, u in service.ulimits.items()]
    if service.dns:
        hc["Dns"] = list(service.dns)
    if service.dns_search:
        hc["DnsSearch"] = list(service.dns_search)
    if service.extra_hosts:
        hc["ExtraHosts"] = [f"{h}:{ip}" for h, ip in service.extra_hosts.items()]
    if service.sysctls:
        hc["Sysctls"] = dict(service.sysctls)
    if service.devices:
        hc["Devices"] = [_device(d) for d in service.devices]
    if service.logging:
        hc["LogConfig"] = {"Type": service.logging.get("driver") or "",
                           "Config": service.logging.get("options") or {}}
    hc.update(extras.host_config(service.passthrough, resolve_container))
    # networks
    extra: list[tuple[str, dict[str, Any]]] = []
    links = _links(project, service, resolve_container, link_targets)
    if service.network_mode:
        mode = service.network_mode
        if mode.startswith("service:") and resolve_container:
            mode = "container:" + resolve_container(mode.split(":", 1)[1])
        hc["NetworkMode"] = mode
        if links:
            hc["Links"] = links
    else:
        endpoints: list[tuple[str, dict[str, Any]]] = []
        for key in _service_networks(service):
            cfg = service.networks[key]
            net = project.networks[key]
            # Compose v2: the container's own name first, then the service and its aliases
            ep: dict[str, Any] = {"Aliases": [container_name(project, service, number),
                                              service.name, *cfg.aliases]}
            ipam = {k: v for k, v in (("IPv4Address", cfg.ipv4_address),
                                      ("IPv6Address", cfg.ipv6_address)) if v}
            if ipam:
                ep["IPAMConfig"] = ipam
            if cfg.mac_address:
                ep["MacAddress"] = cfg.mac_address
            if links:
                ep["Links"] = links
            endpoints.append((net.name, ep))
        if endpoints:
            hc["NetworkMode"] = endpoints[0][0]
            body["NetworkingConfig"] = {"EndpointsConfig": {endpoints[0][0]: endpoints[0][1]}}
            extra = endpoints[1:]
        if links:
            hc["Links"] = links
    body["HostConfig"] = hc
    return body, extra


def _links(project: Project, service: Service, resolve_container: Callable[[str], str] | None,
           link_targets: LinkTargets | None) -> list[str]:
    """Compose v2's links: every container of a linked service, under the link's alias and
    under ``<service>-<n>`` and ``<project>-<service>-<n>``."""
    out: list[str] = []
    for link in service.links:
        target, _, alias = link.partition(":")
        alias = alias or target
        replicas = link_targets(target) if link_targets and target in project.services else ()
        if not replicas:
            cname = resolve_container(target) if resolve_container else target
            out.append(f"{cname}:{alias}")
            continue
        for cname, n in replicas:
            out += [f"{cname}:{alias}", f"{cname}:{target}-{n}",
                    f"{cname}:{project.name}-{target}-{n}"]
    for ext in service.passthrough.get("external_links") or ():  # containers of no project
        target, _, alias = str(ext).partition(":")
        out.append(f"{target}:{alias or target}")
    return out


def _file_mounts(project: Project, service: Service) -> list[str]:
    """File-based secrets (at ``/run/secrets/<target>``) and configs (at ``/<target>``),
    bind-mounted read-only as Compose v2 does for ``file:`` sources."""
    out: list[str] = []
    for section, items, top in (("secrets", service.secrets, project.secrets),
                                ("configs", service.configs, project.configs)):
        for item in items:
            src = str(item.get("source"))
            path = (top.get(src) or {}).get("file")
            if not path:
                continue  # refused when the project was loaded
            target = str(item.get("target") or src)
            if not target.startswith("/"):
                target = f"/run/secrets/{target}" if section == "secrets" else f"/{target}"
            out.append(f"{path}:{target}:ro")
    return out


def _volumes_from(spec: str, resolve_container: Callable[[str], str] | None) -> str:
    """``service[:ro|:rw]`` → ``<its first container>[:mode]``; ``container:name[:mode]`` →
    ``name[:mode]`` (the engine's ``--volumes-from`` form)."""
    if spec.startswith("container:"):
        return spec.removeprefix("container:")
    target, mode = spec, ""
    if spec.endswith((":ro", ":rw")):
        target, mode = spec[:-3], spec[-3:]
    if resolve_container is not None:
        target = resolve_container(target)
    return target + mode


def _device(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    host = parts[0]
    inner = parts[1] if len(parts) > 1 else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}


def oneoff_body(project: Project, service: Service, slug: str, hash_: str,
                config_files: Sequence[str] = (),
                resolve_container: Callable[[str], str] | None = None, *,
                image_id: str | None = None, interactive: bool = True, detach: bool = False, auto_remove: bool = False,
                use_aliases: bool = False,
                ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The create body of a ``compose run`` container, from ``service`` (already carrying the
    command-line overrides): container-number -1, ``oneoff=True`` and the slug labels, no
    restart policy, Compose's stdio flags, and service aliases only with ``use_aliases``."""
    deploy = service.deploy
    if deploy is not None and deploy.restart_policy is not None:
        deploy = replace(deploy, restart_policy=None)
    svc = replace(service, restart=None, deploy=deploy)
    body, extra = container_body(project, svc, -1, hash_, config_files, resolve_container,
                                 image_id=image_id)
    body["Labels"].update({L.ONEOFF: "True", L.SLUG: slug})
    attach = not detach
    body.update(AttachStdin=interactive and attach, AttachStdout=attach, AttachStderr=attach,
                OpenStdin=service.stdin_open,
                StdinOnce=interactive and attach and service.stdin_open)
    if auto_remove:
        body["HostConfig"]["AutoRemove"] = True
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    for ep in [*endpoints.values(), *(e for _, e in extra)]:
        # drop the replica-name alias (a one-off has its own name, resolvable anyway)
        aliases = ep.pop("Aliases", [])[1:]
        if use_aliases and aliases:
            ep["Aliases"] = aliases
    return body, extra
