"""The Engine API client pieces that need no daemon: HTTP framing, streams, helpers."""
from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from dockyard.cli import auth
from dockyard.cli.cp import (
    CopyInfo,
    prepare_copy,
    rebase,
    split_cp_arg,
    split_dir_entry,
)
from dockyard.cli.events import event_line
from dockyard.cli.inspect import indent_json
from dockyard.cli.progress import StreamError, render_stream
from dockyard.client.api import encode_query, pick_version
from dockyard.client.http import exchange
from dockyard.client.streams import EscapeFilter, demux, detach_sequence
from dockyard.client.transport import parse_host


def serve_once(response: bytes) -> tuple[socket.socket, list[bytes]]:
    """A socketpair whose far end records the request and answers ``response``."""
    ours, theirs = socket.socketpair()
    seen: list[bytes] = []

    def answer() -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += theirs.recv(65536)
        if b"Transfer-Encoding: chunked" in data:
            while not data.endswith(b"0\r\n\r\n"):
                data += theirs.recv(65536)
        seen.append(data)
        theirs.sendall(response)
        theirs.close()
    threading.Thread(target=answer, daemon=True).start()
    return ours, seen


def test_chunked_response_and_json_stream() -> None:
    body = b'{"status":"a"}\n{"status":"b"}\n'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:])) + b"0\r\n\r\n"
    sock, seen = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    resp = exchange(sock, "GET", "/v1.50/events?x=1", {"Host": "h"})
    assert [m["status"] for m in resp.iter_json()] == ["a", "b"]
    assert seen[0].startswith(b"GET /v1.50/events?x=1 HTTP/1.1\r\nHost: h\r\n")
    resp.close()


def test_sized_response_and_chunked_upload() -> None:
    sock, seen = serve_once(b"HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{\"Id\":1}\n")
    resp = exchange(sock, "POST", "/x", {}, body=iter([b"abc", b"de"]))
    assert resp.status == 201 and resp.json() == {"Id": 1}
    assert b"Transfer-Encoding: chunked" in seen[0]
    resp.close()


def test_hijack_keeps_buffered_bytes() -> None:
    frame = struct.pack(">BxxxL", 1, 3) + b"out" + struct.pack(">BxxxL", 2, 3) + b"err"
    sock, _ = serve_once(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                         + frame)
    resp = exchange(sock, "POST", "/attach", {"Connection": "Upgrade", "Upgrade": "tcp"})
    assert resp.status == 101
    assert list(demux(resp.fp)) == [(1, b"out"), (2, b"err")]
    resp.close()


def test_encode_query_follows_go_conventions() -> None:
    assert encode_query({"size": True, "all": False, "filters": {"status": {"exited": True}},
                         "names": ["a", "b"], "skip": None, "name": "a b/c"}) == (
        "all=0&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D&name=a+b%2Fc&"
        "names=a&names=b&size=1")
    assert pick_version("1.44") == "1.44"
    assert pick_version("1.51") == "1.50"
    assert pick_version(None) == "1.24"


def test_parse_host() -> None:
    assert parse_host("unix:///run/x.sock").path == "/run/x.sock"
    tcp = parse_host("tcp://10.0.0.1:2376")
    assert tcp.scheme == "tcp" and tcp.address == ("10.0.0.1", 2376)
    assert parse_host("tcp://h").address == ("h", 2375)


def test_inspect_indent_matches_go_json_indent() -> None:
    raw = '[{"a":1,"b":[],"c":{},"d":[1,2],"e":"x\\"y,z:{","f":{"g":null}}\n]'
    assert indent_json(raw) == json.dumps(json.loads(raw), indent=4)


def test_progress_rendering() -> None:
    out = io.StringIO()
    render_stream([{"status": "Pulling from library/bb", "id": "latest"},
                   {"status": "Downloading", "id": "abc", "progressDetail": {"current": 1,
                                                                            "total": 2},
                    "progress": "[==>  ]"},
                   {"stream": "Loaded image: bb:latest\n"}], out, terminal=False)
    assert out.getvalue() == "latest: Pulling from library/bb\nLoaded image: bb:latest\n"
    with pytest.raises(StreamError, match="manifest unknown"):
        render_stream([{"errorDetail": {"message": "manifest unknown"}}], io.StringIO(), False)


def test_event_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    line = event_line({"Type": "container", "Action": "start", "timeNano": 10_000_000_005,
                       "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "bb"}}})
    assert line == ("1970-01-01T00:00:10.000000005Z container start abc "
                    "(image=bb, name=web)")


def test_cp_path_rules() -> None:
    assert split_cp_arg("web:/etc") == ("web", "/etc")
    assert split_cp_arg("/abs:x") == ("", "/abs:x")
    assert split_cp_arg("./a:b") == ("", "./a:b")
    assert split_dir_entry("/a/b/") == ("/a", "b")
    assert split_dir_entry("/a/b/.") == ("/a/b", ".")
    src_file = CopyInfo("/etc/hosts", True, False)
    assert prepare_copy(src_file, CopyInfo("/tmp/d", True, True)) == ("/tmp/d", None)
    assert prepare_copy(src_file, CopyInfo("/tmp/new", False, False)) == (
        "/tmp", ("hosts", "new"))
    assert rebase("etc/passwd", ("etc", "conf")) == "conf/passwd"
    assert rebase("./x", (".", "dst")) == "dst/x"


def test_auth_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    auth.store(path, "docker.io", "me", "pw")
    data = json.loads(path.read_text())
    assert data == {"auths": {"https://index.docker.io/v1/": {
        "auth": base64.b64encode(b"me:pw").decode()}}}
    assert auth.credentials(path, "https://index.docker.io/v1/")["username"] == "me"
    header = json.loads(base64.urlsafe_b64decode(auth.encode_header({"username": "me"})))
    assert header == {"username": "me"}
    assert auth.erase(path, "index.docker.io") and not auth.erase(path, "docker.io")


def test_detach_keys() -> None:
    assert detach_sequence("") == b"\x10\x11"
    assert detach_sequence("ctrl-a,x") == b"\x01x"
    with pytest.raises(ValueError):
        detach_sequence("ctrl-nope")
    escaper = EscapeFilter(b"\x10\x11")
    assert escaper.feed(b"ab\x10") == (b"ab", False)
    assert escaper.feed(b"c") == (b"\x10c", False)
    assert escaper.feed(b"x\x10\x11rest") == (b"x", True)
