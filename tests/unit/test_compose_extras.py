"""Service keys beyond the core model: engine settings handed through under their compose
names, file secrets/configs, external_links, label_file, and the keys refused by name."""
from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.compose import config_hash, load_text, render
from dockyard.compose.body import container_body
from dockyard.compose.extras import UNSUPPORTED, host_arch
from dockyard.errors import InvalidArgument

ENGINE = """
services:
  db:
    image: bb
  web:
    image: bb
    cgroup_parent: dyparent
    cpu_period: 100000
    cpu_quota: 50000
    cpuset: "0"
    mem_reservation: 64m
    mem_swappiness: 10
    oom_kill_disable: true
    oom_score_adj: 200
    security_opt: [no-new-privileges]
    group_add: [audio, 2000]
    dns_opt: [ndots:2]
    device_cgroup_rules: ["c 1:3 mr"]
    ipc: shareable
    pid: "service:db"
    uts: host
    cgroup: private
    external_links: [legacy_box:old]
    links: [db:database]
    attach: false
"""


def body(project, name):  # type: ignore[no-untyped-def]
    svc = project.services[name]
    return container_body(project, svc, 1, config_hash(svc),
                          resolve_container=lambda s: f"{project.name}-{s}-1")[0]


def test_engine_settings_reach_the_host_config() -> None:
    project = load_text(ENGINE, name="demo")
    hc = body(project, "web")["HostConfig"]
    assert {k: hc[k] for k in ("CgroupParent", "CpuPeriod", "CpuQuota", "CpusetCpus",
                               "MemoryReservation", "MemorySwappiness", "OomKillDisable",
                               "OomScoreAdj", "SecurityOpt", "GroupAdd", "DnsOptions",
                               "DeviceCgroupRules", "IpcMode", "PidMode", "UTSMode",
                               "CgroupnsMode")} == {
        "CgroupParent": "dyparent", "CpuPeriod": 100000, "CpuQuota": 50000,
        "CpusetCpus": "0", "MemoryReservation": 64 * 1024 * 1024, "MemorySwappiness": 10,
        "OomKillDisable": True, "OomScoreAdj": 200, "SecurityOpt": ["no-new-privileges"],
        "GroupAdd": ["audio", "2000"], "DnsOptions": ["ndots:2"],
        "DeviceCgroupRules": ["c 1:3 mr"], "IpcMode": "shareable",
        "PidMode": "container:demo-db-1", "UTSMode": "host", "CgroupnsMode": "private"}
    assert "legacy_box:old" in hc["Links"] and "demo-db-1:database" in hc["Links"]
    # pid: service:db orders db first; the keys render under their compose names
    assert "db" in project.services["web"].depends_on
    rendered = render(project)
    for line in ("cgroup_parent: dyparent", "oom_score_adj: 200", "pid: service:db",
                 "attach: false", "- no-new-privileges"):
        assert line in rendered, rendered


def test_engine_settings_change_the_config_hash() -> None:
    a = load_text(ENGINE, name="demo").services["web"]
    b = load_text(ENGINE.replace("oom_score_adj: 200", "oom_score_adj: 300"),
                  name="demo").services["web"]
    assert config_hash(a) != config_hash(b)


@pytest.mark.parametrize("key,value", [("gpus", "all"), ("userns_mode", "host"),
                                       ("post_start", "[{command: [echo]}]"),
                                       ("storage_opt", "{size: 1G}"),
                                       ("annotations", "{a: b}")])
def test_unsupported_keys_are_refused_by_name(key: str, value: str) -> None:
    assert key in UNSUPPORTED
    with pytest.raises(InvalidArgument) as exc:
        load_text(f"services:\n  web:\n    image: bb\n    {key}: {value}\n", name="demo")
    assert str(exc.value).startswith(f"compose.yaml: services.web.{key}: '{key}' is not "
                                     "supported by dockyard ("), str(exc.value)


def test_platform_of_another_architecture_is_refused() -> None:
    ok = load_text(f"services:\n  web:\n    image: bb\n    platform: linux/{host_arch()}\n",
                   name="demo")
    assert ok.services["web"].platform == f"linux/{host_arch()}"
    with pytest.raises(InvalidArgument, match=r"services\.web\.platform: 'linux/s390x' is not"):
        load_text("services:\n  web:\n    image: bb\n    platform: linux/s390x\n", name="demo")


def test_develop_is_a_warning() -> None:
    project = load_text("services:\n  web:\n    image: bb\n    develop:\n      watch:\n"
                        "        - {path: ., action: rebuild}\n", name="demo")
    assert any("develop is ignored" in w for w in project.warnings), project.warnings


def test_file_secrets_and_configs_are_bind_mounted(tmp_path: Path) -> None:
    text = """
services:
  web:
    image: bb
    secrets: [token, {source: token, target: /etc/token}]
    configs: [{source: conf, target: app.conf}]
secrets:
  token: {file: ./token.txt}
configs:
  conf: {file: ./app.conf}
"""
    project = load_text(text, project_dir=str(tmp_path), name="demo")
    binds = body(project, "web")["HostConfig"]["Binds"]
    assert binds == [f"{tmp_path}/token.txt:/run/secrets/token:ro",
                     f"{tmp_path}/token.txt:/etc/token:ro", f"{tmp_path}/app.conf:/app.conf:ro"]


@pytest.mark.parametrize("top,message", [
    ("secrets:\n  token: {environment: TOKEN}\n", "environment secrets are not supported"),
    ("", "refers to undefined secret token"),
])
def test_secrets_without_a_file_are_refused(top: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as exc:
        load_text("services:\n  web:\n    image: bb\n    secrets: [token]\n" + top, name="d")
    assert str(exc.value).startswith("compose.yaml: services.web.secrets: "), str(exc.value)


def test_label_file(tmp_path: Path) -> None:
    (tmp_path / "labels").write_text("org.example.a=1\norg.example.b=2\n")
    project = load_text("services:\n  web:\n    image: bb\n    label_file: ./labels\n"
                        "    labels: {org.example.b: over}\n", project_dir=str(tmp_path),
                        name="demo")
    assert project.services["web"].labels == {"org.example.a": "1", "org.example.b": "over"}
    with pytest.raises(InvalidArgument, match=r"services\.web\.label_file: label file .*gone"):
        load_text("services:\n  web:\n    image: bb\n    label_file: ./gone\n",
                  project_dir=str(tmp_path), name="demo")
