"""Builder benchmark: the 3-step build cold (--no-cache) and fully cached through the docker
CLI, and `commit` of a container that wrote 10 MB.

The baseline, measured in the same run, is the floor a cold build cannot beat: one
`docker run --rm bb sh -c 'echo a > /a'` (the build's only RUN step) through the same CLI and
daemon. Targets from the issue: cached ≤ 40 ms, cold ≤ 200 ms, commit ≤ 80 ms.

    sudo .venv/bin/python bench/bench_build.py [--runs 10]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import median_ms  # type: ignore[import-not-found]

from dockyard.testing.daemon import DaemonProcess

DOCKERFILE = "FROM bb\nRUN echo a > /a\nCOPY file /f\nCMD [\"sh\"]\n"



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dybench-build-", dir="/tmp"))
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "file").write_text("content\n")
    daemon = DaemonProcess(work / "d")
    try:
        daemon.start()
        daemon.import_busybox()
        docker = daemon.docker
        floor = median_ms(lambda: docker("run", "--rm", "bb", "sh", "-c", "echo a > /a",
                                         check=True), args.runs)
        cold = median_ms(lambda: docker("build", "-q", "--no-cache", "-t", "b:1", str(ctx),
                                        check=True), args.runs)
        cached = median_ms(lambda: docker("build", "-q", "-t", "b:1", str(ctx), check=True),
                           args.runs)
        docker("run", "--name", "writer", "bb", "sh", "-c",
               "dd if=/dev/urandom of=/blob bs=1M count=10 2>/dev/null", check=True)
        commit = median_ms(lambda: docker("commit", "writer", "c:1", check=True), args.runs)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"baseline: one `docker run --rm` of the RUN step: {floor:.1f} ms\n")
    print(f"{'measure':28} {'dockyard ms':>12} {'target':>8} {'x baseline':>11}")
    for name, value, target in (("build, cold (--no-cache)", cold, 200),
                                ("build, fully cached", cached, 40),
                                ("commit of 10 MB", commit, 80)):
        print(f"{name:28} {value:12.1f} {target:8} {value / floor:11.2f}")


if __name__ == "__main__":
    main()
