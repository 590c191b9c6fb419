"""Planning is pure: the desired project against the containers the engine reports."""
from __future__ import annotations

from typing import Any

import pytest

from dockyard.compose import labels as L
from dockyard.compose import load_text
from dockyard.compose.plan import plan_project
from dockyard.compose.render import config_hash
from dockyard.errors import InvalidArgument

TEXT = """
services:
  web:
    image: bb
    command: httpd -f
  db:
    image: bb
    command: sleep 100
"""


def _container(project: str, service: str, number: int, hash_: str,
               state: str = "running") -> dict[str, Any]:
    return {"Names": [f"/{project}-{service}-{number}"], "State": state,
            "Labels": {L.PROJECT: project, L.SERVICE: service, L.NUMBER: str(number),
                       L.CONFIG_HASH: hash_, L.ONEOFF: "False"}}


def kinds(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [a.kind for a in p.actions] for name, p in plan.items()}


def test_fresh_project_creates_every_service() -> None:
    project = load_text(TEXT, name="demo")
    assert kinds(plan_project(project, [])) == {"web": ["create"], "db": ["create"]}


def test_current_running_is_left_alone_and_stopped_is_started() -> None:
    project = load_text(TEXT, name="demo")
    existing = [_container("demo", "web", 1, config_hash(project.services["web"])),
                _container("demo", "db", 1, config_hash(project.services["db"]), "exited")]
    assert kinds(plan_project(project, existing)) == {"web": ["noop"], "db": ["start"]}


def test_changed_config_recreates_only_that_service() -> None:
    project = load_text(TEXT, name="demo")
    existing = [_container("demo", "web", 1, "sha256:old"),
                _container("demo", "db", 1, config_hash(project.services["db"]))]
    assert kinds(plan_project(project, existing)) == {"web": ["recreate"], "db": ["noop"]}


def test_scale_up_and_down() -> None:
    project = load_text(TEXT, name="demo")
    current = config_hash(project.services["web"])
    existing = [_container("demo", "web", n, current) for n in (1, 2, 3)]
    assert kinds(plan_project(project, existing, {"web": 5}, services=["web"]))["web"] == \
        ["noop", "noop", "noop", "create", "create"]
    assert kinds(plan_project(project, existing, {"web": 1}, services=["web"]))["web"] == \
        ["noop", "remove", "remove"]


def test_recreate_takes_the_canonical_name() -> None:
    """A container docker-compose 1.29 made (``demo_web_1``, another hash) comes back as
    ``demo-web-1``, as Compose v2 does; one left alone keeps its name."""
    project = load_text(TEXT, name="demo")
    old = _container("demo", "web", 1, "hash-of-1.29")
    old["Names"] = ["/demo_web_1"]
    kept = _container("demo", "db", 1, config_hash(project.services["db"]))
    kept["Names"] = ["/demo_db_1"]
    plan = plan_project(project, [old, kept])
    assert [(a.kind, a.name) for a in plan["web"].actions] == [("recreate", "demo-web-1")]
    assert [(a.kind, a.name) for a in plan["db"].actions] == [("noop", "demo_db_1")]


def test_scale_flag_above_one_with_container_name_is_refused_before_planning() -> None:
    project = load_text("services:\n  web: {image: bb, container_name: fixed}\n"
                        "  db: {image: bb}\n", name="demo")
    with pytest.raises(InvalidArgument) as e:
        plan_project(project, [], {"web": 2})
    assert str(e.value) == ("services.scale: can't set container_name and web as container "
                            "name must be unique: invalid compose project")
    assert kinds(plan_project(project, [], {"web": 1, "db": 3})) == {
        "web": ["create"], "db": ["create", "create", "create"]}


def test_changed_image_id_recreates_even_with_the_same_config_hash() -> None:
    project = load_text(TEXT, name="demo")
    web = _container("demo", "web", 1, config_hash(project.services["web"]))
    web["Labels"][L.IMAGE] = "sha256:" + "a" * 64
    db = _container("demo", "db", 1, config_hash(project.services["db"]))
    db["Labels"][L.IMAGE] = "sha256:" + "b" * 64
    ids = {"web": "sha256:" + "c" * 64, "db": "sha256:" + "b" * 64}
    assert kinds(plan_project(project, [web, db], image_ids=ids)) == \
        {"web": ["recreate"], "db": ["noop"]}
    # no image id known: only the config hash decides; --no-recreate keeps it
    assert kinds(plan_project(project, [web, db])) == {"web": ["noop"], "db": ["noop"]}
    assert kinds(plan_project(project, [web, db], image_ids=ids, no_recreate=True)) == \
        {"web": ["noop"], "db": ["noop"]}
    # a container without the label (made before it was written) is recreated, as v2 does
    del db["Labels"][L.IMAGE]
    assert kinds(plan_project(project, [web, db], image_ids=ids))["db"] == ["recreate"]
