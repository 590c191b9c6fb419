"""The flags of ``service create`` and ``service update`` and their pflag-style converters.

Scalar flags default to None so that "was the flag given" (pflag's ``Changed``) is visible:
``service update`` only touches what was given, ``create`` leaves out what docker leaves out.
"""
from __future__ import annotations

import csv
import re
import shlex
from typing import Any

from dockyard.cli.command import FlagParser, invalid
from dockyard.cli.runflags import duration_ns, int64, mem_bytes, nano_cpus
from dockyard.cli.runparse import OptionError, parse_mount
from dockyard.errors import InvalidArgument
from dockyard.network import ports as portspecs

def uint64(value: str) -> int:
    if not re.match(r"^\+?\d+$", value):
        raise invalid(value, f'strconv.ParseUint: parsing "{value}": invalid syntax')
    number = int(value)
    if number >= 1 << 64:
        raise invalid(value, f'strconv.ParseUint: parsing "{value}": value out of range')
    return number


def ratio(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise invalid(value, f'strconv.ParseFloat: parsing "{value}": invalid syntax') from None


def words(value: str) -> list[str]:
    """opts.ShlexOpt: ``--entrypoint "sh -c"`` → ``["sh", "-c"]``."""
    try:
        return shlex.split(value)
    except ValueError:
        raise invalid(value, "EOF found when expecting closing quote") from None


def mount_opt(value: str) -> dict[str, Any]:
    try:
        return parse_mount(value)
    except (OptionError, ValueError) as exc:
        raise invalid(value, str(exc)) from None


_LONG_PORT = re.compile(r"\w+=\w+(,\w+=\w+)*")


def port_opt(value: str) -> list[dict[str, Any]]:
    """opts.PortOpt: ``8080:80/udp`` or ``published=8080,target=80,mode=host`` → PortConfigs."""
    try:
        return _long_port(value) if _LONG_PORT.search(value) else _short_port(value)
    except (InvalidArgument, ValueError) as exc:
        raise invalid(value, getattr(exc, "message", None) or str(exc)) from None


def _long_port(value: str) -> list[dict[str, Any]]:
    port: dict[str, Any] = {}
    for item in next(csv.reader([value])):
        key, sep, val = item.lower().partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field: {item}")
        if key == "protocol":
            if val not in ("tcp", "udp", "sctp"):
                raise ValueError(f"invalid protocol value '{val}'")
            port["Protocol"] = val
        elif key == "mode":
            if val not in ("ingress", "host"):
                raise ValueError(f"invalid publish mode value ({val}): must be either "
                                 "'ingress' or 'host'")
            port["PublishMode"] = val
        elif key in ("target", "published"):
            if not val.isdigit() or int(val) > 65535:
                raise ValueError(f'strconv.ParseUint: parsing "{val}": invalid syntax')
            port["TargetPort" if key == "target" else "PublishedPort"] = int(val)
        else:
            raise ValueError(f"invalid field key: {key}")
    if not port.get("TargetPort"):
        raise ValueError("missing mandatory field 'target'")
    return [port_config(port.get("Protocol", "tcp"), port["TargetPort"],
                        port.get("PublishedPort", 0), port.get("PublishMode", "ingress"))]


def _short_port(value: str) -> list[dict[str, Any]]:
    out = []
    for binding in portspecs.parse_port_spec(value):
        if binding.host_ip:
            raise ValueError("hostip is not supported")
        last = max(binding.host_port, binding.host_port_end)
        for published in range(binding.host_port, last + 1):
            out.append(port_config(binding.proto, binding.container_port, published))
    return sorted(out, key=lambda p: (p["TargetPort"], p.get("PublishedPort", 0)))


def port_config(proto: str, target: int, published: int = 0,
                mode: str = "ingress") -> dict[str, Any]:
    """A swarm.PortConfig as Go marshals it (zero fields left out)."""
    port: dict[str, Any] = {"Protocol": proto, "TargetPort": target}
    if published:
        port["PublishedPort"] = published
    port["PublishMode"] = mode
    return port


def _list(p: FlagParser, *names: str, help: str, metavar: str = "list", **kw: Any) -> None:
    p.add_argument(*names, action="append", default=[], help=help, metavar=metavar, **kw)


def _opt(p: FlagParser, *names: str, help: str, **kw: Any) -> None:
    p.add_argument(*names, default=None, help=help, **kw)


def _bool(p: FlagParser, *names: str, help: str) -> None:
    p.add_argument(*names, action="store_true", default=None, help=help)


def _common(p: FlagParser, create: bool) -> None:
    """addServiceFlags: what both commands take (create's help shows the defaults)."""
    def d(text: str) -> str:
        return f" (default {text})" if create else ""
    _bool(p, "-d", "--detach", help="Exit immediately instead of waiting for the service to "
          "converge")
    _bool(p, "-q", "--quiet", help="Suppress progress output")
    _opt(p, "-w", "--workdir", help="Working directory inside the container", metavar="string")
    _opt(p, "-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    _opt(p, "--hostname", help="Container hostname")
    _opt(p, "--entrypoint", type=words, help="Overwrite the default ENTRYPOINT of the image",
         metavar="command")
    _bool(p, "--init", help="Use an init inside each service container to forward signals "
          "and reap processes")
    _bool(p, "-t", "--tty", help="Allocate a pseudo-TTY")
    _bool(p, "--read-only", help="Mount the container's root filesystem as read only")
    _opt(p, "--stop-signal", help="Signal to stop the container")
    _opt(p, "--stop-grace-period", type=duration_ns, metavar="duration",
         help="Time to wait before force killing a container (ns|us|ms|s|m|h)" + d("10s"))
    _opt(p, "--limit-cpu", type=nano_cpus, help="Limit CPUs", metavar="decimal")
    _opt(p, "--limit-memory", type=mem_bytes, help="Limit Memory", metavar="bytes")
    _opt(p, "--limit-pids", type=int64, help="Limit maximum number of processes (default 0 = "
         "unlimited)", metavar="int")
    _opt(p, "--reserve-cpu", type=nano_cpus, help="Reserve CPUs", metavar="decimal")
    _opt(p, "--reserve-memory", type=mem_bytes, help="Reserve Memory", metavar="bytes")
    _opt(p, "--replicas", type=uint64, help="Number of tasks", metavar="uint")
    _opt(p, "--replicas-max-per-node", type=uint64, metavar="uint",
         help="Maximum number of tasks per node (default 0 = unlimited)")
    _opt(p, "--restart-condition", help='Restart when condition is met ("none", "on-failure", '
         '"any")' + d('"any"'))
    _opt(p, "--restart-delay", type=duration_ns, metavar="duration",
         help="Delay between restart attempts (ns|us|ms|s|m|h)" + d("5s"))
    _opt(p, "--restart-max-attempts", type=uint64, metavar="uint",
         help="Maximum number of restarts before giving up")
    _opt(p, "--restart-window", type=duration_ns, metavar="duration",
         help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)")
    for kind, verb in (("update", "updated"), ("rollback", "rolled back")):
        _opt(p, f"--{kind}-parallelism", type=uint64, metavar="uint",
             help=f"Maximum number of tasks {verb} simultaneously" + d("1"))
        _opt(p, f"--{kind}-delay", type=duration_ns, metavar="duration",
             help=f"Delay between {kind}s (ns|us|ms|s|m|h)" + d("0s"))
        _opt(p, f"--{kind}-monitor", type=duration_ns, metavar="duration",
             help=f"Duration after each task {kind} to monitor for failure (ns|us|ms|s|m|h)"
             + d("5s"))
        _opt(p, f"--{kind}-failure-action", help=f"Action on {kind} failure" + d('"pause"'))
        _opt(p, f"--{kind}-max-failure-ratio", type=ratio, metavar="float",
             help=f"Failure rate to tolerate during a {kind}" + d("0"))
        _opt(p, f"--{kind}-order", help=f'{kind.title()} order ("start-first", "stop-first")'
             + d('"stop-first"'))
    _opt(p, "--endpoint-mode", help="Endpoint mode (vip or dnsrr)" + d('"vip"'))
    _opt(p, "--log-driver", help="Logging driver for service")
    _list(p, "--log-opt", help="Logging driver options")
    _opt(p, "--health-cmd", help="Command to run to check health")
    for name, text in (("interval", "Time between running the check"),
                       ("timeout", "Maximum time to allow one check to run"),
                       ("start-period", "Start period for the container to initialize before "
                        "counting retries towards unstable"),
                       ("start-interval", "Time between running the check during the start "
                        "period")):
        _opt(p, f"--health-{name}", type=duration_ns, metavar="duration",
             help=f"{text} (ms|s|m|h)")
    _opt(p, "--health-retries", type=int64, metavar="int",
         help="Consecutive failures needed to report unhealthy")
    _bool(p, "--no-healthcheck", help="Disable any container-specified HEALTHCHECK")
    _bool(p, "--no-resolve-image", help="Do not query the registry to resolve image digest "
          "and supported platforms")
    _bool(p, "--with-registry-auth", help="Send registry authentication details to swarm "
          "agents")


def add_create_flags(p: FlagParser) -> None:
    _common(p, create=True)
    p.add_argument("--name", default="", help="Service name")
    p.add_argument("--mode", default="replicated", help='Service mode ("replicated", '
                   '"global", "replicated-job", "global-job") (default "replicated")')
    _opt(p, "--max-concurrent", type=uint64, metavar="uint", help="Number of job tasks to "
         "run concurrently (default equal to --replicas)")
    _list(p, "-l", "--label", help="Service labels")
    _list(p, "--container-label", help="Container labels")
    _list(p, "-e", "--env", help="Set environment variables")
    _list(p, "--env-file", help="Read in a file of environment variables")
    _list(p, "--mount", type=mount_opt, help="Attach a filesystem mount to the service",
          metavar="mount")
    _list(p, "--constraint", help="Placement constraints")
    _list(p, "--placement-pref", help="Add a placement preference", metavar="pref")
    _list(p, "--network", help="Network attachments", metavar="network")
    _list(p, "-p", "--publish", type=port_opt, help="Publish a port as a node port",
          metavar="port")
    _list(p, "--group", help="Set one or more supplementary user groups for the container")
    _list(p, "--dns", help="Set custom DNS servers")
    _list(p, "--dns-option", help="Set DNS options")
    _list(p, "--dns-search", help="Set custom DNS search domains")
    _list(p, "--host", help="Set one or more custom host-to-IP mappings (host:ip)")
    _list(p, "--sysctl", help="Sysctl options")
    _opt(p, "--oom-score-adj", type=int64, metavar="int",
         help="Tune host's OOM preferences (-1000 to 1000) ")


def add_update_flags(p: FlagParser) -> None:
    _common(p, create=False)
    _opt(p, "--image", help="Service image tag")
    _opt(p, "--args", dest="command_args", type=words, help="Service command args",
         metavar="command")
    _bool(p, "--rollback", help="Rollback to previous specification")
    _bool(p, "--force", help="Force update even if no changes require it")
    for flag, added, removed in (
            ("label", "a service label", "a label by its key"),
            ("container-label", "a container label", "a container label by its key"),
            ("env", "an environment variable", "an environment variable"),
            ("constraint", "a placement constraint", "a constraint")):
        _list(p, f"--{flag}-add", help=f"Add or update {added}")
        _list(p, f"--{flag}-rm", help=f"Remove {removed}")
    _list(p, "--mount-add", type=mount_opt, help="Add or update a mount on a service",
          metavar="mount")
    _list(p, "--mount-rm", help="Remove a mount by its target path")
    _list(p, "--publish-add", type=port_opt, help="Add or update a published port",
          metavar="port")
    _list(p, "--publish-rm", type=port_opt, help="Remove a published port by its target port",
          metavar="port")
