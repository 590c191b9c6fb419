"""Bad input over the raw Engine API: right status, Docker's message, nothing half-written."""
from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import uuid
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self._path)


def call(daemon: DaemonProcess, method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = UnixHTTP(str(daemon.socket_path))
    conn.request(method, url, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def message(data: bytes) -> str:
    return str(json.loads(data)["message"])


def tar_of(entries: list[tarfile.TarInfo], payload: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in entries:
            if info.isreg():
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def test_malformed_json_is_400(daemon: DaemonProcess) -> None:
    status, data = call(daemon, "POST", "/v1.50/containers/create", b"{not json",
                        {"Content-Type": "application/json"})
    assert status == 400 and "invalid JSON" in message(data)


def test_unknown_objects_are_404(daemon: DaemonProcess) -> None:
    status, data = call(daemon, "GET", "/v1.50/containers/nope-x/json")
    assert status == 404 and message(data) == "No such container: nope-x"
    status, data = call(daemon, "GET", "/v1.50/images/nope-y:latest/json")
    assert status == 404 and message(data) == "No such image: nope-y:latest"
    status, data = call(daemon, "GET", "/v1.50/exec/abc/json")
    assert status == 404
    status, _ = call(daemon, "GET", "/v1.50/no/such/route")
    assert status == 404


def test_invalid_parameters_are_400(daemon: DaemonProcess, bb_image: str) -> None:
    body = json.dumps({"Image": bb_image, "Cmd": ["true"]}).encode()
    status, data = call(daemon, "POST", "/v1.50/containers/create?name=bad%20name", body)
    assert status == 400 and "Invalid container name" in message(data)
    bad_policy = json.dumps({"Image": bb_image, "HostConfig": {
        "RestartPolicy": {"Name": "sometimes"}}}).encode()
    status, data = call(daemon, "POST", "/v1.50/containers/create", bad_policy)
    assert status == 400 and "restart policy" in message(data)
    status, data = call(daemon, "POST", "/v1.50/containers/create",
                        json.dumps({"Image": bb_image, "HostConfig": {"Memory": 1024}}).encode())
    assert status == 400 and "Minimum memory limit" in message(data)
    status, data = call(daemon, "GET", "/v1.12/version")
    assert status == 400 and "too old" in message(data)


def test_conflicts_are_409(daemon: DaemonProcess, bb_image: str) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    body = json.dumps({"Image": bb_image, "Cmd": ["sleep", "30"]}).encode()
    assert call(daemon, "POST", f"/v1.50/containers/create?name={name}", body)[0] == 201
    assert call(daemon, "POST", f"/v1.50/containers/create?name={name}", body)[0] == 409
    assert call(daemon, "POST", f"/v1.50/containers/{name}/start")[0] == 204
    assert call(daemon, "POST", f"/v1.50/containers/{name}/start")[0] == 304
    status, data = call(daemon, "DELETE", f"/v1.50/containers/{name}")
    assert status == 409 and "stop the container before removing" in message(data)
    assert call(daemon, "DELETE", f"/v1.50/containers/{name}?force=1")[0] == 204


def test_import_with_path_traversal_is_refused(daemon: DaemonProcess) -> None:
    evil = tarfile.TarInfo("../../escaped.txt")
    status, data = call(daemon, "POST", "/v1.50/images/create?fromSrc=-&repo=evil&tag=1",
                        tar_of([evil]))
    assert status == 200 and b"error" in data
    assert call(daemon, "GET", "/v1.50/images/evil:1/json")[0] == 404
    assert not Path("/escaped.txt").exists()


def test_cp_through_an_absolute_symlink_stays_inside(daemon: DaemonProcess,
                                                     bb_image: str, tmp_path: Path) -> None:
    name = "cp" + uuid.uuid4().hex[:8]
    body = json.dumps({"Image": bb_image, "Cmd": ["sleep", "30"]}).encode()
    assert call(daemon, "POST", f"/v1.50/containers/create?name={name}", body)[0] == 201
    link = tarfile.TarInfo("escape")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
    through = tarfile.TarInfo("escape/pwned.txt")
    call(daemon, "PUT", f"/v1.50/containers/{name}/archive?path=/tmp", tar_of([link, through]))
    assert not (tmp_path / "pwned.txt").exists()
    dotdot = tarfile.TarInfo("../../../../../../" + str(tmp_path).lstrip("/") + "/dd.txt")
    call(daemon, "PUT", f"/v1.50/containers/{name}/archive?path=/tmp", tar_of([dotdot]))
    assert not (tmp_path / "dd.txt").exists()
    call(daemon, "DELETE", f"/v1.50/containers/{name}?force=1")


def test_load_of_garbage_is_400_and_leaves_nothing(daemon: DaemonProcess) -> None:
    before = call(daemon, "GET", "/v1.50/images/json")[1]
    status, _ = call(daemon, "POST", "/v1.50/images/load", b"this is not a tar archive" * 100)
    assert status == 400
    assert json.loads(call(daemon, "GET", "/v1.50/images/json")[1]) == json.loads(before)


@pytest.mark.parametrize("path", ["/v1.50/containers/json?filters=notjson",
                                  "/v1.50/containers/json?filters=%7B%22bogus%22%3A%5B%5D%7D"])
def test_bad_filters(daemon: DaemonProcess, path: str) -> None:
    assert call(daemon, "GET", path)[0] == 400
