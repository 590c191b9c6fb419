"""Streaming what a worker thread produces: JSON progress (build, pull, push) and raw bytes
(export, ``docker cp``), without holding the whole output in memory."""
from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from dockyard.api.http import Request
from dockyard.errors import DockyardError

T = TypeVar("T")
_DONE = object()


def from_worker(work: Callable[[Callable[[T], None]], object],
                on_error: Callable[[BaseException], T | None]) -> Iterator[T]:
    """Run ``work(emit)`` on a thread; yield what it emits as it comes. An exception becomes
    ``on_error(exc)`` (if not None) as the last item."""
    items: queue.Queue[Any] = queue.Queue(maxsize=64)

    def run() -> None:
        try:
            work(items.put)
        except Exception as exc:  # noqa: BLE001 - reported through on_error, never a traceback
            last = on_error(exc)
            if last is not None:
                items.put(last)
        finally:
            items.put(_DONE)

    threading.Thread(target=run, daemon=True).start()
    while (item := items.get()) is not _DONE:
        yield item


def error_message(exc: BaseException) -> dict[str, Any]:
    """Docker's in-band error; a failed RUN carries its exit code (the CLI exits with it)."""
    text = exc.message if isinstance(exc, DockyardError) else f"internal error: {exc}"
    detail: dict[str, Any] = {"message": text}
    if getattr(exc, "exit_code", None):
        detail["code"] = exc.exit_code  # type: ignore[attr-defined]
    return {"errorDetail": detail, "error": text}


def stream_json(req: Request, work: Callable[[Callable[[dict[str, Any]], None]], object]) -> None:
    """JSON lines of what ``work(emit)`` emits; errors after the 200 are reported in-band."""
    req.stream(json.dumps(item).encode() + b"\r\n" for item in from_worker(work, error_message))


class Emitter:
    """A write-only file handing every written chunk to ``emit``."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit

    def write(self, data: bytes | bytearray, /) -> int:
        if data:
            self._emit(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def stream_bytes(req: Request, work: Callable[[Emitter], object], content_type: str,
                 headers: dict[str, str] | None = None) -> None:
    """Raw bytes ``work(file)`` writes; an error mid-way can only end the stream."""
    req.stream(from_worker(lambda emit: work(Emitter(emit)), lambda exc: None), content_type,
               headers=headers)
