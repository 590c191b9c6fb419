"""The compose progress output: the pure :class:`Board` (events + clock → frame), the plain and
quiet printers, and the live tty printer redrawing in place."""
from __future__ import annotations

import io
import re
import threading

import pytest

from dockyard.cli.compose.progress import (
    DONE,
    ERROR,
    SPINNER,
    Board,
    Printer,
    choose_mode,
    state_of,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_states() -> None:
    assert state_of("Creating") == state_of("Waiting") == state_of("Recreate") == "working"
    assert state_of("Created") == state_of("Healthy") == state_of("Exited") == "done"
    assert state_of("Running") == "done"  # an up-to-date container
    assert state_of("Error") == "error"


def test_board_frame_counts_aligns_and_times() -> None:
    clock = Clock()
    b = Board("Running", clock)
    b.event("Network", "p_default", "Creating")
    clock.now += 0.1
    b.event("Network", "p_default", "Created")
    b.event("Container", "p-db-1", "Creating")
    clock.now += 0.4
    b.event("Container", "p-db-1", "Created")
    b.event("Container", "p-db-1", "Starting")
    clock.now += 0.2
    frame = b.frame(width=60)
    assert frame[0] == "[+] Running 1/2"
    net, db = frame[1:]
    assert net.startswith(f" {DONE} Network p_default  Created ")
    assert net.endswith("0.1s") and len(net) == 59
    assert db[1] in SPINNER and db.startswith(f" {db[1]} Container p-db-1   Starting")
    assert db.endswith("0.6s") and len(db) == 59  # create + start, still counting
    clock.now += 1.0
    b.event("Container", "p-db-1", "Started")
    clock.now += 5
    frame = b.frame(width=60)
    assert frame[0] == "[+] Running 2/2"
    assert frame[2].startswith(f" {DONE} Container p-db-1   Started ") and \
        frame[2].endswith("1.6s")  # frozen once done
    assert frame[1].endswith("0.1s")


def test_board_error_narrow_and_tall() -> None:
    clock = Clock()
    b = Board("Running", clock)
    for i in range(5):
        b.event("Container", f"p-web-{i}", "Started")
    b.event("Container", "p-db-1", "Error")
    frame = b.frame(width=20)
    assert all(len(ln) <= 19 for ln in frame[1:])  # cut, never wrapped
    assert not frame[1].endswith("s")  # no room for the timer
    assert frame[-1].startswith(f" {ERROR} Container")
    assert b.frame(width=80)[0] == "[+] Running 6/6"
    tall = b.frame(width=80, height=4)
    assert len(tall) == 4 and tall[0].startswith("[+]") and "p-db-1" in tall[-1]


def test_board_colors_only_icon_and_timer() -> None:
    clock = Clock()
    b = Board("Running", clock)
    b.event("Container", "x", "Started")
    line = b.frame(width=40, color=True)[1]
    assert "\x1b[32m" + DONE in line and "\x1b[34m0.0s" in line
    assert ANSI.sub("", line) == b.frame(width=40)[1]


def test_plain_printer_keeps_the_old_lines() -> None:
    out = io.StringIO()
    p = Printer(out, "plain")
    with p:
        p("Container", "x", "Started")
        p.log("WARN[0000] hello")
    p("Network", "n", "Created")  # not entered: plain too
    assert out.getvalue() == " Container x  Started\nWARN[0000] hello\n Network n  Created\n"


def test_tty_printer_not_entered_is_plain() -> None:
    out = TTY()
    p = Printer(out, "tty")
    p("Container", "x", "Started")
    assert out.getvalue() == " Container x  Started\n"


def test_quiet_printer() -> None:
    out = io.StringIO()
    with Printer(out, "quiet") as p:
        p("Container", "x", "Started")
    assert out.getvalue() == ""


def test_tty_printer_redraws_in_place() -> None:
    out = TTY()
    clock = Clock()
    p = Printer(out, "tty", clock=clock)
    drawn = threading.Event()
    real = p._redraw

    def redraw() -> None:
        real()
        drawn.set()
    p._redraw = redraw  # type: ignore[method-assign]
    with p:
        p("Network", "p_default", "Created")
        p("Container", "p-db-1", "Starting")
        assert drawn.wait(5)
        p("Container", "p-db-1", "Started")
        p.log("WARN[0000] careful")
    text = out.getvalue()
    frames = text.split("\x1b[2K[+] ")
    assert len(frames) >= 3  # at least one tick, the redraw after log, the final one
    assert "\x1b[2A" in text or "\x1b[3A" in text  # cursor moved up over the old block
    final = ANSI.sub("", frames[-1])
    assert final.startswith("Running 2/2\n")
    assert re.search(rf" {DONE} Container p-db-1 +Started +0\.0s\n$", final)
    assert "WARN[0000] careful\n" in ANSI.sub("", text)
    assert not p._live and (p._thread is None or not p._thread.is_alive())


@pytest.mark.parametrize(("mode", "tty", "env", "want"), [
    (None, False, {}, "plain"), (None, True, {}, "tty"), ("auto", True, {"TERM": "dumb"}, "plain"),
    ("plain", True, {}, "plain"), ("tty", False, {}, "tty"), ("quiet", True, {}, "quiet"),
    ("none", False, {}, "quiet"), (None, True, {"COMPOSE_PROGRESS": "plain"}, "plain"),
])
def test_choose_mode(mode: str | None, tty: bool, env: dict[str, str], want: str) -> None:
    assert choose_mode(mode, TTY() if tty else io.StringIO(), env) == want
