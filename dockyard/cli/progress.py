"""Rendering the daemon's JSON progress streams like docker's jsonmessage package."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TextIO

from dockyard.cli.units import human_size, rfc3339_nano_fixed


class StreamError(Exception):
    """An ``errorDetail``/``error`` message inside a progress stream."""


def _bar(detail: dict[str, Any], width: int = 50) -> str:
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    if total <= 0:
        return human_size(current) if current else ""
    pct = min(1.0, current / total)
    filled = int(pct * width)
    bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
    return f"[{bar}] {human_size(current)}/{human_size(total)}"


def _progress_text(msg: dict[str, Any]) -> str:
    detail = msg.get("progressDetail") or {}
    if detail:
        return _bar(detail)
    return str(msg.get("progress") or "")


def display(msg: dict[str, Any], out: TextIO, terminal: bool) -> None:
    """jsonmessage.JSONMessage.Display."""
    error = msg.get("errorDetail") or ({"message": msg["error"]} if msg.get("error") else None)
    if error:
        raise StreamError(str(error.get("message", "")))
    has_progress = bool(msg.get("progressDetail")) or bool(msg.get("progress"))
    endl = ""
    if terminal and not msg.get("stream") and has_progress:
        out.write("\x1b[2K\r")
        endl = "\r"
    elif has_progress and _progress_text(msg):
        return
    if msg.get("timeNano"):
        out.write(rfc3339_nano_fixed(int(msg["timeNano"])) + " ")
    elif msg.get("time"):
        out.write(rfc3339_nano_fixed(int(msg["time"]) * 1_000_000_000) + " ")
    if msg.get("id"):
        out.write(f"{msg['id']}: ")
    if msg.get("from"):
        out.write(f"(from {msg['from']}) ")
    status = str(msg.get("status") or "")
    if has_progress and terminal:
        out.write(f"{status} {_progress_text(msg)}{endl}")
    elif msg.get("stream"):
        out.write(f"{msg['stream']}{endl}")
    else:
        out.write(f"{status}{endl}\n")


def render_stream(messages: Iterable[dict[str, Any]], out: TextIO, terminal: bool,
                  aux: Callable[[dict[str, Any]], None] | None = None) -> None:
    """jsonmessage.DisplayJSONMessagesStream: per-layer lines updated in place on a tty."""
    ids: dict[str, int] = {}
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if msg.get("aux") is not None:
            if aux:
                aux(msg["aux"])
            continue
        diff = 0
        ident = msg.get("id") or ""
        if ident and (msg.get("progressDetail") is not None or msg.get("progress")):
            if ident not in ids:
                ids[ident] = len(ids)
                if terminal:
                    out.write("\n")
            diff = len(ids) - ids[ident]
            if terminal:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        try:
            display(msg, out, terminal)
        finally:
            if ident and terminal and diff:
                out.write(f"\x1b[{diff}B")
            out.flush()
