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



def crun_baseline(work: Path, runs: int) -> float:
    """Median ms of `crun run` on a bundle equivalent to `run --rm --network none bb true`."""
    bundle = work / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(rootfs, filter="fully_trusted")
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["linux"]["cgroupsPath"] = f"/dybench-{os.getpid()}/c"
    (bundle / "config.json").write_text(json.dumps(spec))
    root = work / "crun-root"
    hide = "umount /sys/fs/cgroup/unified;" if cgroups.needs_hiding() else ""
    script = (f"{hide} for i in $(seq {runs}); do s=$(date +%s%N); crun --root {root} run "
              f"--bundle {bundle} b$i >/dev/null; e=$(date +%s%N); echo $(( (e-s)/1000 )); done")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         check=True)
    for ctl in Path("/sys/fs/cgroup").iterdir():
        try:
            (ctl / f"dybench-{os.getpid()}").rmdir()
        except OSError:
            pass
    return statistics.median(int(x) / 1000 for x in out.stdout.split())


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
        baseline = crun_baseline(work, args.runs)
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
    print(f"baseline: crun alone, same bundle: {baseline:.1f} ms per run\n")
    print(f"{'measure':32} {'dockyard':>10} {'unit':5} {'target':>8} {'x crun':>8}")
    for key, (value, unit) in results.items():
        target = TARGETS.get(key)
        ratio = f"{value / baseline:.1f}" if unit == "ms" and key != "20x run -d" else (
            f"{value / 20 / baseline:.1f}" if key == "20x run -d" else "")
        print(f"{key:32} {value:10.2f} {unit:5} {target if target else '':>8} {ratio:>8}")


if __name__ == "__main__":
    main()
