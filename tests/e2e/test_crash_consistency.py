"""kill -9 the daemon at a random instant of a busy workload; it restarts clean, losing nothing.

Workers drive the real docker CLI concurrently (run/create/start/rm, commit, tag/rmi, a
3-step build, save|load, import, volumes, networks, push/pull against our registry on
127.0.0.1). What a worker saw succeed is recorded; after each crash the daemon must boot,
``dockyard.testing.fsck`` must find the store consistent, everything listed must inspect,
save and remove, and every recorded image/volume must still hold its content. A final clean
restart must change nothing. ``DY_CRASH_SEED`` picks the random kill instants.
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.testing import fsck
from dockyard.testing.daemon import DaemonProcess

ROUNDS = int(os.environ.get("DY_CRASH_ROUNDS", "4"))
SEED = int(os.environ.get("DY_CRASH_SEED", "20240611"))


@pytest.fixture
def own_daemon() -> Iterator[DaemonProcess]:
    if os.geteuid() != 0 or not shutil.which("crun"):
        pytest.skip("needs root and crun")
    proc = DaemonProcess(Path(tempfile.mkdtemp(prefix="dycrash-", dir="/tmp")))
    try:
        proc.start()
        proc.import_busybox()
        yield proc
    finally:
        proc.stop()
        for name in our_bridges(proc):
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.fixture
def registry_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


BRIDGE_OPT = "com.docker.network.bridge.name"


def bridge_prefix(d: DaemonProcess) -> str:
    """The workload's bridges are named by the test, so a leaked one can be told apart."""
    return "dc" + d.prefix[2:7]


def our_bridges(d: DaemonProcess) -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()
            if p.name.startswith(bridge_prefix(d))}


def small_tar(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("payload")
        info.size, info.mode = len(content), 0o644
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


class Workload:
    """Concurrent workers; ``images``/``volumes`` hold what they saw complete."""

    def __init__(self, d: DaemonProcess, port: int, work: Path) -> None:
        self.d = d
        self.registry = f"127.0.0.1:{port}"
        self.work = work
        self.images: dict[str, str] = {}   # tag → content of /payload (or /n for builds)
        self.volumes: dict[str, str] = {}  # name → content of f
        self.stop = threading.Event()
        self.counter = 0
        self.lock = threading.Lock()

    def ok(self, *args: str, input: bytes | None = None) -> bool:
        if self.stop.is_set():
            return False
        return self.d.docker(*args, input=input, timeout=60).returncode == 0

    def next(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def record(self, table: dict[str, str], key: str, value: str) -> None:
        with self.lock:
            table[key] = value

    def forget(self, table: dict[str, str], key: str) -> None:
        with self.lock:
            table.pop(key, None)

    # -- workers (each one iteration) -----------------------------------------------------
    def containers(self) -> None:
        n = self.next()
        self.ok("run", "--rm", "bb", "true")
        if self.ok("create", "--name", f"w{n}", "bb", "true"):
            self.ok("start", f"w{n}") and self.ok("rm", "-f", f"w{n}")

    def commit(self) -> None:
        n = self.next()
        if self.ok("run", "--name", f"cm{n}", "bb", "sh", "-c", f"echo c{n} > /payload"):
            if self.ok("commit", f"cm{n}", f"committed:{n}"):
                self.record(self.images, f"committed:{n}", f"c{n}")
            self.ok("rm", f"cm{n}")
        if self.ok("tag", "bb", f"alias:{n}"):
            self.ok("rmi", f"alias:{n}")

    def build(self) -> None:
        n = self.next()
        ctx = self.work / f"ctx{n}"
        ctx.mkdir()
        (ctx / "f").write_text(f"file {n}\n")
        (ctx / "Dockerfile").write_text(f"FROM bb\nRUN echo b{n} > /n\nCOPY f /f\n"
                                        'CMD ["cat", "/n"]\n')
        if self.ok("build", "-q", "-t", f"built:{n}", str(ctx)):
            self.record(self.images, f"built:{n}", f"b{n}")

    def archives(self) -> None:
        n = self.next()
        content = f"i{n}"
        if self.ok("import", "-", f"imported:{n}", input=small_tar(content.encode())):
            self.record(self.images, f"imported:{n}", content)
        saved = self.work / f"save{n}.tar"
        if self.ok("save", "-o", str(saved), f"imported:{n}"):
            self.forget(self.images, f"imported:{n}")
            if self.ok("rmi", f"imported:{n}") and self.ok("load", "-q", "-i", str(saved)):
                self.record(self.images, f"imported:{n}", content)
        saved.unlink(missing_ok=True)

    def registry_roundtrip(self) -> None:
        n = self.next()
        name = f"{self.registry}/crash/img:{n}"
        content = f"r{n}"
        if not self.ok("import", "-", name, input=small_tar(content.encode())):
            return
        if self.ok("push", "-q", name):
            if self.ok("rmi", name) and self.ok("pull", "-q", name):
                self.record(self.images, name, content)

    def volumes_and_networks(self) -> None:
        n = self.next()
        name = f"vol{n}"
        if self.ok("volume", "create", name) and self.ok(
                "run", "--rm", "-v", f"{name}:/data", "bb", "sh", "-c",
                f"echo v{n} > /data/f"):
            self.record(self.volumes, name, f"v{n}")
        if n % 3 == 0 and name in self.volumes:
            self.forget(self.volumes, name)
            self.ok("volume", "rm", name)
        if self.ok("network", "create", "-o", f"{BRIDGE_OPT}={bridge_prefix(self.d)}{n}",
                   f"net{n}"):
            self.ok("network", "rm", f"net{n}")

    def run(self) -> list[threading.Thread]:
        workers: list[Callable[[], None]] = [self.containers, self.commit, self.build,
                                             self.archives, self.registry_roundtrip,
                                             self.volumes_and_networks]

        def loop(step: Callable[[], None]) -> None:
            while not self.stop.is_set():
                step()

        threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        return threads


def check_store(d: DaemonProcess, load: Workload, when: str) -> fsck.Report:
    report = fsck.check(d.base / "data")
    assert report.ok, f"{when}: store inconsistent:\n{report}\n{d.log_text()}"
    return report


def read_file(ok: Callable[..., subprocess.CompletedProcess[bytes]], image: str,
              path: str) -> str:
    """A file of an image (imported ones have no shell): create, ``cp`` out, remove."""
    cid = ok("create", image, "none").stdout.decode().strip()
    try:
        data = ok("cp", f"{cid}:{path}", "-").stdout
    finally:
        ok("rm", cid)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        return member.read().decode().strip()


def check_api(d: DaemonProcess, load: Workload, when: str) -> None:
    def ok(*args: str) -> subprocess.CompletedProcess[bytes]:
        out = d.docker(*args, timeout=120)
        assert out.returncode == 0, f"{when}: docker {' '.join(args)}: {out.stderr!r}"
        return out

    ids = ok("images", "-aq", "--no-trunc").stdout.decode().split()
    for iid in dict.fromkeys(ids):
        ok("image", "inspect", iid)
        ok("history", iid)
    if ids:
        with tempfile.TemporaryFile() as sink:
            out = subprocess.run([shutil.which("docker") or "docker", "save",
                                  *dict.fromkeys(ids)], env=d.env, stdout=sink,
                                 stderr=subprocess.PIPE, timeout=120)
            assert out.returncode == 0, f"{when}: docker save: {out.stderr!r}"
    for tag, content in sorted(load.images.items()):
        got = read_file(ok, tag, "/n" if tag.startswith("built:") else "/payload")
        assert got == content, f"{when}: {tag} holds {got!r}, not {content!r}"
    for name, content in sorted(load.volumes.items()):
        mountpoint = json.loads(ok("volume", "inspect", name).stdout)[0]["Mountpoint"]
        got = (Path(mountpoint) / "f").read_text().strip()
        assert got == content, f"{when}: volume {name} holds {got!r}, not {content!r}"
        ok("run", "--rm", "-v", f"{name}:/data", "bb", "grep", "-qx", content, "/data/f")
    ok("system", "df")
    ok("run", "--rm", "bb", "true")
    containers = ok("ps", "-aq", "--no-trunc").stdout.decode().split()
    for cid in containers:
        ok("inspect", cid)
    if containers:
        ok("rm", "-f", *containers)
    deadline = time.time() + 15  # the runtime's cleanup of removed containers is async
    while (left := host_leftovers(d)) and time.time() < deadline:
        time.sleep(0.1)
    assert not left, f"{when}: left on the host with no container: {left}"


def host_leftovers(d: DaemonProcess) -> list[str]:
    """Mounts, namespace files, task dirs, runtime state and shims under the daemon's roots."""
    base = str(d.base)
    found = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
             if line.split()[1].startswith(base)]
    for sub in ("run/netns", "run/t", "run/runtime/crun"):
        directory = d.base / sub
        found += [str(p) for p in directory.iterdir()] if directory.is_dir() else []
    known = set()
    for net in d.docker("network", "ls", "-q").stdout.decode().split():
        inspected = json.loads(d.docker("network", "inspect", net).stdout or b"[{}]")[0]
        known.add((inspected.get("Options") or {}).get(BRIDGE_OPT, ""))
    found += [f"bridge {name}" for name in sorted(our_bridges(d) - known)]
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
        except OSError:
            continue
        if base.encode() in cmdline and b"dockyard-shim" in cmdline:
            found.append(f"shim pid {proc.name}")
    return found


def test_kill9_at_random_instants_restarts_clean(own_daemon: DaemonProcess,
                                                  registry_port: int, tmp_path: Path) -> None:
    d = own_daemon
    rng = random.Random(SEED)
    load = Workload(d, registry_port, tmp_path)
    for round_ in range(ROUNDS):
        when = f"seed {SEED} round {round_}"
        load.stop.clear()
        threads = load.run()
        time.sleep(rng.uniform(0.5, 3.0))
        d.kill9()
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
        d.start()
        check_store(d, load, when)
        check_api(d, load, when)
    deadline = time.time() + 10  # removals finish in the background
    while any((d.base / "data" / "trash").iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    before = check_store(d, load, "before a clean restart")
    d.stop_process()
    d.start()
    after = check_store(d, load, "after a clean restart")
    assert after.fingerprint == before.fingerprint
    check_api(d, load, "after a clean restart")


def test_fsck_reports_what_a_broken_store_lacks(tmp_path: Path) -> None:
    """The checker itself: a consistent store passes; each kind of damage is named."""
    if os.geteuid() != 0:
        pytest.skip("unpacking layers needs root")
    from dockyard.content.store import ContentStore
    from dockyard.image.model import new_config
    from dockyard.image.store import ImageStore
    from dockyard.metadata.db import Database
    from dockyard.snapshots.overlay import Snapshotter
    from dockyard.types import reference
    root = tmp_path / "data"
    root.mkdir()
    db = Database(root / "dockyard.db")
    store = ImageStore(db, ContentStore(root / "content"), Snapshotter(root / "snapshots", db))
    layer = store.add_layer(io.BytesIO(small_tar(b"x")), "")
    image = store.create(new_config({}, [layer.diff_id], [], "2024-01-01T00:00:00Z"))
    store.tag(image.id, reference.parse("fsck:1"))
    assert fsck.check(root).ok, fsck.check(root)
    (root / "snapshots" / "tmp-leftover").mkdir()
    (root / "content" / "ingest" / "partial").write_bytes(b"half")
    (root / "containers" / ("0" * 64)).mkdir(parents=True)
    store.content.path(layer.diff_id).write_bytes(b"not the layer")
    problems = "\n".join(fsck.check(root).problems)
    for expected in ("does not hash to its name", "snapshot directory tmp-leftover has no row",
                     "leftover content/ingest/partial", "container directory 000000000000 has"):
        assert expected in problems, problems
    store.content.delete(image.id)
    assert f"image {image.id[7:19]}: blob {image.id} is missing" in \
        "\n".join(fsck.check(root).problems)
    db.close()
