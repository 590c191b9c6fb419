"""Compose's wait conditions (``depends_on`` and ``up --wait``): the pure judgement of one
inspected container, and the converger's polling against a scripted fake client."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.compose import ProjectOptions, load_project
from dockyard.compose import converge as conv_mod
from dockyard.compose.conditions import (
    COMPLETED,
    HEALTHY,
    RUNNING_OR_HEALTHY,
    ComposeError,
    check_condition,
    go_duration,
)
from dockyard.compose.converge import Converger

HC = {"Test": ["CMD-SHELL", "true"]}


def info(status: str = "running", health: str | None = None, code: int = 0,
         hc: dict[str, Any] | None = HC, service: str = "db") -> dict[str, Any]:
    state: dict[str, Any] = {"Status": status, "Running": status == "running",
                             "ExitCode": code}
    if health is not None:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    return {"Id": "c1", "Name": "/p-db-1", "State": state,
            "Config": {"Healthcheck": hc,
                       "Labels": {"com.docker.compose.service": service}}}


def test_healthy_condition() -> None:
    assert check_condition(info(health="healthy"), HEALTHY) is True
    assert check_condition(info(health="starting"), HEALTHY) is False
    assert check_condition(info(health=None), HEALTHY) is False  # no probe yet = starting
    assert check_condition(info("created", health=None), HEALTHY) is False
    with pytest.raises(ComposeError, match=r"^container p-db-1 is unhealthy$"):
        check_condition(info(health="unhealthy"), HEALTHY)
    with pytest.raises(ComposeError, match=r"^container p-db-1 exited \(3\)$"):
        check_condition(info("exited", health="healthy", code=3), HEALTHY)
    for hc in (None, {"Test": ["NONE"]}):
        with pytest.raises(ComposeError, match="^container p-db-1 has no healthcheck "
                                               "configured$"):
            check_condition(info(hc=hc), HEALTHY)
    with pytest.raises(ComposeError, match='unexpected health status "weird"'):
        check_condition(info(health="weird"), HEALTHY)


def test_running_or_healthy_condition() -> None:
    assert check_condition(info(hc=None), RUNNING_OR_HEALTHY) is True
    assert check_condition(info("created", hc=None), RUNNING_OR_HEALTHY) is False
    assert check_condition(info(health="starting"), RUNNING_OR_HEALTHY) is False
    assert check_condition(info(health="healthy"), RUNNING_OR_HEALTHY) is True
    with pytest.raises(ComposeError, match=r"^container p-db-1 exited \(0\)$"):
        check_condition(info("exited", hc=None), RUNNING_OR_HEALTHY)


def test_completed_condition() -> None:
    assert check_condition(info(hc=None), COMPLETED) is False
    assert check_condition(info("exited", hc=None), COMPLETED) is True
    with pytest.raises(ComposeError, match=r'^service "init" didn\'t complete successfully: '
                                           r"exit 2$"):
        check_condition(info("exited", code=2, service="init"), COMPLETED)


def test_go_duration() -> None:
    assert [go_duration(s) for s in (0, 5, 60, 90, 600, 3600, 3725)] == \
        ["0s", "5s", "1m0s", "1m30s", "10m0s", "1h0m0s", "1h2m5s"]


# -- polling through the converger -----------------------------------------------------------------
class FakeClient:
    """``/containers/json`` lists one container per service; each inspect pops the next state."""

    def __init__(self, states: dict[str, list[dict[str, Any]]]) -> None:
        self.states = states
        self.inspects = 0

    def get(self, path: str, query: Any = None) -> Any:
        if path == "/containers/json":
            return [{"Id": s, "Names": [f"/p-{s}-1"],
                     "Labels": {"com.docker.compose.service": s}} for s in self.states]
        cid = path.split("/")[2]
        self.inspects += 1
        seq = self.states[cid]
        out = seq.pop(0) if len(seq) > 1 else seq[0]
        return {**out, "Name": f"/p-{cid}-1"}


YAML = """\
services:
  db:
    image: bb
    healthcheck: {test: ["CMD", "true"]}
  init:
    image: bb
  web:
    image: bb
    depends_on:
      db: {condition: service_healthy}
      init: {condition: service_completed_successfully}
  opt:
    image: bb
    depends_on:
      db: {condition: service_healthy, required: false}
"""


@pytest.fixture
def project(tmp_path: Path) -> Any:
    (tmp_path / "compose.yaml").write_text(YAML)
    return load_project(ProjectOptions(files=(str(tmp_path / "compose.yaml"),),
                                       project_name="p", os_env={}, cwd=str(tmp_path)))


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(conv_mod, "POLL", 0.0)
    yield


def converger(project: Any, client: FakeClient) -> tuple[Converger, list[tuple[str, ...]],
                                                          list[str]]:
    events: list[tuple[str, ...]] = []
    warnings: list[str] = []
    c = Converger(client, project, lambda *e: events.append(e),  # type: ignore[arg-type]
                  warn=warnings.append)
    return c, events, warnings


def test_waits_for_health_then_completion(project: Any) -> None:
    client = FakeClient({
        "db": [info(health=None), info(health="starting"), info(health="healthy")],
        "init": [info(hc=None), info("exited", hc=None)]})
    c, events, _ = converger(project, client)
    c.wait_dependencies(project.services["web"], {})
    assert ("Container", "p-db-1", "Healthy") in events
    assert ("Container", "p-init-1", "Exited") in events
    assert events.index(("Container", "p-db-1", "Waiting")) < \
        events.index(("Container", "p-db-1", "Healthy"))


def test_unhealthy_dependency_fails_with_composes_text(project: Any) -> None:
    client = FakeClient({"db": [info(health="starting"), info(health="unhealthy")],
                         "init": [info("exited", hc=None)]})
    c, events, _ = converger(project, client)
    with pytest.raises(ComposeError) as exc:
        c.wait_dependencies(project.services["web"], {})
    assert str(exc.value) == "dependency failed to start: container p-db-1 is unhealthy"
    assert events[-1] == ("Container", "p-db-1", "Error")


def test_exited_dependency_and_failed_init(project: Any) -> None:
    client = FakeClient({"db": [info("exited", code=1)], "init": [info("exited", hc=None)]})
    c, _, _ = converger(project, client)
    with pytest.raises(ComposeError, match=r"^dependency failed to start: container p-db-1 "
                                           r"exited \(1\)$"):
        c.wait_dependencies(project.services["web"], {})
    client = FakeClient({"db": [info(health="healthy")],
                         "init": [info("exited", code=4, hc=None, service="init")]})
    c, _, _ = converger(project, client)
    with pytest.raises(ComposeError, match=r'^service "init" didn\'t complete successfully: '
                                           r"exit 4$"):
        c.wait_dependencies(project.services["web"], {})


def test_optional_dependency_only_warns(project: Any) -> None:
    client = FakeClient({"db": [info(health="unhealthy")]})
    c, _, warnings = converger(project, client)
    c.wait_dependencies(project.services["opt"], {})
    assert warnings == ['optional dependency "db" failed to start: container p-db-1 is '
                        'unhealthy']


def test_dependency_timeout_and_skipped_outside_plans(project: Any) -> None:
    client = FakeClient({"db": [info(health=None)], "init": [info("exited", hc=None)]})
    c, _, _ = converger(project, client)
    c.wait_timeout = 0.05
    with pytest.raises(ComposeError, match="^timeout waiting for dependencies$"):
        c.wait_dependencies(project.services["web"], {})
    before = client.inspects
    c.wait_dependencies(project.services["web"], {"web": None})  # type: ignore[dict-item]
    assert client.inspects == before  # --no-deps: db and init are not part of this up


def test_up_wait(project: Any) -> None:
    client = FakeClient({"db": [info(health="starting"), info(health="healthy")],
                         "init": [info(hc=None), info("exited", hc=None)],
                         "web": [info(hc=None)]})
    c, events, _ = converger(project, client)
    c.wait_services(["db", "init", "web"])
    assert {e for e in events if e[2] != "Waiting"} == {
        ("Container", "p-db-1", "Healthy"), ("Container", "p-init-1", "Exited"),
        ("Container", "p-web-1", "Healthy")}
    client = FakeClient({"db": [info(health="starting")]})
    c, _, _ = converger(project, client)
    with pytest.raises(ComposeError, match="^application not healthy after 1s$"):
        c.wait_services(["db"], timeout=1)
    client = FakeClient({"web": [info("exited", code=0, hc=None)]})
    c, _, _ = converger(project, client)
    with pytest.raises(ComposeError, match=r"^container p-web-1 exited \(0\)$"):
        c.wait_services(["web"])
