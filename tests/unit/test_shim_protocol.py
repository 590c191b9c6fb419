"""Pure tests of the shim client: framing, reports, exit files, command lines."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.runtime.shim import build
from dockyard.runtime.shim.client import (
    AttachConnection,
    ClientFrame,
    ExitStatus,
    Frame,
    FrameDecoder,
    Launched,
    ShimConfig,
    ShimFrame,
    encode_frame,
    exit_code_for_runtime_error,
    parse_exit,
    parse_report,
    read_exit,
)


def test_encode_frame_layout() -> None:
    assert encode_frame(ShimFrame.EXIT, b"137") == b"\x03\x00\x00\x00\x03137"
    assert encode_frame(ClientFrame.START) == b"\x04\x00\x00\x00\x00"
    assert encode_frame(1, b"x" * 300)[:5] == b"\x01\x00\x00\x01\x2c"


def test_encode_frame_rejects_bad_type() -> None:
    with pytest.raises(errors.InvalidArgument):
        encode_frame(256, b"")


def test_decoder_handles_byte_by_byte_input() -> None:
    stream = encode_frame(1, b"hello\n") + encode_frame(2, b"") + encode_frame(3, b"0")
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    assert frames == [Frame(1, b"hello\n"), Frame(2, b""), Frame(3, b"0")]
    assert decoder.buffered == 0


def test_decoder_many_frames_in_one_chunk_and_a_partial_tail() -> None:
    decoder = FrameDecoder()
    chunk = encode_frame(1, b"a") + encode_frame(2, b"bb") + encode_frame(1, b"ccc")[:6]
    assert decoder.feed(chunk) == [Frame(1, b"a"), Frame(2, b"bb")]
    assert decoder.buffered == 6
    assert decoder.feed(b"cc") == [Frame(1, b"ccc")]
    assert decoder.feed(b"") == []


def test_decoder_rejects_absurd_length() -> None:
    with pytest.raises(errors.Internal, match="protocol"):
        FrameDecoder().feed(b"\x01\xff\xff\xff\xff")


def test_frame_unpacks_like_a_tuple() -> None:
    frame_type, payload = FrameDecoder().feed(encode_frame(4, b"42"))[0]
    assert (frame_type, payload) == (ShimFrame.STARTED, b"42")


def test_parse_report_ok_and_errors() -> None:
    assert parse_report("ok 123 456\n") == Launched(pid=123, shim_pid=456)
    assert parse_report("ok 0 9\n") == Launched(pid=0, shim_pid=9)
    with pytest.raises(errors.InvalidArgument, match="not found"):
        parse_report("error executable file `nope` not found in $PATH: No such file or directory\n")
    with pytest.raises(errors.Internal, match="hybrid"):
        parse_report("error cgroups in hybrid mode not supported\n")
    with pytest.raises(errors.Internal, match="unexpected"):
        parse_report("garbage")
    with pytest.raises(errors.Internal):
        parse_report("")


def test_exit_code_for_runtime_error() -> None:
    assert exit_code_for_runtime_error("exec: \"x\": executable file not found in $PATH") == 127
    assert exit_code_for_runtime_error("open /bin/x: Permission denied") == 126
    assert exit_code_for_runtime_error("cgroups in hybrid mode not supported") is None


def test_parse_and_read_exit(tmp_path: Path) -> None:
    assert read_exit(tmp_path) is None
    line = '{"exit_code":137,"signal":9,"oom":false,"finished_at":"2026-11-27T22:06:20.525100123Z"}\n'
    (tmp_path / "exit").write_text(line)
    assert read_exit(tmp_path) == ExitStatus(137, 9, "2026-11-27T22:06:20.525100123Z", False)
    with pytest.raises(errors.Internal, match="corrupt"):
        parse_exit("{")


def test_config_argv() -> None:
    cfg = ShimConfig(runtime=Path("/usr/bin/crun"), runtime_root=Path("/run/d"),
                     container_id="abc", bundle=Path("/b"), state_dir=Path("/s"),
                     log_path=Path("/s/log"), log_max_size=10, log_max_files=3, tty=True,
                     stdin=True, hide_cgroup2=True)
    assert cfg.argv(Path("/shim")) == [
        "/shim", "--runtime", "/usr/bin/crun", "--runtime-root", "/run/d", "--id", "abc",
        "--bundle", "/b", "--state", "/s", "--log", "/s/log", "--log-max-size", "10",
        "--log-max-files", "3", "--tty", "--stdin", "--hide-cgroup2",
    ]
    exec_cfg = ShimConfig(runtime=Path("crun"), runtime_root=None, container_id="abc",
                          bundle=Path("/b"), state_dir=Path("/s"), log_path=None,
                          exec_process=Path("/s/p.json"))
    argv = exec_cfg.argv(Path("/shim"))
    assert argv[-3:] == ["--exec", "--process", "/s/p.json"]
    assert argv[argv.index("--log") + 1] == ""
    with pytest.raises(errors.InvalidArgument):
        ShimConfig(runtime=Path("crun"), runtime_root=None, container_id="", bundle=Path("/b"),
                   state_dir=Path("/s"), log_path=None).argv(Path("/shim"))


def test_binary_name_follows_the_source() -> None:
    assert build.binary_name(b"a") != build.binary_name(b"b")
    assert build.binary_name(b"a").startswith("dockyard-shim-")
    assert len(build.binary_name(b"a")) == len("dockyard-shim-") + 12


def test_missing_compiler_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(errors.Unavailable, match="C compiler"):
        build.shim_binary(tmp_path / "cache")


def fake_shim(frames: bytes) -> tuple[AttachConnection, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.sendall(frames)
    return AttachConnection(ours), theirs


def test_connection_start_keeps_early_output() -> None:
    conn, peer = fake_shim(encode_frame(1, b"early") + encode_frame(4, b"77"))
    with conn:
        assert conn.start() == 77
        assert peer.recv(100) == encode_frame(ClientFrame.START)
        peer.sendall(encode_frame(3, b"0"))
        peer.close()
        assert conn.read_frame() == Frame(1, b"early")
        assert conn.wait() == 0
        assert conn.read_frame() is None


def test_connection_start_error_maps_to_categories() -> None:
    conn, peer = fake_shim(encode_frame(5, b"already started"))
    with conn, pytest.raises(errors.NotModified):
        conn.start()
    peer.close()
    conn, peer = fake_shim(encode_frame(5, b"executable file `x` not found in $PATH"))
    with conn, pytest.raises(errors.InvalidArgument):
        conn.start()
    peer.close()


def test_connection_sends_control_frames() -> None:
    conn, peer = fake_shim(b"")
    with conn:
        conn.send_stdin(b"hi")
        conn.close_stdin()
        conn.resize(24, 80)
        peer.shutdown(socket.SHUT_WR)
        conn.setblocking(False)
        got = b""
        while len(got) < 5 + 2 + 5 + 5 + 5:
            got += peer.recv(100)
    assert FrameDecoder().feed(got) == [Frame(0, b"hi"), Frame(1, b""), Frame(2, b"24 80")]
    with pytest.raises(errors.InvalidArgument):
        conn.resize(0, 80)
    peer.close()


def test_read_available_on_nonblocking_socket() -> None:
    conn, peer = fake_shim(b"")
    conn.setblocking(False)
    assert conn.read_available() == []
    peer.sendall(encode_frame(2, b"e") + encode_frame(3, b"1")[:2])
    assert conn.read_available() == [Frame(2, b"e")]
    peer.sendall(encode_frame(3, b"1")[2:])
    peer.close()
    assert conn.read_available() == [Frame(3, b"1")]
    assert conn.read_available() == [] and conn.eof
    conn.close()


def test_connect_to_missing_shim_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.Unavailable):
        AttachConnection.connect(tmp_path)
    with pytest.raises(errors.InvalidArgument):
        AttachConnection.connect(tmp_path, "X")
