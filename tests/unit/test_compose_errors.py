"""Every way a compose file is rejected, and the message the user sees."""
from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.compose import (
    InterpolationError,
    ProjectOptions,
    SchemaError,
    dependency_order,
    load_project,
    load_text,
)
from dockyard.errors import InvalidArgument, NotFound


def _err(text: str, **kw: object) -> str:
    with pytest.raises(InvalidArgument) as e:
        load_text(text, name="t", **kw)  # type: ignore[arg-type]
    return str(e.value)


def test_invalid_yaml() -> None:
    assert _err("services:\n  web: [\n").startswith("compose.yaml: invalid YAML:")


@pytest.mark.parametrize("text", ["", "- a\n- b\n"])
def test_not_a_mapping(text: str) -> None:
    assert _err(text).startswith("compose.yaml: ")


def test_unknown_service_key() -> None:
    with pytest.raises(SchemaError) as e:
        load_text("services:\n  web:\n    image: x\n    foo: 1\n")
    assert str(e.value) == "compose.yaml: services.web Additional property foo is not allowed"


def test_unknown_top_level_key_but_extensions_allowed() -> None:
    assert _err("services: {}\nbogus: 1\n") == \
        "compose.yaml: Additional property bogus is not allowed"
    load_text("x-anything: 1\nservices:\n  web:\n    image: x\n    x-meta: {a: 1}\n")


def test_wrong_type() -> None:
    msg = _err("services:\n  web:\n    image: x\n    ports:\n      - [1]\n")
    assert msg.startswith("compose.yaml: services.web.ports.0 must be a ")
    assert "string" in msg and "number" in msg


def test_wrong_type_after_interpolation() -> None:
    assert _err("services:\n  web:\n    image: x\n    privileged: ${P}\n",
                env={"P": "maybe"}) == ("compose.yaml: services.web.privileged must be a "
                                        "boolean, not 'maybe'")
    assert _err("services:\n  web:\n    image: x\n    deploy: {replicas: lots}\n") == \
        "compose.yaml: services.web.deploy.replicas must be an integer, not 'lots'"


def test_missing_required_variable() -> None:
    with pytest.raises(InterpolationError) as e:
        load_text("services:\n  web:\n    image: ${IMG:?image please}\n")
    assert str(e.value) == ("compose.yaml: services.web.image: required variable IMG is "
                            "missing a value: image please")


def test_dependency_cycle() -> None:
    project = load_text("services:\n  a: {image: x, depends_on: [b]}\n"
                        "  b: {image: x, depends_on: [c]}\n  c: {image: x, links: [a]}\n")
    with pytest.raises(InvalidArgument, match="dependency cycle detected: a -> b -> c -> a"):
        dependency_order(project)


def test_undefined_references() -> None:
    assert "undefined volume data" in _err("services:\n  a: {image: x, volumes: ['data:/x']}\n")
    assert "undefined network back" in _err("services:\n  a: {image: x, networks: [back]}\n")
    assert "depends on undefined service 'b'" in _err(
        "services:\n  a: {image: x, depends_on: [b]}\n")
    assert "neither an image nor a build" in _err("services:\n  a: {command: x}\n")


def test_dependency_on_profile_disabled_service() -> None:
    text = "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, profiles: [dev]}\n"
    assert "disabled by profiles" in _err(text)
    assert load_text(text, profiles=("dev",)).services.keys() == {"a", "b"}


def test_bad_port_and_volume_and_duration() -> None:
    assert "invalid port specification" in _err(
        "services:\n  a: {image: x, ports: ['80:http']}\n")
    assert "invalid volume specification" in _err(
        "services:\n  a: {image: x, volumes: ['./a:rel']}\n")
    assert "invalid duration" in _err(
        "services:\n  a: {image: x, stop_grace_period: 5 parsecs}\n")


def test_extends_errors(tmp_path: Path) -> None:
    assert "cannot extend service 'nope'" in _err(
        "services:\n  a: {image: x, extends: nope}\n")
    assert "circular extends" in _err(
        "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n")


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no configuration file provided"):
        load_project(ProjectOptions(cwd=str(tmp_path)))
    with pytest.raises(NotFound, match="not found"):
        load_project(ProjectOptions(files=("nope.yaml",), cwd=str(tmp_path)))


def test_invalid_project_name() -> None:
    with pytest.raises(InvalidArgument, match="invalid project name"):
        load_text("services: {}\n", name="!!!")


def test_yaml_is_read_with_the_yaml12_core_schema(tmp_path: Path) -> None:
    """``on``/``no`` are names, ``22:22`` is a port mapping, not YAML 1.1's bool and base 60."""
    from dockyard.compose import ProjectOptions, load_project
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  on: {image: bb, ports: [22:22], environment: {DEBUG: yes}}\n"
        "  no: {image: bb}\n")
    project = load_project(ProjectOptions(cwd=str(tmp_path), os_env={}))
    assert sorted(project.services) == ["no", "on"]
    assert project.services["on"].environment["DEBUG"] == "yes"
    assert [(p.published, p.target) for p in project.services["on"].ports] == [("22", 22)]


def test_container_name_with_more_than_one_replica_is_refused() -> None:
    """Compose v2's consistency check, with the file named as for every normalise error."""
    base = "services:\n  web:\n    image: x\n    container_name: fixed\n"
    assert _err(base + "    scale: 2\n") == (
        "compose.yaml: services.scale: can't set container_name and web as container name "
        "must be unique: invalid compose project")
    assert _err(base + "    deploy: {replicas: 3}\n") == (
        "compose.yaml: services.deploy.replicas: can't set container_name and web as "
        "container name must be unique: invalid compose project")
    assert load_text(base + "    scale: 1\n").services["web"].container_name == "fixed"


def test_normalise_errors_name_the_file() -> None:
    assert _err("services:\n  web:\n    image: x\n    ports: [abc]\n") == \
        "compose.yaml: services.web.ports.0: invalid port specification 'abc'"
    assert _err("services:\n  web: {image: x, volumes: ['/a', './b:rel']}\n") == (
        "compose.yaml: services.web.volumes.1: invalid volume specification '/project/b:rel'"
        ": target must be an absolute path")
    assert _err("services:\n  a: {image: x, networks: [back]}\n") == (
        "compose.yaml: service 'a' refers to undefined network back: invalid compose project")
    assert _err("services:\n  a: {image: x, pull_policy: build}\n") == (
        "compose.yaml: services.a.pull_policy: pull_policy is 'build' but the service has no "
        "build section: invalid compose project")


def test_normalise_errors_name_the_file_that_set_the_key(tmp_path: Path) -> None:
    """With several ``-f`` files, the last one setting the faulty key is named."""
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x, ports: ['80']}\n"
                                           "  db: {image: x}\n")
    (tmp_path / "ports.yaml").write_text("services:\n  web: {ports: ['x:y']}\n")
    (tmp_path / "grace.yaml").write_text("services:\n  db: {stop_grace_period: soon}\n")
    opts = ProjectOptions(files=("compose.yaml", "ports.yaml", "grace.yaml"),
                          cwd=str(tmp_path))
    with pytest.raises(InvalidArgument) as e:
        load_project(opts)
    assert str(e.value) == "grace.yaml: services.db.stop_grace_period: invalid duration 'soon'"
    (tmp_path / "grace.yaml").write_text("services:\n  db: {stop_grace_period: 1s}\n")
    with pytest.raises(InvalidArgument) as e:
        load_project(opts)
    assert str(e.value) == "ports.yaml: services.web.ports.1: invalid port specification 'x:y'"
