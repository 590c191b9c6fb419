"""Stacks end to end on a one-node swarm: ``docker stack deploy/ls/services/ps/rm`` (the real
docker CLI does stacks client-side) and ``dockyard stack`` doing the same, with equal output."""
from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.swarmfixtures import one_node_swarm
from tests.e2e.test_cli import dy
from tests.e2e.test_swarm import eventually, free_port, ok, pytestmark  # noqa: F401

FILE = """
services:
  web:
    image: bb
    command: sleep 600
    stop_grace_period: 1s
    deploy:
      replicas: 2
      labels: {owner: test}
  db:
    image: bb
    command: sleep 600
    stop_grace_period: 1s
    networks: [back]
networks:
  back: {}
"""


@pytest.fixture(scope="module")
def manager() -> Iterator[DaemonProcess]:
    with one_node_swarm("dytest-stack-") as d:
        yield d


def _compose(d: DaemonProcess, text: str = FILE) -> str:
    path = d.base / "stack.yml"
    path.write_text(text)
    return str(path)


def _running(d: DaemonProcess, stack: str, want: int) -> None:
    def converged() -> bool:
        out = d.docker("stack", "ps", stack, "--format", "{{.CurrentState}}")
        rows = out.stdout.decode().split("\n")  # no task yet: "nothing found in stack", 1
        return out.returncode == 0 and sum(r.startswith("Running") for r in rows) == want
    eventually(converged)


def test_docker_and_dockyard_deploy_the_same_stack(manager: DaemonProcess) -> None:
    path = _compose(manager)
    out = ok(manager, "stack", "deploy", "-c", path, "dk")
    assert sorted(out.split("\n")[:4]) == ["Creating network dk_back",
                                           "Creating network dk_default",
                                           "Creating service dk_db", "Creating service dk_web"]
    ours = dy(manager, "stack", "deploy", "-c", path, "dy")
    assert ours.returncode == 0, ours.stderr.decode()
    assert sorted(ours.stdout.decode().split("\n")) == [
        "", "Creating network dy_back", "Creating network dy_default", "Creating service dy_db",
        "Creating service dy_web"]
    _running(manager, "dk", 3)
    _running(manager, "dy", 3)
    assert ok(manager, "stack", "ls") == "NAME      SERVICES\ndk        2\ndy        2\n"
    for args in (["stack", "ls"], ["stack", "ls", "--format", "{{.Name}}:{{.Services}}"]):
        assert dy(manager, *args).stdout.decode() == ok(manager, *args)
    fmt = "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}"
    for stack in ("dk", "dy"):
        theirs = ok(manager, "stack", "services", stack, "--format", fmt)
        assert theirs == (f"{stack}_db replicated 1/1 bb:latest\n"
                          f"{stack}_web replicated 2/2 bb:latest\n")
        assert dy(manager, "stack", "services", stack, "--format", fmt).stdout.decode() == theirs
        tfmt = "{{.Name}} {{.Image}} {{.DesiredState}}"
        assert dy(manager, "stack", "ps", stack, "--format", tfmt).stdout.decode() == \
            ok(manager, "stack", "ps", stack, "--format", tfmt)
    specs = [ok(manager, "service", "inspect", f"{s}_web", "--format",
                "{{json .Spec.Labels}} {{json .Spec.TaskTemplate.ContainerSpec.Args}} "
                "{{len .Spec.TaskTemplate.Networks}}").replace(s, "NS") for s in ("dk", "dy")]
    assert specs[0] == specs[1]
    assert '"com.docker.stack.namespace":"NS"' in specs[0] and '"owner":"test"' in specs[0]

    # a second deploy updates in place; --prune removes what the file no longer has
    smaller = FILE.replace("replicas: 2", "replicas: 1").split("  db:")[0]
    again = dy(manager, "stack", "deploy", "--prune", "-c", _compose(manager, smaller), "dy")
    assert again.returncode == 0, again.stderr.decode()
    text = again.stdout.decode()
    assert "Removing service dy_db" in text and "Updating service dy_web (id: " in text
    assert ok(manager, "stack", "services", "dy", "--format", "{{.Name}}") == "dy_web\n"

    for stack, tool in (("dk", "docker"), ("dy", "dockyard")):
        out = ok(manager, "stack", "rm", stack) if tool == "docker" else \
            dy(manager, "stack", "rm", stack).stdout.decode()
        assert f"Removing service {stack}_web" in out
        assert f"Removing network {stack}_default" in out
    assert ok(manager, "stack", "ls") == "NAME      SERVICES\n"
    assert ok(manager, "network", "ls", "--filter", "driver=overlay", "--format",
              "{{.Name}}") == "ingress\n", "only the swarm's own ingress network is left"
    eventually(lambda: ok(manager, "ps", "-aq") == "", timeout=40)


def test_stack_bad_input(manager: DaemonProcess) -> None:
    for tool in ("docker", "dockyard"):
        run = manager.docker if tool == "docker" else (lambda *a: dy(manager, *a))
        gone = run("stack", "rm", "nothing-here")
        assert gone.returncode == 0 and gone.stderr.decode() == \
            "Nothing found in stack: nothing-here\n", tool
        ps = run("stack", "ps", "nothing-here")
        assert ps.returncode == 1 and "nothing found in stack: nothing-here" in \
            ps.stderr.decode(), tool
        text = (FILE + "  ext: {external: true, name: no-such-net}\n").replace(
            "networks: [back]", "networks: [back, ext]")
        external = run("stack", "deploy", "-c", _compose(manager, text), "bad")
        assert external.returncode == 1, tool
        assert '"no-such-net" is declared as external, but could not be found' in \
            external.stderr.decode(), tool
    built = dy(manager, "stack", "deploy", "-c", _compose(
        manager, "services:\n  app:\n    build: .\n"), "bad")
    assert built.returncode == 1 and "service app: image is required" in built.stderr.decode()
    assert ok(manager, "stack", "ls") == "NAME      SERVICES\n"


def test_service_logs_are_refused_clearly(manager: DaemonProcess) -> None:
    missing = manager.docker("service", "logs", "no-such-service")
    assert missing.returncode == 1
    assert "no such task or service: no-such-service" in missing.stderr.decode()
    ok(manager, "service", "create", "-d", "--name", "quiet", "bb", "sleep", "60")
    try:
        out = manager.docker("service", "logs", "quiet")
        assert out.returncode == 1
        assert "service logs are not supported yet" in out.stderr.decode()
    finally:
        ok(manager, "service", "rm", "quiet")


def test_stack_ports_answer_through_the_routing_mesh(manager: DaemonProcess) -> None:
    port = free_port()
    text = (f"services:\n  www:\n    image: bb\n    command: [sh, -c, 'hostname > /www/index.html;"
            f" exec httpd -f -p 80 -h /www']\n    ports: ['{port}:80']\n"
            "    stop_grace_period: 1s\n    deploy: {replicas: 2}\n")
    text = text.replace("hostname >", "mkdir -p /www; hostname >")
    out = dy(manager, "stack", "deploy", "-c", _compose(manager, text), "web")
    assert out.returncode == 0, out.stderr.decode()
    try:
        _running(manager, "web", 2)
        seen: set[str] = set()

        def both_answer() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    seen.add(resp.read().decode().strip())
            except OSError:
                return False
            return len(seen) == 2
        eventually(both_answer, timeout=30)
        spec = ok(manager, "service", "inspect", "web_www", "--format",
                  "{{range .Endpoint.Ports}}{{.PublishMode}} {{.PublishedPort}}{{end}}")
        assert spec.strip() == f"ingress {port}"
    finally:
        ok(manager, "stack", "rm", "web")
