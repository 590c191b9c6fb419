"""A container's root filesystem: the overlay over its image, and the per-container /etc files."""
from __future__ import annotations

from pathlib import Path

from dockyard.engine.paths import Paths
from dockyard.host import mounts
from dockyard.image.store import ImageStore
from dockyard.metadata.containers import ContainerRecord
from dockyard.util.atomic import write_bytes


def mount(paths: Paths, images: ImageStore, rec: ContainerRecord) -> Path:
    """Mount (if not mounted yet) and return the container's merged rootfs."""
    target = paths.rootfs(rec.id)
    if mounts.is_mountpoint(target):
        return target
    image = images.get(rec.image_id)
    if image is None:
        from dockyard.errors import NotFound
        raise NotFound(f"No such image: {rec.image_name}")
    images.ensure_unpacked(image.diff_ids)
    lowers = images.snapshots.lowers(image.chain_id) if image.chain_id else [
        images.snapshots.empty]
    base = paths.container(rec.id)
    target.mkdir(exist_ok=True)
    mounts.mount_overlay([init_layer(paths, rec), *lowers], base / "upper", base / "work",
                         target)
    return target


INIT_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf", "dev/console", ".dockerenv")
INIT_DIRS = ("dev/pts", "dev/shm", "dev/mqueue", "proc", "sys", "etc")


def init_layer(paths: Paths, rec: ContainerRecord) -> Path:
    """Docker's "-init" layer: the mountpoints the runtime binds over, so they never show up
    in ``docker diff`` or get committed."""
    init = paths.container(rec.id) / "init"
    if (init / ".dockerenv").exists():
        return init
    for directory in INIT_DIRS:
        (init / directory).mkdir(parents=True, exist_ok=True)
    for name in INIT_FILES:
        (init / name).touch()
    return init


def unmount(paths: Paths, rec: ContainerRecord) -> None:
    mounts.unmount(paths.rootfs(rec.id))


def write_etc_files(paths: Paths, rec: ContainerRecord, extra_hosts: list[str] | None = None,
                    address: str = "", extra_lines: list[str] | None = None,
                    nameservers: list[str] | None = None) -> dict[str, Path]:
    """hostname, hosts, resolv.conf for the container, bind-mounted over /etc later."""
    base = paths.container(rec.id)
    hostname = rec.config.get("Hostname") or rec.id[:12]
    domain = rec.config.get("Domainname") or ""
    fqdn = f"{hostname}.{domain}" if domain else hostname
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    for entry in [*(rec.host_config.get("ExtraHosts") or []), *(extra_hosts or [])]:
        name, _, ip = entry.partition(":")
        if ip != "host-gateway":  # resolved by the network layer (Sandbox.hosts)
            hosts.append(f"{ip}\t{name}")
    hosts += extra_lines or []
    if address:
        hosts.append(f"{address}\t{fqdn} {hostname}" if fqdn != hostname else
                     f"{address}\t{hostname}")
    files = {
        "hostname": (hostname + "\n").encode(),
        "hosts": ("\n".join(hosts) + "\n").encode(),
        "resolv.conf": resolv_conf(rec, nameservers).encode(),
    }
    result: dict[str, Path] = {}
    for name, data in files.items():
        path = base / name
        write_bytes(path, data, sync=False)
        result[name] = path
    return result


def resolv_conf(rec: ContainerRecord, embedded: list[str] | None = None) -> str:
    """The host's resolvers (loopback ones dropped), or the embedded DNS on user networks,
    plus --dns/--dns-search/--dns-option."""
    if embedded and not rec.host_config.get("Dns"):
        searches = rec.host_config.get("DnsSearch") or []
        own = [f"nameserver {ns}" for ns in embedded]
        if searches:
            own.append("search " + " ".join(searches))
        own.append("options " + " ".join(["ndots:0", *(rec.host_config.get("DnsOptions")
                                                       or [])]))
        return "\n".join(own) + "\n"
    dns = rec.host_config.get("Dns") or []
    search = rec.host_config.get("DnsSearch") or []
    options = rec.host_config.get("DnsOptions") or []
    lines: list[str] = []
    if not dns:
        try:
            host = Path("/etc/resolv.conf").read_text()
        except OSError:
            host = ""
        for line in host.splitlines():
            fields = line.split()
            if fields[:1] == ["nameserver"] and len(fields) > 1 and fields[1].startswith("127."):
                continue
            if fields and fields[0] in ("nameserver", "search", "options"):
                if fields[0] == "search" and search:
                    continue
                lines.append(line.strip())
    lines += [f"nameserver {d}" for d in dns]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
