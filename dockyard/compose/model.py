"""The typed, normalised compose project (frozen dataclasses; mappings are plain dicts that
nobody mutates after :func:`dockyard.compose.normalize.normalize` builds them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BuildConfig:
    context: str
    dockerfile: str | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    cache_from: tuple[str, ...] = ()
    extra_hosts: dict[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    dockerfile_inline: str | None = None


@dataclass(frozen=True)
class PortConfig:
    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True)
class ServiceVolume:
    type: str  # bind | volume | tmpfs | npipe | image | cluster
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    propagation: str | None = None
    create_host_path: bool | None = None
    selinux: str | None = None
    nocopy: bool = False
    subpath: str | None = None
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


@dataclass(frozen=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0
    mac_address: str | None = None


@dataclass(frozen=True)
class Dependency:
    condition: str = "service_started"  # service_healthy | service_completed_successfully
    restart: bool = False
    required: bool = True


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...] = ()
    interval: float | None = None  # seconds
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None
    disable: bool = False


@dataclass(frozen=True)
class Ulimit:
    soft: int
    hard: int


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    condition: str | None = None
    delay: float | None = None
    max_attempts: int | None = None
    window: float | None = None


@dataclass(frozen=True)
class Deploy:
    mode: str | None = None
    replicas: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    limits: Resources | None = None
    reservations: Resources | None = None
    restart_policy: RestartPolicy | None = None
    placement_constraints: tuple[str, ...] = ()
    placement_preferences: tuple[str, ...] = ()
    endpoint_mode: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None = None
    build: BuildConfig | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortConfig, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[ServiceVolume, ...] = ()
    volumes_from: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    network_mode: str | None = None
    depends_on: dict[str, Dependency] = field(default_factory=dict)
    healthcheck: HealthCheck | None = None
    restart: str | None = None
    container_name: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    ulimits: dict[str, Ulimit] = field(default_factory=dict)
    mem_limit: int | None = None
    memswap_limit: int | None = None
    shm_size: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    init: bool | None = None
    tty: bool = False
    stdin_open: bool = False
    profiles: tuple[str, ...] = ()
    scale: int | None = None
    deploy: Deploy | None = None
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    extra_hosts: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    pull_policy: str | None = None
    platform: str | None = None
    secrets: tuple[dict[str, Any], ...] = ()
    configs: tuple[dict[str, Any], ...] = ()
    logging: dict[str, Any] | None = None
    extensions: dict[str, Any] = field(default_factory=dict)  # x-* keys, kept verbatim
    # further keys under their compose names (engine settings, attach, external_links):
    # see :mod:`dockyard.compose.extras`
    passthrough: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    name: str  # the engine-side name (``<project>_<key>`` unless ``name:`` or external)
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool | None = None
    ipam: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    name: str
    working_dir: str
    services: dict[str, Service]
    networks: dict[str, Network] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    disabled_services: tuple[str, ...] = ()  # inactive because of profiles
    environment: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # absolute paths of the files the project environment was read from (``--env-file``, or
    # the project's ``.env``): ``com.docker.compose.project.environment_file``
    env_files: tuple[str, ...] = field(default=(), compare=False, repr=False)
