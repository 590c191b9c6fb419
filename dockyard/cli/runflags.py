"""The flags of ``run``/``create`` (docker's containerOptions), with pflag-style converters."""
from __future__ import annotations

import re
from fractions import Fraction

from dockyard.cli.command import FlagParser, invalid
from dockyard.cli.units import parse_go_duration, ram_in_bytes


def mem_bytes(value: str) -> int:
    try:
        return ram_in_bytes(value)
    except ValueError:
        raise invalid(value, f"invalid size: '{value}'") from None


def mem_swap_bytes(value: str) -> int:
    return -1 if value == "-1" else mem_bytes(value)


def nano_cpus(value: str) -> int:
    try:
        cpus = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise invalid(value, f"failed to parse {value} as a rational number") from None
    nanos = cpus * 1_000_000_000
    if nanos.denominator != 1:
        raise invalid(value, "value is too precise")
    return nanos.numerator


def int64(value: str) -> int:
    if not re.match(r"^[+-]?\d+$", value):
        raise invalid(value, f'strconv.ParseInt: parsing "{value}": invalid syntax')
    return int(value)


def duration_ns(value: str) -> int:
    try:
        return round(parse_go_duration(value) * 1_000_000_000)
    except ValueError:
        raise invalid(value, f'time: invalid duration "{value}"') from None


def _list(p: FlagParser, *names: str, help: str, metavar: str = "list") -> None:
    p.add_argument(*names, action="append", default=[], help=help, metavar=metavar)


def _io_flags(p: FlagParser) -> None:
    _list(p, "-a", "--attach", help="Attach to STDIN, STDOUT or STDERR")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("--name", default="", help="Assign a name to the container")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("--pull", default="missing", choices=["always", "missing", "never"],
                   help='Pull image before running ("always", "missing", "never")')
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the pull output")
    p.add_argument("--cidfile", default="", help="Write the container ID to the file")
    p.add_argument("--rm", action="store_true",
                   help="Automatically remove the container and its associated anonymous "
                        "volumes when it exits")


def _config_flags(p: FlagParser) -> None:
    _list(p, "-e", "--env", help="Set environment variables")
    _list(p, "--env-file", help="Read in a file of environment variables")
    _list(p, "-l", "--label", help="Set meta data on a container")
    _list(p, "--label-file", help="Read in a line delimited file of labels")
    p.add_argument("-w", "--workdir", default="", help="Working directory inside the container",
                   metavar="string")
    p.add_argument("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-h", "--hostname", default="", help="Container host name")
    p.add_argument("--domainname", default="", help="Container NIS domain name")
    p.add_argument("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("--stop-signal", default=None, help="Signal to stop the container")
    p.add_argument("--stop-timeout", type=int64, default=None,
                   help="Timeout (in seconds) to stop a container")
    _list(p, "--expose", help="Expose a port or a range of ports")
    p.add_argument("--health-cmd", default="", help="Command to run to check health")
    p.add_argument("--health-interval", type=duration_ns, default=0,
                   help="Time between running the check (ms|s|m|h) (default 0s)")
    p.add_argument("--health-timeout", type=duration_ns, default=0,
                   help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    p.add_argument("--health-start-period", type=duration_ns, default=0,
                   help="Start period for the container to initialize (ms|s|m|h) (default 0s)")
    p.add_argument("--health-start-interval", type=duration_ns, default=0,
                   help="Time between running the check during the start period")
    p.add_argument("--health-retries", type=int64, default=0,
                   help="Consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="Disable any container-specified HEALTHCHECK")
    p.add_argument("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")


def _resource_flags(p: FlagParser) -> None:
    p.add_argument("-m", "--memory", type=mem_bytes, default=0, help="Memory limit",
                   metavar="bytes")
    p.add_argument("--memory-swap", type=mem_swap_bytes, default=0,
                   help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
                   metavar="bytes")
    p.add_argument("--memory-reservation", type=mem_bytes, default=0,
                   help="Memory soft limit", metavar="bytes")
    p.add_argument("--memory-swappiness", type=int64, default=None,
                   help="Tune container memory swappiness (0 to 100) (default -1)")
    p.add_argument("--kernel-memory", type=mem_bytes, default=0, help="Kernel memory limit",
                   metavar="bytes")
    p.add_argument("--cpus", type=nano_cpus, default=0, help="Number of CPUs", metavar="decimal")
    p.add_argument("-c", "--cpu-shares", type=int64, default=0,
                   help="CPU shares (relative weight)")
    p.add_argument("--cpu-period", type=int64, default=0, help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", type=int64, default=0, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("--cpu-rt-period", type=int64, default=0, help="Limit CPU real-time period in microseconds")
    p.add_argument("--cpu-rt-runtime", type=int64, default=0, help="Limit CPU real-time runtime in microseconds")
    p.add_argument("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int64, default=None,
                   help="Tune container pids limit (set -1 for unlimited)")
    p.add_argument("--blkio-weight", type=int64, default=0,
                   help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
    p.add_argument("--oom-kill-disable", action="store_true", default=None,
                   help="Disable OOM Killer")
    p.add_argument("--oom-score-adj", type=int64, default=0,
                   help="Tune host's OOM preferences (-1000 to 1000)")
    _list(p, "--ulimit", help="Ulimit options", metavar="ulimit")
    p.add_argument("--shm-size", type=mem_bytes, default=0, help="Size of /dev/shm",
                   metavar="bytes")
    p.add_argument("--cgroup-parent", default="", help="Optional parent cgroup for the container")


def _host_flags(p: FlagParser) -> None:
    p.add_argument("--privileged", action="store_true",
                   help="Give extended privileges to this container")
    _list(p, "--cap-add", help="Add Linux capabilities")
    _list(p, "--cap-drop", help="Drop Linux capabilities")
    p.add_argument("--read-only", action="store_true",
                   help="Mount the container's root filesystem as read only")
    _list(p, "--security-opt", help="Security Options")
    p.add_argument("--runtime", default="", help="Runtime to use for this container")
    p.add_argument("--restart", default="no",
                   help='Restart policy to apply when a container exits (default "no")')
    p.add_argument("--log-driver", default="", help="Logging driver for the container")
    _list(p, "--log-opt", help="Log driver options")
    p.add_argument("--init", action="store_true", default=None,
                   help="Run an init inside the container that forwards signals and reaps processes")
    _list(p, "--device", help="Add a host device to the container")
    _list(p, "--device-cgroup-rule", help="Add a rule to the cgroup allowed devices list")
    _list(p, "--sysctl", help="Sysctl options", metavar="map")
    _list(p, "--group-add", help="Add additional groups to join")
    _list(p, "--storage-opt", help="Storage driver options for the container")
    for name, what in (("--pid", "PID"), ("--ipc", "IPC"), ("--uts", "UTS"),
                       ("--userns", "User"), ("--cgroupns", "Cgroup")):
        p.add_argument(name, default="", help=f"{what} namespace to use")
    p.add_argument("--isolation", default="", help="Container isolation technology")


def _storage_network_flags(p: FlagParser) -> None:
    _list(p, "-v", "--volume", help="Bind mount a volume")
    _list(p, "--volumes-from", help="Mount volumes from the specified container(s)")
    _list(p, "--mount", help="Attach a filesystem mount to the container", metavar="mount")
    _list(p, "--tmpfs", help="Mount a tmpfs directory")
    p.add_argument("--volume-driver", default="", help="Optional volume driver for the container")
    _list(p, "--network", "--net", help="Connect a container to a network", metavar="network")
    _list(p, "--network-alias", "--net-alias", help="Add network-scoped alias for the container")
    p.add_argument("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", default="", help="IPv6 address (e.g., 2001:db8::33)")
    _list(p, "-p", "--publish", help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="Publish all exposed ports to random ports")
    _list(p, "--link", help="Add link to another container")
    _list(p, "--dns", help="Set custom DNS servers")
    _list(p, "--dns-search", help="Set custom DNS search domains")
    _list(p, "--dns-option", "--dns-opt", help="Set DNS options")
    _list(p, "--add-host", help="Add a custom host-to-IP mapping (host:ip)")


def add_create_flags(p: FlagParser) -> None:
    for add in (_io_flags, _config_flags, _resource_flags, _host_flags, _storage_network_flags):
        add(p)


def add_run_flags(p: FlagParser) -> None:
    add_create_flags(p)
    p.add_argument("-d", "--detach", action="store_true",
                   help="Run container in background and print container ID")
    p.add_argument("--sig-proxy", action="store_true", default=True,
                   help="Proxy received signals to the process (default true)")
    p.add_argument("--detach-keys", default="", help="Override the key sequence for detaching a container")
