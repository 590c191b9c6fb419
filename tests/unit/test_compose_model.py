"""Normalisation, project options, hashing and ordering."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard.compose import (
    Dependency,
    PortConfig,
    ProjectOptions,
    ServiceVolume,
    config_hash,
    dependency_order,
    load_project,
    load_text,
    normalize_project_name,
    parse_ports,
    parse_volume,
)
from dockyard.compose.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [PortConfig(target=80)]),
    (80, [PortConfig(target=80)]),
    ("8080:80", [PortConfig(target=80, published="8080")]),
    ("127.0.0.1:8080:80/udp", [PortConfig(80, "8080", "127.0.0.1", "udp")]),
    ("127.0.0.1::80", [PortConfig(80, None, "127.0.0.1")]),
    ("[::1]:53:53/udp", [PortConfig(53, "53", "::1", "udp")]),
    ("3000-3001", [PortConfig(3000), PortConfig(3001)]),
    ("9000-9001:8000-8001", [PortConfig(8000, "9000"), PortConfig(8001, "9001")]),
    ("8000-8010:80", [PortConfig(80, "8000-8010")]),
    ({"target": 80, "published": "8080", "mode": "host"},
     [PortConfig(80, "8080", mode="host")]),
])
def test_ports(spec: object, expected: list[PortConfig]) -> None:
    assert parse_ports(spec) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    ("/data", ServiceVolume("volume", "/data")),
    ("data:/data", ServiceVolume("volume", "/data", "data")),
    ("data:/data:ro,nocopy", ServiceVolume("volume", "/data", "data", read_only=True,
                                           nocopy=True)),
    ("/src:/dst:ro,z,rshared", ServiceVolume("bind", "/dst", "/src", read_only=True,
                                             propagation="rshared", selinux="z",
                                             create_host_path=True)),
    ({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "64m"}},
     ServiceVolume("tmpfs", "/t", tmpfs_size=64 << 20)),
])
def test_volumes(spec: object, expected: ServiceVolume) -> None:
    assert parse_volume(spec) == expected


def test_relative_and_home_bind_paths() -> None:
    p = load_text("services:\n  a:\n    image: x\n    volumes: ['./s:/s', '../up:/u', '~/h:/h']\n",
                  project_dir="/proj/app", env={"HOME": "/home/me"})
    assert [v.source for v in p.services["a"].volumes] == ["/proj/app/s", "/proj/up",
                                                            "/home/me/h"]


def test_units() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("500ms") == 0.5
    assert format_duration(90) == "1m30s"
    assert format_duration(3600) == "1h0m0s"
    assert format_duration(0.5) == "500ms"
    assert parse_size("512m") == 512 << 20
    assert parse_size("1GB") == 1 << 30
    assert parse_size(1024) == 1024


def test_environment_list_env_file_and_host_lookup(tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: x\n    env_file: web.env\n"
        "    environment: [OVERRIDDEN=inline, PASSED, ABSENT]\n")
    p = load_project(ProjectOptions(cwd=str(tmp_path), os_env={"PASSED": "host"}))
    assert p.services["web"].environment == {"FROM_FILE": "1", "OVERRIDDEN": "inline",
                                             "PASSED": "host"}


def test_depends_on_forms_and_implicit() -> None:
    p = load_text("services:\n  a: {image: x, depends_on: [b], links: ['c:alias'],"
                  " volumes_from: [d], network_mode: 'service:e'}\n"
                  "  b: {image: x, depends_on: {c: {condition: service_healthy}}}\n"
                  "  c: {image: x}\n  d: {image: x}\n  e: {image: x}\n")
    assert p.services["a"].depends_on == {n: Dependency() for n in "bcde"}
    assert p.services["b"].depends_on["c"].condition == "service_healthy"
    assert dependency_order(p) == [["c", "d", "e"], ["b"], ["a"]]


def test_default_network_only_when_needed() -> None:
    p = load_text("services:\n  a: {image: x, network_mode: host}\n")
    assert p.networks == {}
    p = load_text("services:\n  a: {image: x}\n", name="Demo")
    assert p.networks["default"].name == "demo_default"
    assert list(p.services["a"].networks) == ["default"]


def test_top_level_names_and_external() -> None:
    p = load_text("services:\n  a: {image: x, networks: [n1, n2]}\n"
                  "networks:\n  n1: {name: custom}\n  n2: {external: true}\n"
                  "volumes:\n  v1: {}\n  v2: {external: true, name: real}\n", name="p")
    assert (p.networks["n1"].name, p.networks["n2"].name) == ("custom", "n2")
    assert p.networks["n2"].external
    assert (p.volumes["v1"].name, p.volumes["v2"].name) == ("p_v1", "real")


def test_profiles(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a: {image: x}\n  b: {image: x, profiles: [dev]}\n"
        "  c: {image: x, profiles: [test]}\n")

    def names(**kw: Any) -> set[str]:
        return set(load_project(ProjectOptions(cwd=str(tmp_path), **kw)).services)

    assert names() == {"a"}
    assert names(profiles=("dev",)) == {"a", "b"}
    assert names(os_env={"COMPOSE_PROFILES": "dev,test"}) == {"a", "b", "c"}
    assert names(profiles=("*",)) == {"a", "b", "c"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("MyApp", "myapp"), ("my app.v2", "myappv2"), ("_x-Y_", "x-y_"), ("web_1", "web_1"),
])
def test_project_name(raw: str, expected: str) -> None:
    assert normalize_project_name(raw) == expected


def test_project_name_precedence(tmp_path: Path) -> None:
    d = tmp_path / "Dir Name"
    d.mkdir()
    (d / "compose.yaml").write_text("services:\n  a: {image: x}\n")
    assert load_project(ProjectOptions(cwd=str(d))).name == "dirname"
    (d / "compose.yaml").write_text("name: fromfile\nservices:\n  a: {image: x}\n")
    assert load_project(ProjectOptions(cwd=str(d))).name == "fromfile"
    (d / ".env").write_text("COMPOSE_PROJECT_NAME=fromdotenv\n")
    assert load_project(ProjectOptions(cwd=str(d))).name == "fromdotenv"
    assert load_project(ProjectOptions(cwd=str(d), os_env={"COMPOSE_PROJECT_NAME": "os"})
                        ).name == "os"
    assert load_project(ProjectOptions(cwd=str(d), project_name="Flag")).name == "flag"


def test_compose_file_env_and_multiple_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("services:\n  web: {image: one, ports: ['80:80']}\n")
    (tmp_path / "b.yaml").write_text("services:\n  web: {image: two, ports: ['81:81']}\n")
    p = load_project(ProjectOptions(cwd=str(tmp_path),
                                    os_env={"COMPOSE_FILE": "a.yaml:b.yaml"}))
    assert p.services["web"].image == "two"
    assert [x.target for x in p.services["web"].ports] == [80, 81]
    p = load_project(ProjectOptions(files=("b.yaml", "a.yaml"), cwd=str(tmp_path)))
    assert p.services["web"].image == "one"


def test_env_file_option_and_os_env_wins(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: '${IMG}:${TAG}'}\n")
    (tmp_path / ".env").write_text("IMG=dotenv\nTAG=dotenv\n")
    (tmp_path / "other.env").write_text("IMG=other\nTAG=other\n")
    opts = ProjectOptions(cwd=str(tmp_path), os_env={"TAG": "os"})
    assert load_project(opts).services["a"].image == "dotenv:os"
    opts = ProjectOptions(cwd=str(tmp_path), os_env={"TAG": "os"}, env_files=("other.env",))
    assert load_project(opts).services["a"].image == "other:os"


def test_config_hash() -> None:
    text = "services:\n  a: {image: x, environment: {A: '1', B: '2'}, scale: 1}\n"
    h = config_hash(load_text(text).services["a"])
    assert len(h) == 64
    assert config_hash(load_text(text.replace("A: '1', B: '2'", "B: '2', A: '1'"))
                       .services["a"]) == h
    assert config_hash(load_text(text.replace("scale: 1", "scale: 3")).services["a"]) == h
    assert config_hash(load_text(text.replace("'2'", "'3'")).services["a"]) != h


def test_versions_accepted() -> None:
    for v in ("'2'", "'2.4'", "'3'", "'3.9'"):
        assert load_text(f"version: {v}\nservices:\n  a: {{image: x}}\n").services


def test_anchors_and_merge_keys() -> None:
    p = load_text("x-base: &base\n  image: x\n  restart: always\n"
                  "services:\n  a:\n    <<: *base\n    restart: 'no'\n  b: *base\n")
    assert (p.services["a"].image, p.services["a"].restart) == ("x", "no")
    assert p.services["b"].restart == "always"


def test_healthcheck_and_deploy() -> None:
    p = load_text("services:\n  a:\n    image: x\n    healthcheck:\n      test: curl -f x\n"
                  "      interval: 1m\n      retries: '3'\n"
                  "    deploy: {resources: {limits: {cpus: '1.5', memory: 1g, pids: 10}}}\n")
    hc = p.services["a"].healthcheck
    assert hc is not None and hc.test == ("CMD-SHELL", "curl -f x") and hc.interval == 60.0
    assert hc.retries == 3
    deploy = p.services["a"].deploy
    assert deploy is not None and deploy.limits is not None
    assert (deploy.limits.cpus, deploy.limits.memory, deploy.limits.pids) == (1.5, 1 << 30, 10)
