"""``run``/``create`` flags → the create request, and the other request bodies (pure)."""
from __future__ import annotations

from typing import Any

import pytest

from dockyard.cli.command import Command, FlagParser, parse
from dockyard.cli.exec import EXEC, exec_config
from dockyard.cli.run import RUN, start_error_status
from dockyard.cli.runconfig import build_create
from dockyard.cli.runparse import OptionError, parse_mount, parse_ports
from dockyard.cli.transfer import COMMIT, commit_query


def _ns(cmd: Command, argv: list[str]) -> Any:
    parser = FlagParser(f"dockyard {cmd.name}")
    cmd.build(parser)
    return parse(cmd, parser, argv)


def create_body(argv: list[str], env: dict[str, str] | None = None,
                files: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    ns = _ns(RUN, argv)
    req = build_create(ns, ns.args[0], ns.args[1:], env or {},
                       read_text=lambda path: (files or {})[path])
    return req.body, req


def test_defaults_match_docker_28() -> None:
    body, req = create_body(["bb"])
    assert req.query == {"name": None, "platform": None}
    assert body["Image"] == "bb" and body["Cmd"] is None and body["Env"] is None
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (
        False, True, True)
    hc = body["HostConfig"]
    assert hc["NetworkMode"] == "default"
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["MemorySwappiness"] == -1 and hc["ConsoleSize"] == [0, 0]
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {}}}
    assert "Init" not in hc and "StopTimeout" not in body


def test_command_after_image_is_untouched() -> None:
    body, _ = create_body(["--rm", "bb", "sh", "-c", "exit 3"])
    assert body["Cmd"] == ["sh", "-c", "exit 3"]
    body, _ = create_body(["bb", "--rm", "-d"])
    assert body["Cmd"] == ["--rm", "-d"] and body["HostConfig"]["AutoRemove"] is False
    body, _ = create_body(["--", "bb", "ls"])
    assert body["Image"] == "bb" and body["Cmd"] == ["ls"]


def test_interactive_tty_and_attach() -> None:
    body, _ = create_body(["-it", "bb"])
    assert body["Tty"] and body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]
    body, _ = create_body(["-a", "stdout", "bb"])
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (
        False, True, False)
    with pytest.raises(OptionError):
        create_body(["-a", "bogus", "bb"])


def test_config_flags() -> None:
    files = {"envf": "X=1\n# comment\n\nHOME\nMISSING\n", "labels": "l1=v1\n"}
    body, req = create_body(
        ["--name", "web", "--platform", "linux/amd64", "-e", "A=1", "-e", "USER",
         "--env-file", "envf", "-w", "/w", "-u", "1:2", "-h", "host", "--domainname", "dom",
         "--entrypoint", "/bin/sh", "-l", "a=b", "-l", "c", "--label-file", "labels",
         "--stop-signal", "SIGINT", "--stop-timeout", "5", "--health-cmd", "true",
         "--health-interval", "5s", "--health-retries", "3", "bb", "-c", "echo"],
        env={"HOME": "/root", "USER": "me"}, files=files)
    assert req.query == {"name": "web", "platform": "linux/amd64"}
    assert body["Env"] == ["X=1", "HOME=/root", "A=1", "USER=me"]
    assert (body["WorkingDir"], body["User"], body["Hostname"], body["Domainname"]) == (
        "/w", "1:2", "host", "dom")
    assert body["Entrypoint"] == ["/bin/sh"] and body["Cmd"] == ["-c", "echo"]
    assert body["Labels"] == {"l1": "v1", "a": "b", "c": ""}
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 5
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                   "Timeout": 0, "StartPeriod": 0, "StartInterval": 0,
                                   "Retries": 3}
    body, _ = create_body(["--entrypoint=", "bb"])
    assert body["Entrypoint"] == [""]
    body, _ = create_body(["--no-healthcheck", "bb"])
    assert body["Healthcheck"] == {"Test": ["NONE"]}


def test_resource_flags() -> None:
    body, _ = create_body(["--restart", "on-failure:3", "-m", "512m", "--memory-swap", "-1",
                           "--cpus", "1.5", "-c", "100", "--pids-limit", "50",
                           "--shm-size", "64m", "--ulimit", "nofile=1024:2048",
                           "--ulimit", "nproc=10", "--oom-kill-disable",
                           "--memory-swappiness", "10", "--cpuset-cpus", "0-1", "bb"])
    hc = body["HostConfig"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert hc["Memory"] == 512 * 1024 * 1024 and hc["MemorySwap"] == -1
    assert hc["NanoCpus"] == 1_500_000_000 and hc["CpuShares"] == 100
    assert hc["PidsLimit"] == 50 and hc["ShmSize"] == 64 * 1024 * 1024
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                             {"Name": "nproc", "Soft": 10, "Hard": 10}]
    assert hc["OomKillDisable"] is True and hc["MemorySwappiness"] == 10
    assert hc["CpusetCpus"] == "0-1"


def test_security_and_host_flags() -> None:
    body, _ = create_body(["--privileged", "--cap-add", "net_admin", "--cap-drop", "ALL",
                           "--read-only", "--security-opt", "no-new-privileges",
                           "--security-opt", "systempaths=unconfined", "--runtime", "runc",
                           "--init", "--device", "/dev/fuse", "--device", "/dev/a:/dev/b:r",
                           "--sysctl", "net.core.somaxconn=1024", "--group-add", "audio",
                           "--dns", "1.1.1.1", "--add-host", "h:1.2.3.4", "--pid", "host",
                           "bb"])
    hc = body["HostConfig"]
    assert hc["Privileged"] and hc["ReadonlyRootfs"] and hc["Init"] is True
    assert hc["CapAdd"] == ["CAP_NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["MaskedPaths"] == [] and hc["ReadonlyPaths"] == []
    assert hc["Runtime"] == "runc" and hc["PidMode"] == "host"
    assert hc["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "r"}]
    assert hc["Sysctls"] == {"net.core.somaxconn": "1024"} and hc["GroupAdd"] == ["audio"]
    assert hc["Dns"] == ["1.1.1.1"] and hc["ExtraHosts"] == ["h:1.2.3.4"]
    body, _ = create_body(["--init=false", "bb"])
    assert body["HostConfig"]["Init"] is False
    with pytest.raises(OptionError, match="conflicting options: cannot specify both --restart and --rm"):
        create_body(["--rm", "--restart", "always", "bb"])


def test_seccomp_profile_is_inlined() -> None:
    body, _ = create_body(["--security-opt", "seccomp=prof.json", "bb"],
                          files={"prof.json": '{ "defaultAction": "SCMP_ACT_ALLOW" }'})
    assert body["HostConfig"]["SecurityOpt"] == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']


def test_volumes_and_mounts() -> None:
    body, _ = create_body(["-v", "/tmp:/data:ro", "-v", "/anon", "-v", "named:/n",
                           "--mount", "type=bind,source=/tmp,target=/m,readonly",
                           "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
                           "--tmpfs", "/run:size=64m", "--tmpfs", "/x", "bb"])
    hc = body["HostConfig"]
    assert hc["Binds"] == ["/tmp:/data:ro", "named:/n"]
    assert body["Volumes"] == {"/anon": {}}
    assert hc["Mounts"] == [{"Type": "bind", "Source": "/tmp", "Target": "/m", "ReadOnly": True},
                            {"Type": "tmpfs", "Target": "/t",
                             "TmpfsOptions": {"SizeBytes": 1024 * 1024}}]
    assert hc["Tmpfs"] == {"/run": "size=64m", "/x": ""}
    assert parse_mount("src=v,dst=/d,volume-nocopy")["VolumeOptions"] == {"NoCopy": True}


def test_ports() -> None:
    body, _ = create_body(["-p", "8080:80", "-p", "127.0.0.1:9000:9000/udp",
                           "-p", "5000-5001:6000-6001", "-p", "7000", "-P",
                           "--expose", "3000-3001", "bb"])
    assert body["ExposedPorts"] == {"80/tcp": {}, "9000/udp": {}, "6000/tcp": {},
                                    "6001/tcp": {}, "7000/tcp": {}, "3000/tcp": {},
                                    "3001/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "9000/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
        "6000/tcp": [{"HostIp": "", "HostPort": "5000"}],
        "6001/tcp": [{"HostIp": "", "HostPort": "5001"}],
        "7000/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert body["HostConfig"]["PublishAllPorts"] is True
    _, bindings = parse_ports(["[::1]:8080:80", "8000-8010:80"])
    assert bindings["80/tcp"] == [{"HostIp": "::1", "HostPort": "8080"},
                                  {"HostIp": "", "HostPort": "8000-8010"}]
    with pytest.raises(OptionError):
        parse_ports(["abc"])


def test_networks() -> None:
    body, _ = create_body(["--network", "host", "bb"])
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {}}
    body, _ = create_body(["--net", "mynet", "--network-alias", "web", "--ip", "10.0.0.2",
                           "--link", "db:db", "bb"])
    assert body["NetworkingConfig"]["EndpointsConfig"] == {"mynet": {
        "Aliases": ["web"], "Links": ["db:db"], "IPAMConfig": {"IPv4Address": "10.0.0.2"}}}
    body, _ = create_body(["--mac-address", "92:d0:c6:0a:29:33", "bb"])
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "default": {"MacAddress": "92:d0:c6:0a:29:33"}}
    with pytest.raises(OptionError, match="user-defined networks"):
        create_body(["--network", "none", "--network-alias", "x", "bb"])


def test_start_error_exit_codes() -> None:
    assert start_error_status('exec: "nope": executable file not found in $PATH') == 127
    assert start_error_status("open /x: no such file or directory") == 127
    assert start_error_status('exec: "/etc": permission denied') == 126
    assert start_error_status("Error response from daemon: something else") == 125


def test_exec_body() -> None:
    ns = _ns(EXEC, ["-i", "-t", "-e", "A=1", "-e", "HOME", "-u", "u", "-w", "/w",
                    "--privileged", "web", "ls", "-l"])
    body = exec_config(ns, {"HOME": "/root"}, ["F=1"])
    assert body == {"User": "u", "Privileged": True, "Tty": True, "AttachStdin": True,
                    "AttachStdout": True, "AttachStderr": True, "Detach": False,
                    "DetachKeys": "", "Env": ["F=1", "A=1", "HOME=/root"], "WorkingDir": "/w",
                    "Cmd": ["ls", "-l"]}
    detached = exec_config(_ns(EXEC, ["-d", "web", "sleep", "1"]), {}, [])
    assert not detached["AttachStdout"] and detached["Detach"]


def test_commit_query() -> None:
    ns = _ns(COMMIT, ["-a", "me", "-m", "msg", "-c", "ENV A=1", "--pause=false", "web",
                      "repo"])
    assert commit_query(ns) == {"container": "web", "repo": "docker.io/library/repo",
                                "tag": "latest", "comment": "msg", "author": "me",
                                "changes": ["ENV A=1"], "pause": False}
