"""``container_body``: one compose service replica → the ``POST /containers/create`` body,
built from projects loaded through the real loader (interpolation, normalisation, defaults)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard.compose import ProjectOptions, load_project, load_text
from dockyard.compose.body import container_body, image_name, oneoff_body
from dockyard.compose.model import Project

YAML = """\
services:
  app:
    image: bb
    labels: {org.example.role: app}
    command: ["sh", "-c", "exec sleep 1d"]
    environment: {A: "1"}
    ports:
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
      - "9000"
      - target: 443
        published: "8443"
        host_ip: 0.0.0.0
        protocol: tcp
    expose: ["7000", "7001/udp"]
    volumes:
      - data:/data
      - ./src:/src:ro
      - /cache
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1000000}
      - type: volume
        source: data
        target: /ro
        read_only: true
        volume: {nocopy: true}
      - type: bind
        source: /etc/hostname
        target: /host-name
        read_only: true
    tmpfs: ["/run:size=64k"]
    networks:
      back: {}
      front:
        aliases: [www]
        ipv4_address: 172.30.0.10
        priority: 10
    links: ["db:database", "cache"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 500ms
      start_period: 1m30s
      start_interval: 2s
      retries: 2
    restart: on-failure:3
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 100
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 64
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    stop_grace_period: 3s
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started, restart: true}
  db:
    image: bb
    deploy:
      restart_policy: {condition: any}
      resources:
        limits: {memory: 32M, cpus: "0.25", pids: 50}
  cache:
    image: bb
    network_mode: "service:db"
    restart: always
    healthcheck: {disable: true}
  side:
    build: .
    restart: always
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 4}
  never:
    image: bb
    deploy:
      restart_policy: {condition: none}
volumes:
  data: {}
networks:
  front:
    ipam: {config: [{subnet: 172.30.0.0/24}]}
  back: {}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("proj")
    (root / "compose.yaml").write_text(YAML)
    (root / "Dockerfile").write_text("FROM bb\n")
    return load_project(ProjectOptions(files=(str(root / "compose.yaml"),), project_name="p",
                                       os_env={}, cwd=str(root)))


def body(project: Project, name: str, number: int = 1,
         ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    return container_body(project, project.services[name], number, "HASH",
                          [f"{project.working_dir}/compose.yaml"], lambda s: f"p-{s}-1")


def test_labels_exactly_as_compose_writes_them(project: Project) -> None:
    b, _ = body(project, "app", 2)
    assert b["Labels"] == {
        "org.example.role": "app",
        "com.docker.compose.project": "p",
        "com.docker.compose.service": "app",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.config-hash": "HASH",
        "com.docker.compose.project.working_dir": project.working_dir,
        "com.docker.compose.project.config_files": f"{project.working_dir}/compose.yaml",
        "com.docker.compose.version": "2.29.7",
        "com.docker.compose.depends_on":
            "db:service_healthy:false,cache:service_started:true",
    }
    assert body(project, "db")[0]["Labels"]["com.docker.compose.depends_on"] == ""


def test_image_command_env_and_stop(project: Project) -> None:
    b, _ = body(project, "app")
    assert b["Image"] == "bb"
    assert b["Cmd"] == ["sh", "-c", "exec sleep 1d"]
    assert "Entrypoint" not in b
    assert b["Env"] == ["A=1"]
    assert b["StopTimeout"] == 3
    assert image_name(project, project.services["side"]) == "p-side"
    assert body(project, "side")[0]["Image"] == "p-side"


def test_ports_short_and_long(project: Project) -> None:
    b, _ = body(project, "app")
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "443/tcp": {},
                                 "7000/tcp": {}, "7001/udp": {}}
    assert b["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "9000/tcp": [{"HostIp": "", "HostPort": ""}],
        "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
    }


def test_volumes_named_bind_anonymous_tmpfs(project: Project) -> None:
    b, _ = body(project, "app")
    hc = b["HostConfig"]
    assert hc["Binds"] == ["p_data:/data", f"{project.working_dir}/src:/src:ro",
                           "p_data:/ro:ro,nocopy", "/etc/hostname:/host-name:ro"]
    assert b["Volumes"] == {"/cache": {}}
    assert hc["Tmpfs"] == {"/scratch": "size=1000000", "/run": "size=64k"}
    assert "VolumesFrom" not in hc


def test_networks_priority_aliases_ip_and_extra(project: Project) -> None:
    b, extra = body(project, "app")
    links = ["p-db-1:database", "p-cache-1:cache"]
    assert b["HostConfig"]["NetworkMode"] == "p_front"  # highest priority first
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"p_front": {
        "Aliases": ["p-app-1", "app", "www"], "IPAMConfig": {"IPv4Address": "172.30.0.10"},
        "Links": links}}}
    assert extra == [("p_back", {"Aliases": ["p-app-1", "app"], "Links": links})]
    assert b["HostConfig"]["Links"] == links


def test_default_network_and_service_network_mode(project: Project) -> None:
    b, extra = body(project, "db")
    assert b["HostConfig"]["NetworkMode"] == "p_default"
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"p_default": {
        "Aliases": ["p-db-1", "db"]}}}
    assert extra == []
    b, extra = body(project, "cache")
    assert b["HostConfig"]["NetworkMode"] == "container:p-db-1"
    assert "NetworkingConfig" not in b and extra == []


def test_healthcheck_durations_in_nanoseconds(project: Project) -> None:
    assert body(project, "app")[0]["Healthcheck"] == {
        "Test": ["CMD", "true"], "Interval": 1_000_000_000, "Timeout": 500_000_000,
        "StartPeriod": 90_000_000_000, "StartInterval": 2_000_000_000, "Retries": 2}
    assert body(project, "cache")[0]["Healthcheck"] == {"Test": ["NONE"]}
    assert "Healthcheck" not in body(project, "db")[0]


def test_restart_and_deploy_restart_policy(project: Project) -> None:
    def policy(name: str) -> Any:
        return body(project, name)[0]["HostConfig"].get("RestartPolicy")
    assert policy("app") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert policy("cache") == {"Name": "always"}
    assert policy("db") == {"Name": "always"}  # deploy: any
    # deploy.restart_policy wins over restart, max_attempts is the retry count (as Compose)
    assert policy("side") == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert policy("never") == {"Name": "no"}


def test_resources_service_level_and_deploy_limits(project: Project) -> None:
    hc = body(project, "app")[0]["HostConfig"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (64 * 1024 ** 2, 500_000_000,
                                                              100)
    hc = body(project, "db")[0]["HostConfig"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (32 * 1024 ** 2, 250_000_000,
                                                              50)
    assert not {"Memory", "NanoCpus", "PidsLimit"} & set(body(project, "cache")[0]["HostConfig"])


def test_ulimits_and_capabilities(project: Project) -> None:
    hc = body(project, "app")[0]["HostConfig"]
    assert sorted(hc["Ulimits"], key=lambda u: u["Name"]) == [
        {"Name": "nofile", "Soft": 1024, "Hard": 2048},
        {"Name": "nproc", "Soft": 64, "Hard": 64}]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert "CapAdd" not in body(project, "db")[0]["HostConfig"]


def test_body_is_fresh_per_call(project: Project, tmp_path: Path) -> None:
    a, _ = body(project, "app", 1)
    b, _ = body(project, "app", 2)
    a["Labels"]["x"] = "y"
    assert "x" not in b["Labels"] and "x" not in project.services["app"].labels


def test_links_name_every_replica_of_the_linked_service(project: Project) -> None:
    """Compose v2: each container of a linked service, under the alias, ``<svc>-<n>`` and
    ``<project>-<svc>-<n>``; a service without containers yet falls back to its first name."""
    replicas = {"db": [("p-db-1", 1), ("p-db-2", 2)]}
    b, _ = container_body(project, project.services["app"], 1, "HASH", (),
                          lambda s: f"p-{s}-1", lambda s: replicas.get(s, []))
    assert b["HostConfig"]["Links"] == [
        "p-db-1:database", "p-db-1:db-1", "p-db-1:p-db-1",
        "p-db-2:database", "p-db-2:db-2", "p-db-2:p-db-2",
        "p-cache-1:cache"]


def test_volumes_from_service_and_container_keep_their_mode() -> None:
    """``service:ro`` resolves the service to its first container and keeps the mode;
    ``container:name[:mode]`` is passed through without the prefix."""
    project = load_text("services:\n  db: {image: bb}\n  cache: {image: bb}\n"
                        "  app:\n    image: bb\n    volumes_from: [db:ro, 'cache:rw', cache,"
                        " 'container:other:ro', 'container:plain']\n", name="app")
    b, _ = container_body(project, project.services["app"], 1, "HASH", (),
                          lambda s: f"app-{s}-1")
    assert b["HostConfig"]["VolumesFrom"] == ["app-db-1:ro", "app-cache-1:rw", "app-cache-1",
                                              "other:ro", "plain"]
    assert set(project.services["app"].depends_on) == {"db", "cache"}


def test_image_label_is_the_image_id_when_known(project: Project) -> None:
    image_id = "sha256:" + "0f" * 32
    b, _ = container_body(project, project.services["app"], 1, "HASH", (),
                          lambda s: f"p-{s}-1", image_id=image_id)
    assert b["Labels"]["com.docker.compose.image"] == image_id
    assert "com.docker.compose.image" not in body(project, "app")[0]["Labels"]
    b, _ = oneoff_body(project, project.services["app"], "slug", "HASH", (), image_id=image_id)
    assert b["Labels"]["com.docker.compose.image"] == image_id


def test_environment_file_label_only_when_env_files_were_read(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: '${IMG}'}\n")
    (tmp_path / "other.env").write_text("IMG=bb\n")
    key = "com.docker.compose.project.environment_file"

    def labels(*env_files: str) -> dict[str, str]:
        project = load_project(ProjectOptions(cwd=str(tmp_path), env_files=env_files,
                                              os_env={"IMG": "bb"}))
        return container_body(project, project.services["web"], 1, "H")[0]["Labels"]
    assert key not in labels()
    (tmp_path / ".env").write_text("IMG=bb\n")
    assert labels()[key] == str(tmp_path / ".env")
    assert labels("other.env", ".env")[key] == f"{tmp_path}/other.env,{tmp_path}/.env"
