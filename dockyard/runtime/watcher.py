"""One thread that watches every shim's socket and reports exits.

Each watched shim has a ``W`` (wait) connection; when it delivers the exit frame, or closes
(the shim died), the callback runs on a worker thread so a slow exit handler never delays
other containers' exits.
"""
from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("dockyard.runtime")

OnReadable = Callable[[], bool]  # returns True when the watch is over


class HasFileno(Protocol):
    def fileno(self) -> int: ...


class Watcher:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="exit")
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="watcher", daemon=True)
        self._thread.start()

    def watch(self, sock: HasFileno, on_readable: OnReadable,
              on_done: Callable[[], None]) -> None:
        with self._lock:
            self._selector.register(sock, selectors.EVENT_READ, (on_readable, on_done))
        self._wake_w.send(b"x")

    def _loop(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select(timeout=5):
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    continue
                on_readable, on_done = key.data
                try:
                    finished = on_readable()
                except Exception:  # noqa: BLE001
                    log.exception("watch callback failed")
                    finished = True
                if finished:
                    with self._lock:
                        self._selector.unregister(key.fileobj)
                    self._pool.submit(self._run, on_done)

    @staticmethod
    def _run(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # noqa: BLE001
            log.exception("exit handler failed")

    def stop(self) -> None:
        self._stopped = True
        self._wake_w.send(b"x")
        self._pool.shutdown(wait=False)
