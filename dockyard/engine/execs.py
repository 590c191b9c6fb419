"""``docker exec``: extra processes in a running container, each through its own shim."""
from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockyard.engine import specopts
from dockyard.engine.attach import Session
from dockyard.engine.containers import Containers
from dockyard.engine.createconfig import merge_env
from dockyard.engine.taskrunner import TaskRunner
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.host import cgwarm
from dockyard.runtime.spec import build_spec
from dockyard.runtime.shim import client as shim
from dockyard.util import ids
from dockyard.util.atomic import write_bytes


@dataclass
class ExecRecord:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str
    tty: bool
    privileged: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    console_size: tuple[int, int] | None = None
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0],
                              "arguments": self.cmd[1:], "privileged": self.privileged,
                              "user": self.user},
            "OpenStdin": self.attach_stdin, "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout, "CanRemove": False,
            "ContainerID": self.container_id, "DetachKeys": "", "Pid": self.pid,
        }


class Execs:
    def __init__(self, containers: Containers, tasks: TaskRunner) -> None:
        self.containers = containers
        self.tasks = tasks
        self._execs: dict[str, ExecRecord] = {}

    def create(self, ref: str, body: dict[str, Any]) -> ExecRecord:
        cgwarm.prewarm()  # clients start an exec right after creating it
        rec = self.containers.lookup(ref)
        if rec.state.status != "running":
            if rec.state.status == "paused":
                raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
            raise Conflict(f"Container {rec.id} is not running")
        cmd = body.get("Cmd") or []
        if not cmd:
            raise InvalidArgument("No exec command specified")
        ex = ExecRecord(id=ids.new_id(), container_id=rec.id, cmd=list(cmd),
                        env=list(body.get("Env") or []), user=body.get("User") or "",
                        workdir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
                        privileged=bool(body.get("Privileged")),
                        attach_stdin=bool(body.get("AttachStdin")),
                        attach_stdout=bool(body.get("AttachStdout")),
                        attach_stderr=bool(body.get("AttachStderr")),
                        console_size=specopts.console_size(body.get("ConsoleSize")))
        self._execs[ex.id] = ex
        self.containers.events.publish("container", f"exec_create: {' '.join(cmd)}", rec.id,
                                       image=rec.image_name, name=rec.name, execID=ex.id)
        return ex

    def get(self, exec_id: str) -> ExecRecord:
        ex = self._execs.get(exec_id)
        if ex is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return ex

    def _process(self, ex: ExecRecord) -> dict[str, Any]:
        rec = self.containers.lookup(ex.container_id)
        root = self.containers.paths.rootfs(rec.id)
        # only the process part is used: joined namespaces are the container's already
        opts = specopts.options_for(rec, root, {}, "", resolve=lambda ref, kind: "")
        opts = replace(opts, args=tuple(ex.cmd), env=tuple(merge_env(list(opts.env), ex.env)),
                       user=ex.user or opts.user, cwd=ex.workdir or opts.cwd, tty=ex.tty,
                       privileged=ex.privileged or opts.privileged,
                       console_size=ex.console_size)
        spec = build_spec(opts)
        specopts.check_executable(root, spec, specopts.EXEC_FAIL)
        return dict(spec["process"])

    def start(self, exec_id: str, session: Session | None) -> ExecRecord:
        """Launch the exec; with a session, pump its streams until the process ends."""
        cgwarm.prewarm()  # `crun exec` migrates the process into the container's cgroup
        ex = self.get(exec_id)
        if ex.running or ex.exit_code is not None:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        rec = self.containers.lookup(ex.container_id)
        if rec.state.status != "running":
            raise Conflict(f"Container {rec.id} is not running")
        state = self.containers.paths.exec_state(ex.id)
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        process_file = state / "process.json"
        try:
            process = self._process(ex)
        except Exception as exc:
            # Docker: the exec ends at once, with 126/127 when the command cannot run.
            self._record_exit(ex, shim.exit_code_for_runtime_error(str(exc)) or 126)
            ex.done.set()
            shutil.rmtree(state, ignore_errors=True)
            raise
        write_bytes(process_file, json.dumps(process).encode(), sync=False)
        runtime = self.tasks.runtime_for(rec)
        config = shim.ShimConfig(runtime=runtime.binary, runtime_root=runtime.root,
                                 container_id=rec.id, bundle=self.containers.paths.container(rec.id),
                                 state_dir=state, log_path=Path("/dev/null"), tty=ex.tty,
                                 stdin=ex.attach_stdin, exec_process=process_file)
        shim.launch(self.tasks.settings.shim_binary, config)
        if session is not None:
            session.connect(state)
        control = shim.AttachConnection.connect(state, "W")  # starts the exec, then awaits it
        try:
            ex.pid = control.start()
        except Exception:
            control.close()
            shutil.rmtree(state, ignore_errors=True)
            raise
        ex.running = True
        self.containers.events.publish("container", f"exec_start: {' '.join(ex.cmd)}", rec.id,
                                       image=rec.image_name, name=rec.name, execID=ex.id)
        threading.Thread(target=self._await, args=(ex, control, state), daemon=True).start()
        if session is not None:
            session.on_exit = lambda code: self._record_exit(ex, code)
            session.pump()
        return ex

    @staticmethod
    def _record_exit(ex: ExecRecord, code: int) -> None:
        ex.exit_code, ex.running = code, False

    def _await(self, ex: ExecRecord, control: shim.AttachConnection, state: Path) -> None:
        code = 255
        try:
            while (item := control.read_frame()) is not None:
                if item[0] == 3:
                    code = int(item[1] or b"255")
                    break
        except OSError:
            pass
        finally:
            control.close()
        status = shim.read_exit(state)
        if status is not None:
            code = status.exit_code
        self._record_exit(ex, code)
        ex.done.set()
        shutil.rmtree(state, ignore_errors=True)
        rec = self.containers.get(ex.container_id)
        if rec is not None:
            self.containers.events.publish("container", "exec_die", rec.id, image=rec.image_name,
                                           name=rec.name, execID=ex.id, exitCode=str(code))

    def resize(self, exec_id: str, height: int, width: int) -> None:
        shim.resize(self.containers.paths.exec_state(self.get(exec_id).id), height, width)



