"""json-file log reading: eager opening (a removal right after the request loses nothing),
rotation while following, and a line completed while it is followed."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from dockyard.engine.logs import LogOptions, read


def entry(text: str, stream: str = "stdout") -> bytes:
    return json.dumps({"log": text, "stream": stream, "time": "2026-12-07T00:00:00.000000000Z"}
                      ).encode() + b"\n"


def texts(lines) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [line.text for line in lines]


def test_lines_survive_the_files_removal_after_the_request(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(entry("a\n") + entry("b\n", "stderr"))
    lines = read(log, LogOptions(follow=True), running=lambda: False)
    log.unlink()  # docker-py's run(remove=True) removes the container before reading
    assert texts(lines) == [b"a\n", b"b\n"]


def test_rotated_files_first_then_tail(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    (tmp_path / "c-json.log.1").write_bytes(entry("old\n"))
    log.write_bytes(entry("new\n") + entry("newer\n"))
    assert texts(read(log, LogOptions(), lambda: True)) == [b"old\n", b"new\n", b"newer\n"]
    assert texts(read(log, LogOptions(tail=1), lambda: True)) == [b"newer\n"]


def test_follow_reads_the_old_file_to_its_end_then_the_rotated_one(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    half = entry("two\n")
    log.write_bytes(entry("one\n") + half[:10])
    alive = threading.Event()
    alive.set()
    lines = read(log, LogOptions(follow=True), running=alive.is_set)

    def writer() -> None:
        time.sleep(0.1)
        with open(log, "ab") as fh:
            fh.write(half[10:] + entry("three\n"))
        log.rename(tmp_path / "c-json.log.1")  # the shim rotates
        log.write_bytes(entry("four\n"))
        time.sleep(0.2)
        alive.clear()

    thread = threading.Thread(target=writer)
    thread.start()
    got = texts(lines)
    thread.join()
    assert got == [b"one\n", b"two\n", b"three\n", b"four\n"]
