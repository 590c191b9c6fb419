"""Networking benchmark: `docker run --rm bb true` on the default bridge vs with no network,
and HTTP requests/s through a published port vs directly to the container's address.

Both baselines are measured in the same run. Targets from the issue: run --rm on the bridge
≤ 100 ms; requests through the published port ≥ 80 % of direct.

    sudo .venv/bin/python bench/bench_network.py [--runs 20] [--seconds 2]
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import tempfile
import time
from pathlib import Path

from common import median_ms  # type: ignore[import-not-found]

from dockyard.testing.daemon import DaemonProcess



def requests_per_second(host: str, port: int, seconds: float) -> float:
    """Sequential HTTP/1.0 GETs (busybox httpd closes each connection) for ``seconds``."""
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/hostname")
        conn.getresponse().read()
        conn.close()
        count += 1
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dybench-net-", dir="/tmp"))
    daemon = DaemonProcess(work / "d")
    try:
        daemon.start()
        daemon.import_busybox()
        docker = daemon.docker
        docker("run", "--rm", "bb", "true", check=True)
        none = median_ms(lambda: docker("run", "--rm", "--network", "none", "bb", "true",
                                        check=True), args.runs)
        bridge = median_ms(lambda: docker("run", "--rm", "bb", "true", check=True), args.runs)
        docker("run", "-d", "--name", "web", "-p", "127.0.0.1::80", "bb", "httpd", "-f", "-p",
               "80", "-h", "/etc", check=True)
        info = json.loads(docker("inspect", "web", check=True).stdout)[0]
        address = info["NetworkSettings"]["IPAddress"]
        host_port = int(info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        time.sleep(0.3)
        direct = requests_per_second(address, 80, args.seconds)
        published = requests_per_second("127.0.0.1", host_port, args.seconds)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"baseline: `run --rm --network none bb true`: {none:.1f} ms\n")
    print(f"{'measure':38} {'dockyard':>10} {'target':>8} {'ratio':>8}")
    print(f"{'run --rm bb true, default bridge (ms)':38} {bridge:10.1f} {100:8} "
          f"{bridge / none:8.2f}")
    print(f"{'req/s direct to container':38} {direct:10.0f}")
    print(f"{'req/s through published port':38} {published:10.0f} {'80%':>8} "
          f"{published / direct:8.0%}")


if __name__ == "__main__":
    main()
