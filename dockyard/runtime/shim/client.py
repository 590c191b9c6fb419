"""Python side of dockyard-shim, the per-container monitor written in C (``shim.c``).

Launching
    ``launch(binary, cfg)`` runs the shim. It forks itself into a background monitor (own
    session, child subreaper), creates the container through the OCI runtime (or, in exec
    mode, waits to run ``runtime exec``), binds ``STATE/attach.sock`` and reports one line:
    ``ok <pid> <shim-pid>`` or ``error <message>``. ``launch`` returns ``Launched`` or
    raises ``InvalidArgument`` (bad command, missing executable, permission denied, like
    Docker's 400s) or ``Internal`` carrying the runtime's own message.

Attach socket (``STATE/attach.sock``)
    The client's first byte picks a mode: ``A`` (attach: output, replies and the exit
    frame) or ``W`` (wait: only the exit frame). Then frames flow both ways, each
    ``u8 type, u32 big-endian length, payload`` (see ``frames.py``, re-exported here).

    shim -> client: 1 stdout, 2 stderr, 3 exit (decimal status, e.g. ``b"137"``),
                    4 started (decimal pid), 5 error (runtime message)
    client -> shim: 0 stdin data, 1 close stdin, 2 resize (``b"<rows> <cols>"``), 4 start

    Control frames are accepted in either mode (a ``W`` connection may resize or start).
    Only the first start counts (later ones get error "already started"). A failed exec
    start sends error, then exit 126. Clients that do not keep up with the output are
    disconnected by the shim rather than stalling the container. When the last client that
    sent stdin disconnects (or half-closes), the container's stdin is closed. An exec'd
    process runs before the runtime hands over its pty, so a resize sent before an exec's
    start is applied late (set process.json ``consoleSize`` too; crun applies it racily).
    A shim that is gone raises ``Unavailable`` on connect: read the exit file instead.

Exit file (``STATE/exit``)
    Written atomically once the process exited and its output was drained:
    ``{"exit_code":137,"signal":9,"oom":false,"finished_at":"<RFC 3339 nano>"}``. The shim
    then exits; it never deletes the container (the daemon does, after checking for OOM).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from dockyard import errors
from dockyard.runtime.shim.frames import (
    ClientFrame,
    Frame,
    FrameDecoder,
    ShimFrame,
    encode_frame,
)

__all__ = [
    "ATTACH", "ATTACH_SOCKET", "EXIT_FILE", "WAIT", "AttachConnection", "ClientFrame",
    "ExitStatus", "Frame", "FrameDecoder", "Launched", "ShimConfig", "ShimFrame",
    "encode_frame", "exit_code_for_runtime_error", "launch", "parse_exit", "parse_report",
    "read_exit", "resize", "runtime_error",
]

ATTACH_SOCKET = "attach.sock"
EXIT_FILE = "exit"
ATTACH = "A"
WAIT = "W"


@dataclass(frozen=True)
class ShimConfig:
    runtime: Path
    runtime_root: Path | None
    container_id: str
    bundle: Path
    state_dir: Path
    log_path: Path | None
    log_max_size: int = 0  # bytes; 0 = unlimited
    log_max_files: int = 1
    tty: bool = False
    stdin: bool = False
    hide_cgroup2: bool = False
    exec_process: Path | None = None  # set: exec mode, run this process.json in the container

    def argv(self, binary: Path) -> list[str]:
        """The shim's command line."""
        if not self.container_id:
            raise errors.InvalidArgument("shim: empty container id")
        if self.log_max_size < 0 or self.log_max_files < 1:
            raise errors.InvalidArgument("shim: log max-size must be >= 0, max-files >= 1")
        args = [str(binary), "--runtime", str(self.runtime)]
        if self.runtime_root is not None:
            args += ["--runtime-root", str(self.runtime_root)]
        args += ["--id", self.container_id, "--bundle", str(self.bundle)]
        args += ["--state", str(self.state_dir)]
        args += ["--log", str(self.log_path) if self.log_path is not None else ""]
        args += ["--log-max-size", str(self.log_max_size)]
        args += ["--log-max-files", str(self.log_max_files)]
        flags = {"--tty": self.tty, "--stdin": self.stdin, "--hide-cgroup2": self.hide_cgroup2}
        args += [flag for flag, on in flags.items() if on]
        if self.exec_process is not None:
            args += ["--exec", "--process", str(self.exec_process)]
        return args


@dataclass(frozen=True)
class Launched:
    pid: int  # always 0: the container or exec runs on the start request
    shim_pid: int


# Docker turns these runtime failures into a 400 and exit status 127 / 126.
_NOT_FOUND_HINTS = ("no such file or directory", "system init")
_DENIED_HINTS = ("permission denied",)


def exit_code_for_runtime_error(message: str) -> int | None:
    """127 for a missing executable, 126 for one that cannot be run, else None."""
    text = message.lower()
    missing = "executable file" in text and "not found" in text  # runc and crun wordings
    if missing or any(hint in text for hint in _NOT_FOUND_HINTS):
        return 127
    if any(hint in text for hint in _DENIED_HINTS):
        return 126
    return None


def runtime_error(message: str) -> errors.DockyardError:
    """The error category for a runtime failure message (the message kept verbatim)."""
    if exit_code_for_runtime_error(message) is not None:
        return errors.InvalidArgument(message)
    return errors.Internal(message)


def parse_report(output: str) -> Launched:
    """Parses the launcher's line: ``ok <pid> <shim-pid>`` or ``error <message>``."""
    line = output.strip().splitlines()[0] if output.strip() else ""
    word, _, rest = line.partition(" ")
    if word == "ok":
        parts = rest.split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return Launched(pid=int(parts[0]), shim_pid=int(parts[1]))
    if word == "error":
        raise runtime_error(rest.strip() or "dockyard-shim failed")
    raise errors.Internal(f"dockyard-shim: unexpected report {line!r}")


def launch(binary: Path, cfg: ShimConfig, timeout: float = 120.0) -> Launched:
    """Starts a shim for cfg and waits for its report (the shim keeps running)."""
    if not os.access(cfg.runtime, os.X_OK):
        raise errors.Unavailable(f"OCI runtime {cfg.runtime} is not installed or not executable")
    try:
        proc = subprocess.run(
            cfg.argv(binary),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            close_fds=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise errors.Unavailable(f"dockyard-shim did not report within {timeout:g}s") from exc
    except OSError as exc:
        raise errors.Internal(f"cannot run dockyard-shim {binary}: {exc}") from exc
    if not proc.stdout.strip():
        detail = proc.stderr.strip() or f"exit status {proc.returncode}"
        raise errors.Internal(f"dockyard-shim failed: {detail}")
    return parse_report(proc.stdout)


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    signal: int  # 0 when the process exited normally
    finished_at: str
    oom: bool = False  # the shim always writes false; the daemon decides from cgroups


def parse_exit(text: str) -> ExitStatus:
    try:
        data = json.loads(text)
        return ExitStatus(
            exit_code=int(data["exit_code"]),
            signal=int(data.get("signal", 0)),
            finished_at=str(data["finished_at"]),
            oom=bool(data.get("oom", False)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.Internal(f"corrupt shim exit file: {text[:200]!r}") from exc


def read_exit(state_dir: Path) -> ExitStatus | None:
    """The recorded exit status, or None while the process has not exited."""
    try:
        text = (state_dir / EXIT_FILE).read_text()
    except FileNotFoundError:
        return None
    return parse_exit(text)


def _connect_unix(sock: socket.socket, path: Path, timeout: float | None) -> None:
    """Connects, waiting while the shim's accept backlog is full (unix sockets fail
    non-blocking connects with EAGAIN instead of waiting)."""
    deadline = time.monotonic() + (timeout if timeout is not None else 30.0)
    sock.setblocking(False)
    while True:
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class AttachConnection:
    """One connection to a shim's attach socket.

    Blocking use: ``start()``, ``read_frame()`` / ``wait()``. Non-blocking use (a daemon
    selector): ``setblocking(False)``, register ``fileno()``, call ``read_available()``
    when readable; ``eof`` tells when the shim closed the connection.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._decoder = FrameDecoder()
        self._pending: deque[Frame] = deque()
        self.eof = False

    @classmethod
    def connect(cls, state_dir: Path, mode: str = ATTACH,
                timeout: float | None = None) -> AttachConnection:
        if mode not in (ATTACH, WAIT):
            raise errors.InvalidArgument(f"attach mode must be A or W, not {mode!r}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _connect_unix(sock, state_dir / ATTACH_SOCKET, timeout)
            sock.settimeout(timeout)
            sock.sendall(mode.encode())
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise errors.Unavailable(f"no shim is running in {state_dir}") from exc
        except OSError as exc:
            sock.close()
            raise errors.Unavailable(f"cannot reach the shim in {state_dir}: {exc}") from exc
        return cls(sock)

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AttachConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, frame_type: int, payload: bytes = b"") -> None:
        try:
            self._sock.sendall(encode_frame(frame_type, payload))
        except OSError as exc:
            raise errors.Unavailable(f"shim connection lost: {exc}") from exc

    def send_stdin(self, data: bytes) -> None:
        for i in range(0, len(data), 65536):
            self.send(ClientFrame.STDIN, data[i : i + 65536])

    def close_stdin(self) -> None:
        self.send(ClientFrame.CLOSE_STDIN)

    def resize(self, height: int, width: int) -> None:
        if not (0 < height < 65536 and 0 < width < 65536):
            raise errors.InvalidArgument(f"bad terminal size {height}x{width}")
        self.send(ClientFrame.RESIZE, f"{height} {width}".encode())

    def start(self) -> int:
        """Asks the shim to start the process; returns its pid (output frames that
        arrive meanwhile are kept for ``read_frame``)."""
        self.send(ClientFrame.START)
        held: list[Frame] = []
        try:
            while True:
                frame = self._next_frame()
                if frame is None:
                    raise errors.Unavailable("the shim closed the connection during start")
                if frame.type == ShimFrame.STARTED:
                    return int(frame.payload)
                if frame.type == ShimFrame.ERROR:
                    message = frame.payload.decode(errors="replace")
                    if message == "already started":
                        raise errors.NotModified(message)
                    raise runtime_error(message)
                held.append(frame)
                if frame.type == ShimFrame.EXIT:
                    raise errors.Conflict("the process exited before it was started")
        finally:
            self._pending.extendleft(reversed(held))

    def read_frame(self) -> Frame | None:
        """The next frame (blocking on a blocking socket); None when the shim closed."""
        if self._pending:
            return self._pending.popleft()
        return self._next_frame()

    def read_available(self) -> list[Frame]:
        """Frames from one recv (for non-blocking sockets); [] if nothing is ready."""
        frames = list(self._pending)
        self._pending.clear()
        if self.eof:
            return frames
        try:
            data = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return frames
        except OSError:
            data = b""
        if not data:
            self.eof = True
        return frames + self._decoder.feed(data)

    def wait(self) -> int | None:
        """Reads until the exit frame; returns the exit status (None if none came)."""
        while True:
            frame = self.read_frame()
            if frame is None:
                return None
            if frame.type == ShimFrame.EXIT:
                return int(frame.payload)

    def _next_frame(self) -> Frame | None:
        while not self._pending:
            if self.eof:
                return None
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise
            except OSError:
                data = b""
            if not data:
                self.eof = True
            self._pending.extend(self._decoder.feed(data))
        return self._pending.popleft()


def resize(state_dir: Path, height: int, width: int) -> None:
    """Resize the terminal of the task whose shim lives in ``state_dir`` (gone: nothing to do)."""
    try:
        conn = AttachConnection.connect(state_dir, WAIT)
    except errors.Unavailable:
        return
    with conn:
        conn.resize(height, width)
