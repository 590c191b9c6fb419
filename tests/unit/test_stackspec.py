"""Compose project → stack networks and service specs, named and labelled like docker stack."""
from __future__ import annotations

import pytest

from dockyard.cli.stackspec import IMAGE, NAMESPACE, StackError, convert, unsupported_keys
from dockyard.compose.loader import load_text

FILE = """
services:
  web:
    image: bb
    command: httpd -f -p 80
    entrypoint: ["/bin/sh", "-c"]
    environment: {B: "2", A: "1"}
    labels: {tier: front}
    ports: ["8080:80", {target: 81, published: 8081, mode: host}]
    networks: [front, back]
    volumes: [data:/data, /srv:/srv:ro]
    restart: on-failure:3
    deploy:
      replicas: 3
      labels: {owner: me}
      resources: {limits: {cpus: "0.5", memory: 64M}}
      placement: {constraints: [node.role==worker]}
  db:
    image: bb:1
    stop_grace_period: 5s
    healthcheck: {test: ["CMD", "true"], interval: 2s, retries: 4}
    deploy: {mode: global, restart_policy: {condition: any, delay: 1s}}
networks:
  front: {}
  back: {external: true, name: shared}
volumes:
  data: {}
"""


def _plan():
    return convert(load_text(FILE, project_dir="/p", name="st"), "st")


def test_networks_created_scoped_and_labelled_externals_checked() -> None:
    plan = _plan()
    assert sorted(plan.networks) == ["st_default", "st_front"]
    front = plan.networks["st_front"]
    assert front["Driver"] == "overlay" and front["Labels"] == {NAMESPACE: "st"}
    assert plan.external_networks == ["shared"]


def test_service_spec_shape() -> None:
    web = _plan().services["web"]
    assert web["Name"] == "st_web"
    assert web["Labels"] == {"owner": "me", NAMESPACE: "st", IMAGE: "bb"}
    c = web["TaskTemplate"]["ContainerSpec"]
    assert c["Image"] == "bb" and c["Command"] == ["/bin/sh", "-c"]
    assert c["Args"] == ["httpd", "-f", "-p", "80"]
    assert c["Env"] == ["A=1", "B=2"]
    assert c["Labels"] == {"tier": "front", NAMESPACE: "st"}
    assert c["Mounts"] == [{"Type": "volume", "Target": "/data", "Source": "st_data",
                            "VolumeOptions": {"Labels": {NAMESPACE: "st"}}},
                           {"Type": "bind", "Target": "/srv", "Source": "/srv",
                            "ReadOnly": True}]
    assert web["TaskTemplate"]["Networks"] == [{"Target": "shared", "Aliases": ["web"]},
                                               {"Target": "st_front", "Aliases": ["web"]}]
    assert web["TaskTemplate"]["Resources"] == {"Limits": {"NanoCPUs": 500_000_000,
                                                           "MemoryBytes": 64 * 1024 * 1024}}
    assert web["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure", "MaxAttempts": 3}
    assert web["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==worker"]}
    assert web["Mode"] == {"Replicated": {"Replicas": 3}}
    assert web["EndpointSpec"] == {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080},
        {"Protocol": "tcp", "TargetPort": 81, "PublishMode": "host", "PublishedPort": 8081}]}


def test_global_mode_health_and_restart_policy() -> None:
    db = _plan().services["db"]
    assert db["Mode"] == {"Global": {}}
    c = db["TaskTemplate"]["ContainerSpec"]
    assert c["StopGracePeriod"] == 5_000_000_000
    assert c["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2_000_000_000,
                                "Retries": 4}
    assert db["TaskTemplate"]["RestartPolicy"] == {"Condition": "any", "Delay": 1_000_000_000}
    assert db["TaskTemplate"]["Networks"] == [{"Target": "st_default", "Aliases": ["db"]}]


def test_build_only_service_is_refused_with_its_name() -> None:
    project = load_text("services:\n  app:\n    build: .\n", project_dir="/p", name="st")
    with pytest.raises(StackError, match="service app: image is required"):
        convert(project, "st")


def test_keys_docker_stack_ignores_are_named() -> None:
    text = ("services:\n  a:\n    image: bb\n    build: .\n    privileged: true\n"
            "    links: [b]\n  b:\n    image: bb\n    cgroup_parent: x\n")
    project = load_text(text, project_dir="/p", name="st")
    assert unsupported_keys(project) == ["build", "cgroup_parent", "links", "privileged"]
    assert unsupported_keys(load_text(FILE, project_dir="/p", name="st")) == []
