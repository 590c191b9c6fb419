"""Swarm secrets/configs without a daemon: the manager's rules (``cluster.secrets`` over the
in-memory store), the files a task gets, the API's wire form and the stack conversion."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.api.routes.swarmsecrets import wire
from dockyard.cli.stackspec import StackError, convert
from dockyard.cluster.memstore import MemStore
from dockyard.cluster.objects import SERVICES, new_id
from dockyard.cluster.secrets import SecretViews, task_files
from dockyard.cluster.store import Object, Store
from dockyard.compose.loader import ProjectOptions, load_project
from dockyard.types.swarm import CONFIGS, SECRETS


class Views(SecretViews):
    def __init__(self) -> None:
        self.store = MemStore()

    def _manager_store(self) -> Store:
        return self.store


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _service(views: Views, name: str, secrets: list[dict[str, Any]]) -> None:
    views.store.create(Object(SERVICES, new_id(), {"Spec": {
        "Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "bb", "Secrets": secrets}}}}))


def test_create_unique_names_and_validation() -> None:
    v = Views()
    obj = v.create_file_object(SECRETS, {"Name": "pw", "Labels": {"a": "b"},
                                         "Data": _b64(b"x")})
    assert v.file_object(SECRETS, "pw").id == obj.id == v.file_object(SECRETS, obj.id[:5]).id
    with pytest.raises(errors.Conflict, match="code = AlreadyExists desc = secret pw already"):
        v.create_file_object(SECRETS, {"Name": "pw", "Data": _b64(b"y")})
    # the same name as a config is fine: separate namespaces
    v.create_file_object(CONFIGS, {"Name": "pw", "Data": _b64(b"y")})
    for spec, text in (({"Data": _b64(b"x")}, "name must be provided"),
                       ({"Name": "a" * 65, "Data": _b64(b"x")}, "invalid name, only 64"),
                       ({"Name": "x-", "Data": _b64(b"x")}, "invalid name"),
                       ({"Name": "e"}, "secret data must be larger than 0 and less than 512000"),
                       ({"Name": "big", "Data": _b64(b"x" * 512000)}, "less than 512000 bytes"),
                       ({"Name": "b64", "Data": "!!"}, "illegal base64")):
        with pytest.raises(errors.InvalidArgument, match=text.replace("[", r"\[")):
            v.create_file_object(SECRETS, spec)
    with pytest.raises(errors.NotFound, match="secret nope not found"):
        v.file_object(SECRETS, "nope")


def test_update_labels_only_and_version() -> None:
    v = Views()
    obj = v.create_file_object(CONFIGS, {"Name": "c", "Data": _b64(b"one")})
    spec = {"Name": "c", "Labels": {"k": "v"}, "Data": _b64(b"one")}
    with pytest.raises(errors.InvalidArgument, match="update out of sequence"):
        v.update_file_object(CONFIGS, "c", obj.version + 100, spec)
    updated = v.update_file_object(CONFIGS, "c", obj.version, spec)
    assert updated.spec["Spec"]["Labels"] == {"k": "v"}
    assert base64.b64decode(updated.spec["Spec"]["Data"]) == b"one"
    for change in ({"Data": _b64(b"two")}, {"Name": "d"}):
        with pytest.raises(errors.InvalidArgument, match="only updates to Labels are allowed"):
            v.update_file_object(CONFIGS, "c", updated.version, {**spec, **change})


def test_remove_refused_while_used_and_reference_checks() -> None:
    v = Views()
    obj = v.create_file_object(SECRETS, {"Name": "s", "Data": _b64(b"x")})
    ref = {"SecretID": obj.id, "SecretName": "s",
           "File": {"Name": "s", "UID": "0", "GID": "0", "Mode": 0o444}}
    _service(v, "web", [ref])
    _service(v, "api", [ref])
    with pytest.raises(errors.InvalidArgument, match="secret 's' is in use by the following "
                                                     "services: (web, api|api, web)"):
        v.remove_file_object(SECRETS, "s")
    spec = {"TaskTemplate": {"ContainerSpec": {"Secrets": [ref]}}}
    v.check_references(spec)
    twice = {"TaskTemplate": {"ContainerSpec": {"Secrets": [ref, {**ref, "SecretName": "s"}]}}}
    with pytest.raises(errors.InvalidArgument, match="secret references 's' and 's' have a "
                                                     "conflicting target: 's'"):
        v.check_references(twice)
    ghost = {"TaskTemplate": {"ContainerSpec": {"Secrets": [{**ref, "SecretID": "zz"}]}}}
    with pytest.raises(errors.InvalidArgument, match="secret not found: s"):
        v.check_references(ghost)
    for svc in v.store.list(SERVICES).objects:
        v.store.delete(SERVICES, svc.id)
    v.remove_file_object(SECRETS, "s")
    assert v.store.list(SECRETS).objects == []
    v.create_file_object(SECRETS, {"Name": "s", "Data": _b64(b"again")})  # the name is free


def test_task_files_and_wire() -> None:
    v = Views()
    s = v.create_file_object(SECRETS, {"Name": "s", "Data": _b64(b"pw")})
    c = v.create_file_object(CONFIGS, {"Name": "c", "Data": _b64(b"cfg")})
    spec = {"ContainerSpec": {
        "Secrets": [{"SecretID": s.id, "SecretName": "s",
                     "File": {"Name": "s", "UID": "5", "GID": "6", "Mode": 0o400}}],
        "Configs": [{"ConfigID": c.id, "ConfigName": "c",
                     "File": {"Name": "etc/c.conf", "UID": "0", "GID": "0"}},
                    {"ConfigID": c.id, "ConfigName": "c", "File": {"Name": "/abs"}}]}}
    files = task_files(v.store, spec)
    assert [(f.target, f.data, f.uid, f.gid, f.mode) for f in files] == [
        ("/run/secrets/s", b"pw", 5, 6, 0o400), ("/etc/c.conf", b"cfg", 0, 0, 0o444),
        ("/abs", b"cfg", 0, 0, 0o444)]
    assert "Data" not in wire(SECRETS, s)["Spec"]
    assert wire(CONFIGS, c)["Spec"]["Data"] == _b64(b"cfg")
    assert wire(SECRETS, s)["Spec"]["Labels"] == {}
    v.store.delete(SECRETS, s.id)
    with pytest.raises(errors.NotFound, match="secret s not found"):
        task_files(v.store, spec)


def _project(tmp_path: Path, text: str) -> Any:
    (tmp_path / "compose.yml").write_text(text)
    return load_project(ProjectOptions(files=(str(tmp_path / "compose.yml"),),
                                       project_name="st", os_env={}, cwd=str(tmp_path)))


def test_stack_converts_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_bytes(b"token")
    (tmp_path / "c.ini").write_bytes(b"[c]")
    project = _project(tmp_path, """
services:
  app:
    image: bb
    secrets: [tok, {source: tok, target: other}]
    configs: [{source: conf, target: /etc/c.ini}]
secrets:
  tok: {file: ./t.txt, labels: {a: b}}
  ext: {external: true}
configs:
  conf: {file: ./c.ini, name: fixed}
""")
    plan = convert(project, "st")
    assert plan.secrets == {"st_tok": {"Name": "st_tok", "Data": _b64(b"token"), "Labels": {
        "a": "b", "com.docker.stack.namespace": "st"}}}
    assert plan.configs == {"fixed": {"Name": "fixed", "Data": _b64(b"[c]"), "Labels": {
        "com.docker.stack.namespace": "st"}}}
    container = plan.services["app"]["TaskTemplate"]["ContainerSpec"]
    assert container["Secrets"] == [
        {"File": {"Name": "tok", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "st_tok"},
        {"File": {"Name": "other", "UID": "0", "GID": "0", "Mode": 0o444},
         "SecretName": "st_tok"}]
    assert container["Configs"] == [{"File": {"Name": "/etc/c.ini", "UID": "0", "GID": "0",
                                              "Mode": 0o444}, "ConfigName": "fixed"}]
    (tmp_path / "t.txt").unlink()
    with pytest.raises(StackError, match="open .*t.txt: no such file or directory"):
        convert(project, "st")
