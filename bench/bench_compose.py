"""Compose benchmark: `up -d` and `down -v` of a 5-service project (web + db + 3 cache-like
busybox services on a user network, db with a named volume) through `dockyard compose`, with
Debian's docker-compose 1.29 (Python, docker-py 5) against the same daemon as the baseline,
measured in the same run, alternating the two tools each repetition.

The services exit on SIGTERM (a trap), so `down` measures compose and the engine, not stop
timeouts. Each repetition uses a new project name.

    sudo .venv/bin/python bench/bench_compose.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.testing.daemon import DaemonProcess

REPO = Path(__file__).resolve().parents[1]
IDLE = "trap 'exit 0' TERM; sleep 3600 & wait"
WEB = "mkdir -p /www && echo hi > /www/index.html && trap 'exit 0' TERM; httpd -f -h /www & wait"
PROJECT = f"""\
services:
  web:
    image: bb
    command: ["sh", "-c", "{WEB}"]
    ports: ["127.0.0.1::80"]
    depends_on: [db, cache1, cache2, cache3]
    networks: [app]
  db:
    image: bb
    command: ["sh", "-c", "{IDLE}"]
    volumes: [data:/data]
    networks:
      app:
        aliases: [database]
""" + "".join(f"""\
  cache{i}:
    image: bb
    command: ["sh", "-c", "{IDLE}"]
    networks: [app]
""" for i in (1, 2, 3)) + """\
networks:
  app: {}
volumes:
  data: {}
"""


def tool_commands(daemon: DaemonProcess, workdir: Path) -> dict[str, Callable[..., None]]:
    """``name -> run(project, *args)`` for both tools, each with the environment it needs."""
    ours_env = dict(daemon.env, PYTHONPATH=str(REPO))
    legacy_env = dict(daemon.env, COMPOSE_INTERACTIVE_NO_CLI="1")
    legacy_env.pop("PYTHONPATH", None)
    compose_file = str(workdir / "compose.yaml")

    def ours(project: str, *args: str) -> None:
        _run([sys.executable, "-m", "dockyard.cli.main", "compose", "-p", project, "-f",
              compose_file, *args], ours_env, workdir)

    def legacy(project: str, *args: str) -> None:
        _run(["docker-compose", "-p", project, "-f", compose_file, *args], legacy_env, workdir)

    return {"dockyard compose": ours, "docker-compose 1.29": legacy}


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")


def timed_ms(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(tools: dict[str, Callable[..., None]], runs: int,
            ) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {t: {"up": [], "down": []} for t in tools}
    for i in range(runs + 1):  # the first round warms caches and is not counted
        for name, tool in tools.items():
            project = f"bc{i}{'o' if name.startswith('dockyard') else 'l'}{os.getpid() % 1000}"
            up = timed_ms(lambda: tool(project, "up", "-d"))
            down = timed_ms(lambda: tool(project, "down", "-v"))
            if i:
                times[name]["up"].append(up)
                times[name]["down"].append(down)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("docker-compose") is None:
        sys.exit("docker-compose (1.29) is not installed: apt-get install docker-compose")
    work = Path(tempfile.mkdtemp(prefix="dybench-compose-", dir="/tmp"))
    workdir = work / "app"
    workdir.mkdir()
    (workdir / "compose.yaml").write_text(PROJECT)
    daemon = DaemonProcess(work / "d")
    try:
        daemon.start()
        daemon.import_busybox("bb:latest")
        times = measure(tool_commands(daemon, workdir), args.runs)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {t: {op: statistics.median(v) for op, v in ops.items()} for t, ops in times.items()}
    ours, base = med["dockyard compose"], med["docker-compose 1.29"]
    print(f"5 services, {args.runs} runs, medians; baseline: docker-compose 1.29 against the "
          "same daemon, same run\n")
    print(f"{'measure':22} {'dockyard ms':>12} {'1.29 ms':>9} {'ratio':>7}")
    for op, label in (("up", "up -d"), ("down", "down -v")):
        print(f"{label:22} {ours[op]:12.0f} {base[op]:9.0f} {ours[op] / base[op]:7.2f}")
    total_ours, total_base = ours["up"] + ours["down"], base["up"] + base["down"]
    print(f"{'up -d + down -v':22} {total_ours:12.0f} {total_base:9.0f} "
          f"{total_ours / total_base:7.2f}")


if __name__ == "__main__":
    main()
