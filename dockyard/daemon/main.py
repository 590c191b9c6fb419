"""``dockyard daemon``: run the engine in the foreground, like dockerd."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from dockyard.daemon.config import from_args
from dockyard.errors import DockyardError


def main(argv: list[str]) -> int:
    config = from_args(argv)
    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("dockyard daemon needs to be run as root", file=sys.stderr)
        return 1
    from dockyard.daemon.wiring import Daemon
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        daemon = Daemon(config)
        if config.pidfile:
            config.pidfile.parent.mkdir(parents=True, exist_ok=True)
            config.pidfile.write_text(f"{os.getpid()}\n")
        daemon.recover()
        daemon.listen()
    except DockyardError as exc:
        print(f"failed to start daemon: {exc}", file=sys.stderr)
        return 1
    logging.getLogger("dockyard.daemon").info("API listen on %s", ", ".join(config.hosts))
    stop.wait()
    daemon.close()
    if config.pidfile:
        config.pidfile.unlink(missing_ok=True)
    return 0
