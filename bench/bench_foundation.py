"""Foundation benchmark: container start/exec/create latency, bulk start, daemon and shim memory.

Prints, in one run, dockyard (through the real docker CLI) next to a baseline measured in the
same run: crun alone running the same busybox bundle. Nothing here asserts; it reports.

    sudo .venv/bin/python bench/bench_foundation.py [--runs 20]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from common import samples_ms  # type: ignore[import-not-found]

from dockyard.host import cgroups
from dockyard.testing.daemon import DaemonProcess
from dockyard.testing.rootfs import busybox_rootfs_tar

TARGETS = {"run --rm (no bridge)": 50.0, "exec": 25.0, "20x run -d": 1000.0,
           "idle daemon RSS": 60.0, "shim PSS": 0.5}



# The docker CLI spends ~40 ms per command outside the runtime (process start, API calls). On
# a cgroup v1 host that idle gap matters: the first cgroup migration after a quiet period waits
# for an RCU grace period (cgroup_threadgroup_rwsem), which back-to-back runs never pay. So the
# baselines run crun both back-to-back and spaced by GAP_S, and the ratios use the spaced ones.
GAP_S = 0.04


def crun_baselines(work: Path, runs: int) -> dict[str, float]:
    """Median ms of `crun run` (a bundle equivalent to `run --rm --network none bb true`) and
    of `crun exec c true` into a running container of that bundle, back-to-back and spaced."""
    bundle = work / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(rootfs, filter="fully_trusted")
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["linux"]["cgroupsPath"] = f"/dybench-{os.getpid()}/c"
    root = work / "crun-root"
    hide = "umount /sys/fs/cgroup/unified;" if cgroups.needs_hiding() else ""
    crun = f"crun --root {root}"

    def timed(label: str, command: str, gap: float) -> str:
        pause = f"sleep {gap};" if gap else ""
        return (f"for i in $(seq {runs}); do {pause} s=$(date +%s%N); {command} >/dev/null; "
                f"e=$(date +%s%N); echo {label} $(( (e-s)/1000 )); done;")

    results: dict[str, list[float]] = {}
    try:
        for mode, args in (("run", ["true"]), ("exec", ["sleep", "600"])):
            spec["process"]["args"] = args
            (bundle / "config.json").write_text(json.dumps(spec))
            if mode == "run":
                body = "".join(timed(f"run{gap}", f"{crun} run --bundle {bundle} r{gap}$i", gap)
                               for gap in (0, GAP_S))
            else:
                body = (f"{crun} run -d --bundle {bundle} ex;"
                        + "".join(timed(f"exec{gap}", f"{crun} exec ex true", gap)
                                  for gap in (0, GAP_S))
                        + f"{crun} delete -f ex;")
            out = subprocess.run(["unshare", "-m", "sh", "-c", hide + body],
                                 capture_output=True, text=True, check=True)
            for line in out.stdout.split("\n"):
                if line.strip():
                    label, us = line.split()
                    results.setdefault(label, []).append(int(us) / 1000)
    finally:
        for ctl in Path("/sys/fs/cgroup").iterdir():
            for leaf in (ctl / f"dybench-{os.getpid()}" / "c", ctl / f"dybench-{os.getpid()}"):
                try:
                    leaf.rmdir()
                except OSError:
                    pass
    return {label: statistics.median(values) for label, values in results.items()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def shim_pids(base: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"dockyard-shim" in cmd and str(base).encode() in cmd:
                pids.append(int(proc.name))
    return pids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dybench-", dir="/tmp"))
    daemon = DaemonProcess(work / "d")
    results: dict[str, tuple[float, str]] = {}
    try:
        baselines = crun_baselines(work, args.runs)
        daemon.start()
        daemon.import_busybox()
        time.sleep(1)
        assert daemon.proc is not None
        results["idle daemon RSS"] = (rss_mb(daemon.proc.pid), "MB")
        docker = daemon.docker
        docker("run", "--rm", "--network", "none", "bb", "true")  # warm caches
        run = statistics.median(samples_ms(lambda: docker("run", "--rm", "--network", "none", "bb",
                                                     "true", check=True), args.runs))
        results["run --rm (no bridge)"] = (run, "ms")
        create = statistics.median(samples_ms(lambda: docker("create", "--network", "none", "bb",
                                                        "true", check=True), args.runs))
        results["create"] = (create, "ms")
        docker("container", "prune", "-f")
        docker("run", "-d", "--name", "bench-exec", "bb", "sleep", "600", check=True)
        exec_ms = statistics.median(samples_ms(lambda: docker("exec", "bench-exec", "true",
                                                         check=True), args.runs))
        results["exec"] = (exec_ms, "ms")
        start = time.perf_counter()
        for _ in range(20):
            docker("run", "-d", "--network", "none", "bb", "sleep", "600", check=True)
        results["20x run -d"] = ((time.perf_counter() - start) * 1000, "ms")
        pss = [pss_mb(pid) for pid in shim_pids(work / "d")]
        results["shim PSS"] = (statistics.mean(pss) if pss else 0.0, "MB")
        results["daemon RSS with 21 containers"] = (rss_mb(daemon.proc.pid), "MB")
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    run0, run_gap = baselines["run0"], baselines[f"run{GAP_S}"]
    exec0, exec_gap = baselines["exec0"], baselines[f"exec{GAP_S}"]
    print(f"baselines, crun alone on the same bundle (back-to-back / spaced {GAP_S * 1000:.0f} ms):"
          f"\n  crun run:  {run0:.1f} / {run_gap:.1f} ms\n  crun exec: {exec0:.1f} / "
          f"{exec_gap:.1f} ms\n")
    base_of = {"run --rm (no bridge)": run_gap, "create": run_gap, "exec": exec_gap,
               "20x run -d": run_gap * 20}
    print(f"{'measure':32} {'dockyard':>10} {'unit':5} {'target':>8} {'x crun':>8}")
    for key, (value, unit) in results.items():
        target = TARGETS.get(key)
        base = base_of.get(key)
        ratio = f"{value / base:.1f}" if base else ""
        print(f"{key:32} {value:10.2f} {unit:5} {target if target else '':>8} {ratio:>8}")


if __name__ == "__main__":
    main()
