"""Registry benchmark: push and pull of a ~50 MB image through the daemon (docker CLI) to our
registry and to Debian's `docker-registry`, skopeo's raw copy of the same image as the transfer
floor, and blob-serving throughput of both registries — all in one run, on 127.0.0.1.

Targets from the issue: push ≤ 350 ms, pull ≤ 300 ms, our registry serving blobs at ≥ 80 % of
Debian's throughput.

    sudo .venv/bin/python bench/bench_registry.py
"""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockyard.testing.daemon import DaemonProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on port {port}")


def debian_registry(work: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = work / f"{name}.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{work / name}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_registries(work: Path) -> tuple[list[subprocess.Popen[bytes]], int, int, int]:
    """Ours, Debian's, and a second, empty Debian registry for skopeo's floor."""
    ours = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve",
                               "--listen", f"127.0.0.1:{ours}", "--storage", str(work / "ours")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(ours)
    theirs_proc, theirs = debian_registry(work, "debreg")
    floor_proc, floor = debian_registry(work, "floorreg")
    return [*procs, theirs_proc, floor_proc], ours, theirs, floor


def blob_mb_per_s(port: int, repo: str, digest: str, rounds: int = 5) -> float:
    total, start = 0, time.perf_counter()
    for _ in range(rounds):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/v2/{repo}/blobs/{digest}")
        response = conn.getresponse()
        while chunk := response.read(1 << 20):
            total += len(chunk)
        conn.close()
    return total / (time.perf_counter() - start) / 1e6


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dybench-reg-", dir="/tmp"))
    daemon = DaemonProcess(work / "d")
    procs: list[subprocess.Popen[bytes]] = []
    rows: list[tuple[str, float, str]] = []
    try:
        daemon.start()
        daemon.import_busybox()
        docker = daemon.docker
        docker("run", "--name", "fifty", "bb", "sh", "-c",
               "head -c 50000000 /dev/urandom > /blob", check=True)
        docker("commit", "fifty", "big:1", check=True)
        procs, ours, theirs, floor = start_registries(work)
        for label, port in (("our registry", ours), ("Debian's registry", theirs)):
            name = f"127.0.0.1:{port}/bench/big:1"
            docker("tag", "big:1", name, check=True)
            start = time.perf_counter()
            docker("push", name, check=True, timeout=300)
            rows.append((f"push to {label}", (time.perf_counter() - start) * 1000, "ms"))
            docker("rmi", name, check=True)
            docker("rmi", "big:1", check=True)
            start = time.perf_counter()
            docker("pull", name, check=True, timeout=300)
            rows.append((f"pull from {label}", (time.perf_counter() - start) * 1000, "ms"))
            docker("tag", name, "big:1", check=True)
            docker("rmi", name, check=True)
        archive = work / "big.tar"
        archive.write_bytes(docker("save", "big:1", check=True, timeout=300).stdout)
        start = time.perf_counter()  # once: a second copy would find the blobs there
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"docker-archive:{archive}", f"docker://127.0.0.1:{floor}/floor/big:1"],
                       check=True)
        rows.append(("skopeo copy into an empty registry (floor)",
                     (time.perf_counter() - start) * 1000, "ms"))
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"docker-archive:{archive}", f"docker://127.0.0.1:{theirs}/floor/big:1"],
                       check=True)
        manifest = json.loads(subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false",
             f"docker://127.0.0.1:{theirs}/floor/big:1"], capture_output=True, check=True).stdout)
        big = max(manifest["layers"], key=lambda layer: layer["size"])
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"docker-archive:{archive}", f"docker://127.0.0.1:{ours}/floor/big:1"],
                       check=True)
        rows.append(("blob GET, our registry", blob_mb_per_s(ours, "floor/big", big["digest"]),
                     "MB/s"))
        rows.append(("blob GET, Debian's registry",
                     blob_mb_per_s(theirs, "floor/big", big["digest"]), "MB/s"))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    for name, value, unit in rows:
        print(f"{name:40} {value:10.1f} {unit}")


if __name__ == "__main__":
    main()
