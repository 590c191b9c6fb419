"""Swarm secrets and configs end to end on a one-node swarm through the real docker CLI: create
(file, stdin), ls/inspect, refusals, a service reading its secret and config files, and stacks
with file secrets/configs through ``docker stack deploy`` and ``dockyard stack deploy``."""
from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.swarmfixtures import one_node_swarm
from tests.e2e.test_cli import dy
from tests.e2e.test_swarm import eventually, ok, pytestmark  # noqa: F401


@pytest.fixture(scope="module")
def manager() -> Iterator[DaemonProcess]:
    with one_node_swarm("dytest-secrets-") as d:
        yield d


def _fail(d: DaemonProcess, *args: str, input: bytes | None = None) -> str:
    out = d.docker(*args, input=input, timeout=60)
    assert out.returncode != 0, f"docker {' '.join(args)} succeeded: {out.stdout.decode()}"
    return out.stderr.decode()


def _stdin(d: DaemonProcess, kind: str, name: str, data: bytes) -> str:
    out = d.docker(kind, "create", name, "-", input=data)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().strip()


def _task_container(d: DaemonProcess, service: str) -> str:
    found: list[str] = []

    def running() -> bool:
        ids = ok(d, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}")
        found[:] = ids.split()
        return bool(found)
    eventually(running, 60)
    return found[0]


def test_create_ls_inspect_rm(manager: DaemonProcess) -> None:
    src = manager.base / "pw.txt"
    src.write_bytes(b"s3cret\n")
    sid = ok(manager, "secret", "create", "--label", "team=a", "sc_file", str(src)).strip()
    sid2 = _stdin(manager, "secret", "sc_stdin", b"from-stdin")
    assert len(sid) == 25 and len(sid2) == 25 and sid != sid2
    names = ok(manager, "secret", "ls", "--format", "{{.ID}} {{.Name}}").split("\n")
    assert f"{sid} sc_file" in names and f"{sid2} sc_stdin" in names
    table = ok(manager, "secret", "ls", "--filter", "name=sc_f").split("\n")
    assert table[0].split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
    assert len([r for r in table[1:] if r]) == 1 and "sc_file" in table[1]
    assert ok(manager, "secret", "ls", "-q", "--filter", "label=team=a").split() == [sid]
    [raw] = json.loads(ok(manager, "secret", "inspect", "sc_file"))
    assert raw["ID"] == sid and raw["Spec"] == {"Name": "sc_file", "Labels": {"team": "a"}}
    assert "Data" not in raw["Spec"] and raw["Version"]["Index"] > 0
    assert ok(manager, "secret", "inspect", "-f", "{{.Spec.Name}}", sid[:8]) == "sc_file\n"
    # duplicates, bad names, sizes, unknown ones
    assert "rpc error: code = AlreadyExists desc = secret sc_file already exists" in _fail(
        manager, "secret", "create", "sc_file", str(src))
    assert "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed" in _fail(
        manager, "secret", "create", "bad_", str(src))
    big = manager.base / "big"
    big.write_bytes(b"x" * 500 * 1024)
    assert "secret data must be larger than 0 and less than 512000 bytes" in _fail(
        manager, "secret", "create", "sc_big", str(big))
    assert "Error response from daemon: secret sc_nope not found" in _fail(
        manager, "secret", "inspect", "sc_nope")
    # configs keep their data in inspect
    cid = _stdin(manager, "config", "cf_one", b"key=value\n")
    [craw] = json.loads(ok(manager, "config", "inspect", cid))
    assert base64.b64decode(craw["Spec"]["Data"]) == b"key=value\n"
    assert craw["Spec"]["Name"] == "cf_one"
    assert "rpc error: code = AlreadyExists desc = config cf_one already exists" in _fail(
        manager, "config", "create", "cf_one", str(src))
    assert ok(manager, "config", "ls", "--format", "{{.Name}}").split() == ["cf_one"]
    for kind, name in (("secret", "sc_file"), ("secret", sid2), ("config", "cf_one")):
        assert ok(manager, kind, "rm", name).strip() == name
    assert ok(manager, "secret", "ls", "-q") == "" and ok(manager, "config", "ls", "-q") == ""


def test_service_reads_secret_and_config(manager: DaemonProcess) -> None:
    _stdin(manager, "secret", "sv_pw", b"hunter2")
    _stdin(manager, "config", "sv_conf", b"listen 8080\n")
    ok(manager, "service", "create", "-d", "--name", "sv_web", "--secret", "sv_pw",
       "--secret", "source=sv_pw,target=other,mode=0400,uid=7",
       "--config", "src=sv_conf,target=/etc/app.conf", "bb", "sleep", "600")
    try:
        cont = _task_container(manager, "sv_web")
        read = ok(manager, "exec", cont, "sh", "-c",
                  "cat /run/secrets/sv_pw; echo; cat /etc/app.conf; "
                  "stat -c '%a %u' /run/secrets/sv_pw /run/secrets/other /etc/app.conf; "
                  "echo x > /run/secrets/sv_pw || echo readonly")
        assert read.split("\n") == ["hunter2", "listen 8080", "444 0", "400 7", "444 0",
                                    "readonly", ""]
        err = _fail(manager, "secret", "rm", "sv_pw")
        assert "rpc error: code = InvalidArgument desc = secret 'sv_pw' is in use by the " \
               "following service: sv_web" in err
        assert "config 'sv_conf' is in use by the following service: sv_web" in _fail(
            manager, "config", "rm", "sv_conf")
        assert "secret not found: sv_missing" in _fail(
            manager, "service", "create", "--name", "sv_bad", "--secret", "sv_missing", "bb")
    finally:
        ok(manager, "service", "rm", "sv_web")
    eventually(lambda: not ok(manager, "ps", "-aq", "--filter",
                              "label=com.docker.swarm.service.name=sv_web").strip(), 60)
    assert list(manager.base.rglob("swarm-files/*")) == []
    ok(manager, "secret", "rm", "sv_pw")
    ok(manager, "config", "rm", "sv_conf")


STACK = """
services:
  app:
    image: bb
    command: sh -c "cat /run/secrets/token /run/secrets/alias /app.ini; sleep 600"
    stop_grace_period: 1s
    secrets:
      - token
      - source: token
        target: alias
    configs:
      - app.ini
secrets:
  token:
    file: ./token.txt
configs:
  app.ini:
    file: ./app.ini
"""


@pytest.mark.parametrize("tool", ["docker", "dockyard"])
def test_stack_with_file_secrets(manager: DaemonProcess, tool: str) -> None:
    work = manager.base / f"stack-{tool}"
    work.mkdir(exist_ok=True)
    (work / "token.txt").write_text("tok-" + tool)
    (work / "app.ini").write_text("[app]\n")
    (work / "stack.yml").write_text(STACK)
    stack = "skdk" if tool == "docker" else "skdy"

    def run(*args: str) -> str:
        cwd = os.getcwd()
        os.chdir(work)
        try:
            if tool == "docker":
                return ok(manager, *args)
            out = dy(manager, *args)
            assert out.returncode == 0, out.stderr.decode()
            return out.stdout.decode()
        finally:
            os.chdir(cwd)

    out = run("stack", "deploy", "-c", str(work / "stack.yml"), stack)
    assert sorted(out.split("\n"))[1:] == [f"Creating config {stack}_app.ini",
                                           f"Creating network {stack}_default",
                                           f"Creating secret {stack}_token",
                                           f"Creating service {stack}_app"]
    [sec] = json.loads(ok(manager, "secret", "inspect", f"{stack}_token"))
    assert sec["Spec"]["Labels"] == {"com.docker.stack.namespace": stack}
    cont = _task_container(manager, f"{stack}_app")

    def logged() -> bool:
        return ok(manager, "logs", cont) == f"tok-{tool}tok-{tool}[app]\n"
    eventually(logged)
    again = run("stack", "deploy", "-c", str(work / "stack.yml"), stack)  # same data: fine
    assert again.strip() == f"Updating service {stack}_app (id: " + \
        json.loads(ok(manager, "service", "inspect", f"{stack}_app"))[0]["ID"] + ")"
    (work / "token.txt").write_text("changed")  # a secret's data never changes
    cwd = os.getcwd()
    os.chdir(work)
    try:
        refused = manager.docker("stack", "deploy", "-c", "stack.yml", stack) \
            if tool == "docker" else dy(manager, "stack", "deploy", "-c", "stack.yml", stack)
    finally:
        os.chdir(cwd)
    assert refused.returncode == 1
    assert refused.stderr.decode().split("\n")[-2:] == [
        f"failed to update secret {stack}_token: Error response from daemon: rpc error: "
        "code = InvalidArgument desc = only updates to Labels are allowed", ""]
    removed = run("stack", "rm", stack)
    assert sorted(removed.split("\n"))[1:] == [f"Removing config {stack}_app.ini",
                                               f"Removing network {stack}_default",
                                               f"Removing secret {stack}_token",
                                               f"Removing service {stack}_app"]
    assert ok(manager, "secret", "ls", "-q") == "" and ok(manager, "config", "ls", "-q") == ""


def _timeless(text: str) -> str:
    """Output with its "N seconds ago" (which may tick between two runs) made one word and
    the table padding that depends on it squeezed."""
    text = re.sub(r"(Less than a second|About a minute|\d+ seconds?) ago", "AGO", text)
    return re.sub(r" {2,}", "  ", text)


def test_dockyard_secret_and_config_commands_match_docker(manager: DaemonProcess) -> None:
    def ours(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
        out = dy(manager, *args, input=input)
        return out.returncode, out.stdout.decode(), out.stderr.decode()

    rc, sid, err = ours("secret", "create", "-l", "x=1", "dy_sec", "-", input=b"abc")
    assert rc == 0, err
    sid = sid.strip()
    rc, cid, err = ours("config", "create", "dy_conf", "-", input=b"conf-data")
    assert rc == 0, err
    [raw] = json.loads(ok(manager, "config", "inspect", "dy_conf"))
    assert base64.b64decode(raw["Spec"]["Data"]) == b"conf-data" and raw["ID"] == cid.strip()
    for args in (["secret", "ls"], ["secret", "ls", "-q"], ["config", "ls"],
                 ["secret", "ls", "--format", "{{.Name}} {{.Labels}} {{.Label \"x\"}}"],
                 ["secret", "ls", "--format", "json"], ["config", "ls", "--filter", "name=dy_"],
                 ["secret", "inspect", "dy_sec"], ["config", "inspect", "dy_conf", cid.strip()],
                 ["secret", "inspect", "--format", "{{.Spec.Labels}}", sid]):
        rc, out, err = ours(*args)
        assert (rc, _timeless(out)) == (0, _timeless(ok(manager, *args))), (args, err)
    for args in (["secret", "inspect", "dy_nope"], ["secret", "rm", "dy_nope"],
                 ["secret", "create", "dy_sec", "-"], ["secret", "ls", "--filter", "bogus=1"]):
        theirs = manager.docker(*args, input=b"abc")
        rc, out, err = ours(*args, input=b"abc")
        assert (rc, err) == (theirs.returncode, theirs.stderr.decode()), args
    for kind, name in (("secret", "dy_sec"), ("config", "dy_conf")):
        assert ours(kind, "rm", name)[:2] == (0, name + "\n")
    assert ok(manager, "secret", "ls", "-q") == "" and ok(manager, "config", "ls", "-q") == ""


def test_docker_py_secrets_and_configs(manager: DaemonProcess) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{manager.socket_path}", version="1.44")
    try:
        secret = client.secrets.create(name="py_sec", data=b"py-data", labels={"p": "q"})
        assert client.secrets.get("py_sec").id == secret.id
        assert [s.name for s in client.secrets.list(filters={"label": "p=q"})] == ["py_sec"]
        assert "Data" not in client.api.inspect_secret(secret.id)["Spec"]
        config = client.configs.create(name="py_conf", data=b"cfg")
        assert base64.b64decode(client.api.inspect_config(config.id)["Spec"]["Data"]) == b"cfg"
        with pytest.raises(docker.errors.APIError, match="already exists"):
            client.secrets.create(name="py_sec", data=b"again")
        with pytest.raises(docker.errors.NotFound):
            client.secrets.get("py_nope")
        secret.remove()
        config.remove()
        assert client.secrets.list() == [] and client.configs.list() == []
    finally:
        client.close()


def test_inspect_pretty_matches_docker(manager: DaemonProcess) -> None:
    _stdin(manager, "secret", "pp_sec", b"x")
    ok(manager, "config", "create", "-l", "a=b", "-l", "c", "pp_conf",
       str(_write(manager, "pp.txt", b"line1\nline2\n")))
    _stdin(manager, "config", "pp_bare", b"plain")
    try:
        for args in (["secret", "inspect", "--pretty", "pp_sec"],
                     ["config", "inspect", "--pretty", "pp_conf", "pp_bare"],
                     ["config", "inspect", "--pretty", "pp_nope"]):
            theirs = manager.docker(*args)
            out = dy(manager, *args)
            assert (out.returncode, out.stdout.decode(), out.stderr.decode()) == (
                theirs.returncode, theirs.stdout.decode(), theirs.stderr.decode()), args
        [raw] = json.loads(ok(manager, "config", "inspect", "pp_conf"))
        assert list(raw) == ["ID", "Version", "CreatedAt", "UpdatedAt", "Spec"]
        assert list(raw["Spec"]) == ["Name", "Labels", "Data"]
    finally:
        ok(manager, "secret", "rm", "pp_sec")
        ok(manager, "config", "rm", "pp_conf", "pp_bare")


def _write(d: DaemonProcess, name: str, data: bytes) -> Path:
    path = d.base / name
    path.write_bytes(data)
    return path
