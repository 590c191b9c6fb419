"""Routes for ``docker exec``: create, start (hijacked or detached), resize, inspect."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.engine.attach import Session

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def register(router: Router, engine: "Engine") -> None:
    execs = engine.execs

    def create(req: Request, id: str) -> None:
        ex = execs.create(id, req.json({}))
        req.send_json({"Id": ex.id}, 201)

    def start(req: Request, id: str) -> None:
        body = req.json({}) or {}
        ex = execs.get(id)
        if body.get("Detach"):
            execs.start(id, None)
            req.send(200, b"", "application/json")
            return
        tty = bool(body.get("Tty", ex.tty))
        # Errors before the stream starts still reach the client as JSON.
        sock = req.hijack("application/vnd.docker.raw-stream" if tty else
                          "application/vnd.docker.multiplexed-stream")
        session = Session(sock=sock, tty=ex.tty, stdin=ex.attach_stdin,
                          stdout=ex.attach_stdout, stderr=ex.attach_stderr, stdin_once=True)
        try:
            execs.start(id, session)
        except Exception as exc:  # noqa: BLE001 - the stream is open: report in-band
            message = getattr(exc, "message", str(exc))
            try:
                data = (message + "\r\n").encode()
                sock.sendall(data if ex.tty else bytes([2, 0, 0, 0]) + len(data).to_bytes(4, "big")
                             + data)
            except OSError:
                pass
            sock.close()

    def resize(req: Request, id: str) -> None:
        execs.resize(id, req.int_arg("h"), req.int_arg("w"))
        req.send(200, b"", "text/plain")

    def inspect(req: Request, id: str) -> None:
        req.send_json(execs.get(id).to_json())

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
