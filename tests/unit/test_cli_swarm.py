"""The swarm commands of our CLI without a daemon: flags → the ServiceSpec the docker CLI sends,
the requests each command makes, and the tables/texts rendered from fixed API answers."""
from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.app import execute
from dockyard.cli.command import FlagParser, parse
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.serviceprogress import Display, wait_on_service
from dockyard.cli.services import CREATE, UPDATE
from dockyard.cli.servicelist import task_rows
from dockyard.cli.servicespec import SpecError, create_spec, with_digest, with_tag
from dockyard.cli.serviceupdate import apply_update
from dockyard.cli.swarmfmt import (TASK_FORMAT, TASK_HEADERS, natural_key,
                                   service_ports)
from dockyard.cli.swarmpretty import service_pretty
from dockyard.client.errors import APIError
from dockyard.client.swarm import SwarmAPI
from dockyard.util.timefmt import go_duration

SECOND = 1_000_000_000
DIGEST = "sha256:" + "a" * 64


class _Resp:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        pass

    def __enter__(self) -> _Resp:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class FakeAPI:
    """Answers by (method, path); an APIError answer is raised, a callable is called."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, str, dict[str, Any], Any, Any]] = []

    def call(self, method: str, path: str, query: Any = None, json_body: Any = None,
             body: Any = None, headers: Any = None) -> Any:
        self.calls.append((method, path, dict(query or {}), copy.deepcopy(json_body), headers))
        if (method, path) not in self.routes:
            raise APIError(404, f"page not found: {method} {path}")
        answer = self.routes[(method, path)]
        if callable(answer):
            answer = answer(query)
        if isinstance(answer, APIError):
            raise answer
        return copy.deepcopy(answer)

    def get(self, path: str, query: Any = None) -> Any:
        return self.call("GET", path, query)

    def post(self, path: str, query: Any = None, json_body: Any = None) -> Any:
        return self.call("POST", path, query, json_body)

    def delete(self, path: str, query: Any = None) -> Any:
        return self.call("DELETE", path, query)

    def request(self, method: str, path: str, query: Any = None, *_: Any, **__: Any) -> _Resp:
        return _Resp(json.dumps(self.call(method, path, query)).encode())

    def posted(self, path: str) -> tuple[dict[str, Any], Any]:
        found = [(q, b) for m, p, q, b, _ in self.calls if m == "POST" and p == path]
        assert found, f"no POST {path} in {self.calls}"
        return found[-1]


def cli(routes: dict[tuple[str, str], Any], *argv: str) -> tuple[int, str, str, FakeAPI]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(host="unix:///nonexistent/dockyard-test.sock", env={"HOME_VAR": "h"},
                  stdin=io.StringIO(), stdout=out, stderr=err, config_dir=Path("/nonexistent"))
    api = FakeAPI(routes)
    ctx.client = api
    code = execute(ctx, list(argv))
    return code, out.getvalue(), err.getvalue(), api


def create_ns(*argv: str) -> Any:
    parser = FlagParser("dockyard service create")
    CREATE.build(parser)
    return parse(CREATE, parser, list(argv))


def spec_of(*argv: str) -> dict[str, Any]:
    ns = create_ns(*argv)
    return create_spec(ns, ns.args[0], ns.args[1:], {"FROM_HOST": "x"}, lambda p: "")


# -- flags → ServiceSpec -------------------------------------------------------------------
def test_the_minimal_spec_is_what_docker_sends() -> None:
    assert spec_of("busybox") == {
        "Labels": {},
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Init": False, "DNSConfig": {}},
                         "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {},
                         "ForceUpdate": 0},
        "Mode": {"Replicated": {}},
        "EndpointSpec": {"Mode": "vip"}}


def test_flags_become_spec_fields_in_docker_units_and_order() -> None:
    spec = spec_of(
        "--name", "web", "--replicas", "3", "-e", "A=1", "-e", "FROM_HOST", "-e", "A=2",
        "--label", "l=1", "--container-label", "c=2", "--constraint", "node.role==manager",
        "--limit-cpu", "0.5", "--limit-memory", "64m", "--reserve-cpu", "0.25",
        "--reserve-memory", "32m", "--restart-condition", "on-failure", "--restart-delay", "2s",
        "--restart-max-attempts", "3", "--stop-grace-period", "1m30s",
        "--update-parallelism", "2", "--update-delay", "10s", "-w", "/app", "-u", "nobody",
        "--entrypoint", "sh -c", "--mount", "type=volume,source=data,target=/data",
        "-p", "8080:80", "-p", "published=53,target=53,protocol=udp", "busybox", "echo", "hi")
    assert spec == {
        "Name": "web", "Labels": {"l": "1"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "busybox", "Labels": {"c": "2"}, "Command": ["sh", "-c"],
                "Args": ["echo", "hi"], "Env": ["FROM_HOST=x", "A=2"], "Dir": "/app",
                "User": "nobody", "Init": False,
                "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}],
                "StopGracePeriod": 90 * SECOND, "DNSConfig": {}},
            "Resources": {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 67108864},
                          "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 33554432}},
            "RestartPolicy": {"Condition": "on-failure", "Delay": 2 * SECOND, "MaxAttempts": 3},
            "Placement": {"Constraints": ["node.role==manager"]},
            "ForceUpdate": 0},
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {"Parallelism": 2, "Delay": 10 * SECOND, "FailureAction": "pause",
                         "Monitor": 5 * SECOND, "MaxFailureRatio": 0, "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"}]}}
    # Go marshals struct fields in declaration order
    assert list(spec) == ["Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig",
                          "EndpointSpec"]
    assert list(spec["TaskTemplate"]["ContainerSpec"])[:5] == ["Image", "Labels", "Command",
                                                               "Args", "Env"]
    assert list(spec["UpdateConfig"]) == ["Parallelism", "Delay", "FailureAction", "Monitor",
                                          "MaxFailureRatio", "Order"]


def test_modes_and_their_refusals() -> None:
    assert spec_of("--mode", "global", "bb")["Mode"] == {"Global": {}}
    assert spec_of("--mode", "replicated-job", "--replicas", "4", "bb")["Mode"] == {
        "ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}}
    with pytest.raises(SpecError, match="replicas can only be used with replicated or "):
        spec_of("--mode", "global", "--replicas", "2", "bb")
    with pytest.raises(SpecError, match="^Unknown mode: daemon, only replicated and global"):
        spec_of("--mode", "daemon", "bb")


def test_small_spec_pieces() -> None:
    spec = spec_of("--restart-delay", "0s", "--host", "db:10.0.0.2", "--dns", "1.1.1.1",
                   "--health-cmd", "true", "--health-interval", "500ms", "--init", "-t",
                   "--replicas-max-per-node", "2", "--log-driver", "json-file",
                   "--log-opt", "max-size=1m", "bb")
    task = spec["TaskTemplate"]
    assert task["RestartPolicy"] == {"Delay": 0}  # a pointer: a given zero is sent
    assert task["ContainerSpec"]["Hosts"] == ["10.0.0.2 db"]
    assert task["ContainerSpec"]["DNSConfig"] == {"Nameservers": ["1.1.1.1"]}
    assert task["ContainerSpec"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"],
                                                    "Interval": 500_000_000}
    assert task["ContainerSpec"]["Init"] is True and task["ContainerSpec"]["TTY"] is True
    assert task["Placement"] == {"MaxReplicas": 2}
    assert task["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "1m"}}


@pytest.mark.parametrize(("image", "tagged"), [
    ("busybox", "busybox:latest"), ("docker.io/library/bb:1", "bb:1"),
    ("localhost:5000/app", "localhost:5000/app:latest"), (f"bb@{DIGEST}", f"bb@{DIGEST}"),
    ("Not/Valid", "Not/Valid")])
def test_images_get_docker_s_default_tag(image: str, tagged: str) -> None:
    assert with_tag(image) == tagged


def test_digest_pinning() -> None:
    assert with_digest("bb:latest", DIGEST) == f"bb:latest@{DIGEST}"
    assert with_digest(f"bb:1@{DIGEST}", "sha256:" + "b" * 64) == f"bb:1@{DIGEST}"


@pytest.mark.parametrize(("argv", "message"), [
    (["--limit-memory", "abc"], "invalid argument \"abc\" for \"--limit-memory\" flag: "
                                "invalid size: 'abc'"),
    (["--limit-cpu", "x"], 'invalid argument "x" for "--limit-cpu" flag: failed to parse x '
                           "as a rational number"),
    (["--replicas", "-1"], 'invalid argument "-1" for "--replicas" flag: strconv.ParseUint: '
                           'parsing "-1": invalid syntax'),
    (["--restart-delay", "2x"], 'invalid argument "2x" for "--restart-delay" flag: time: '
                                'invalid duration "2x"'),
    (["-p", "1.2.3.4:80:80"], "flag: hostip is not supported"),
    (["-p", "target=x"], "strconv.ParseUint"),
    (["--mount", "type=bind"], 'invalid argument "type=bind" for "--mount" flag: target is '
                               "required"),
])
def test_bad_flag_values_are_usage_errors(argv: list[str], message: str) -> None:
    rc, out, err, api = cli({}, "service", "create", *argv, "bb")
    assert (rc, out, api.calls) == (125, "", [])
    assert message in err


# -- service create/update/scale/rm through the client ------------------------------------
def test_create_detached_prints_the_id_and_warns_when_the_registry_is_unreachable() -> None:
    routes = {("POST", "/services/create"): {"ID": "svc1", "Warnings": None}}
    rc, out, err, api = cli(routes, "service", "create", "-d", "--name", "web", "bb", "top")
    assert (rc, out) == (0, "svc1\n")
    assert err.startswith("image bb:latest could not be accessed on a registry to record\n")
    _, body = api.posted("/services/create")
    assert body["TaskTemplate"]["ContainerSpec"]["Image"] == "bb:latest"
    assert body["TaskTemplate"]["ContainerSpec"]["Args"] == ["top"]


def test_create_pins_the_registry_digest_and_resolves_networks() -> None:
    routes = {("POST", "/services/create"): {"ID": "svc1"},
              ("GET", "/distribution/bb:latest/json"): {
                  "Descriptor": {"Digest": DIGEST},
                  "Platforms": [{"architecture": "amd64", "os": "linux"}]},
              ("GET", "/networks/front"): {"ID": "net1", "Name": "front"}}
    rc, _, err, api = cli(routes, "service", "create", "-d", "--network", "front", "bb")
    assert (rc, err) == (0, "")
    task = api.posted("/services/create")[1]["TaskTemplate"]
    assert task["ContainerSpec"]["Image"] == f"bb:latest@{DIGEST}"
    assert task["Placement"] == {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]}
    assert task["Networks"] == [{"Target": "net1"}]


def test_daemon_errors_are_reported_like_docker() -> None:
    routes = {("POST", "/services/create"): APIError(503, "This node is not a swarm manager.")}
    rc, out, err, _ = cli(routes, "service", "create", "-d", "--no-resolve-image", "bb")
    assert (rc, out, err) == (1, "", "Error response from daemon: This node is not a swarm "
                                     "manager.\n")


SERVICE = {"ID": "svcid", "Version": {"Index": 7}, "Spec": {
    "Name": "web", "Labels": {"a": "1"},
    "TaskTemplate": {"ContainerSpec": {"Image": f"bb:latest@{DIGEST}", "Env": ["A=1", "B=2"],
                                       "Init": False}, "ForceUpdate": 0},
    "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {"Mode": "vip"}}}


def test_update_merges_flags_into_the_current_spec() -> None:
    routes = {("GET", "/services/web"): SERVICE, ("POST", "/services/svcid/update"): {}}
    rc, out, err, api = cli(routes, "service", "update", "-d", "--image", "bb:2", "--replicas",
                            "3", "--env-add", "B=3", "--env-add", "C=4", "--env-rm", "A",
                            "--label-rm", "a", "--force", "--limit-memory", "1g",
                            "--no-resolve-image", "web")
    assert (rc, out, err) == (0, "web\n", "")
    query, body = api.posted("/services/svcid/update")
    assert query == {"version": 7, "registryAuthFrom": "spec", "rollback": None}
    assert body["Labels"] == {}
    assert body["Mode"] == {"Replicated": {"Replicas": 3}}
    assert body["TaskTemplate"] == {
        "ContainerSpec": {"Image": "bb:2", "Env": ["B=3", "C=4"], "Init": False},
        "ForceUpdate": 1, "Resources": {"Limits": {"MemoryBytes": 1 << 30}, "Reservations": {}}}


def update_ns(*argv: str) -> Any:
    parser = FlagParser("dockyard service update")
    UPDATE.build(parser)
    return parse(UPDATE, parser, [*argv, "web"])


def test_update_merges_lists_by_key() -> None:
    current = {"TaskTemplate": {"ContainerSpec": {"Mounts": [
        {"Type": "volume", "Source": "b", "Target": "/b"},
        {"Type": "volume", "Source": "a", "Target": "/a"}]}, "Placement": {
            "Constraints": ["z==1", "a==1"]}},
        "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80,
                                    "PublishedPort": 8080, "PublishMode": "ingress"}]}}
    spec = apply_update(current, update_ns(
        "--mount-rm", "/b", "--mount-add", "type=volume,source=c,target=/c",
        "--constraint-add", "m==1", "--constraint-rm", "z==1", "--publish-rm", "80",
        "--publish-add", "9000:90", "--restart-max-attempts", "2"), {})
    task = spec["TaskTemplate"]
    assert [m["Target"] for m in task["ContainerSpec"]["Mounts"]] == ["/a", "/c"]
    assert task["Placement"]["Constraints"] == ["a==1", "m==1"]
    assert task["RestartPolicy"] == {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 2}
    assert spec["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 90,
                                              "PublishedPort": 9000, "PublishMode": "ingress"}]


def test_rollback_is_server_side_and_alone() -> None:
    routes = {("GET", "/services/web"): SERVICE, ("POST", "/services/svcid/update"): {}}
    rc, out, _, api = cli(routes, "service", "update", "-d", "--rollback", "web")
    assert (rc, out) == (0, "web\n")
    query, body = api.posted("/services/svcid/update")
    assert query["rollback"] == "previous" and query["registryAuthFrom"] == "previous-spec"
    assert body == SERVICE["Spec"]
    rc, _, err, _ = cli(routes, "service", "update", "-d", "--rollback", "--force", "web")
    assert (rc, err) == (1, "other flags may not be combined with --rollback\n")


def test_scale_and_rm_report_each_service() -> None:
    routes = {("GET", "/services/web"): SERVICE, ("POST", "/services/svcid/update"): {},
              ("GET", "/services/nope"): APIError(404, "service nope not found"),
              ("DELETE", "/services/web"): None,
              ("DELETE", "/services/nope"): APIError(404, "service nope not found")}
    rc, out, err, api = cli(routes, "service", "scale", "-d", "web=3", "nope=2", "x=y")
    assert (rc, out) == (1, "web scaled to 3\n")
    assert err == ("nope: Error response from daemon: service nope not found\n"
                   'x: invalid replicas value y: strconv.ParseUint: parsing "y": invalid '
                   "syntax\n")
    assert api.posted("/services/svcid/update")[1]["Mode"] == {"Replicated": {"Replicas": 3}}
    rc, _, err, _ = cli(routes, "service", "scale", "web")
    assert rc == 1 and err.startswith("invalid scale specifier 'web'.\n")
    rc, out, err, _ = cli(routes, "service", "rm", "web", "nope")
    assert (rc, out, err) == (1, "web\n", "Error response from daemon: service nope not "
                                          "found\n")


# -- swarm ----------------------------------------------------------------------------------
def test_swarm_init_prints_docker_s_text() -> None:
    routes = {("POST", "/swarm/init"): "node1",
              ("GET", "/nodes/node1"): {"ID": "node1", "ManagerStatus": {
                  "Addr": "10.0.0.1:2377", "Leader": True}},
              ("GET", "/swarm"): {"JoinTokens": {"Worker": "SWMTKN-1-w", "Manager": "m"}}}
    rc, out, _, api = cli(routes, "swarm", "init", "--listen-addr", "127.0.0.1",
                          "--advertise-addr", "10.0.0.1")
    assert rc == 0
    assert out == (
        "Swarm initialized: current node (node1) is now a manager.\n\n"
        "To add a worker to this swarm, run the following command:\n\n"
        "    docker swarm join --token SWMTKN-1-w 10.0.0.1:2377\n\n"
        "To add a manager to this swarm, run 'docker swarm join-token manager' and follow "
        "the instructions.\n\n")
    body = api.posted("/swarm/init")[1]
    assert body["ListenAddr"] == "127.0.0.1:2377" and body["AdvertiseAddr"] == "10.0.0.1"
    assert body["Availability"] == "active" and body["Spec"]["Raft"] == {
        "ElectionTick": 0, "HeartbeatTick": 0}


def test_join_leave_and_join_tokens() -> None:
    routes = {("POST", "/swarm/join"): None, ("POST", "/swarm/leave"): None,
              ("GET", "/info"): {"Swarm": {"NodeID": "n2", "ControlAvailable": False}},
              ("GET", "/swarm"): {"JoinTokens": {"Worker": "SWMTKN-1-w", "Manager": "m"}},
              ("GET", "/nodes/n2"): {"ID": "n2", "ManagerStatus": {"Addr": "1.2.3.4:2377"}}}
    rc, out, _, api = cli(routes, "swarm", "join", "--token", "T", "10.0.0.1:2377")
    assert (rc, out) == (0, "This node joined a swarm as a worker.\n")
    assert api.posted("/swarm/join")[1] == {
        "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "", "DataPathAddr": "",
        "RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "T", "Availability": "active"}
    rc, out, _, api = cli(routes, "swarm", "leave", "-f")
    assert (rc, out, api.posted("/swarm/leave")[0]) == (0, "Node left the swarm.\n",
                                                        {"force": "1"})
    assert cli(routes, "swarm", "join-token", "-q", "worker")[1] == "SWMTKN-1-w\n"
    assert cli(routes, "swarm", "join-token", "manager")[1] == (
        "To add a manager to this swarm, run the following command:\n\n"
        "    docker swarm join --token m 1.2.3.4:2377\n\n")
    assert cli(routes, "swarm", "join-token", "boss")[:3] == (1, "", "unknown role boss\n")


# -- tables ---------------------------------------------------------------------------------
NODES = [
    {"ID": "n2" + "b" * 23, "Description": {"Hostname": "worker10", "Engine": {
        "EngineVersion": "28.2.2"}}, "Spec": {"Availability": "active"},
     "Status": {"State": "ready"}},
    {"ID": "n1" + "a" * 23, "Description": {"Hostname": "worker2", "Engine": {
        "EngineVersion": "28.2.2"}}, "Spec": {"Availability": "drain"},
     "Status": {"State": "down"}, "ManagerStatus": {"Leader": True, "Reachability": "reachable"}}]


def test_node_ls_marks_this_node_and_sorts_naturally() -> None:
    routes = {("GET", "/nodes"): NODES, ("GET", "/info"): {"Swarm": {"NodeID": "n1" + "a" * 23}}}
    rc, out, _, _ = cli(routes, "node", "ls")
    assert (rc, out) == (0, (
        "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   "
        "ENGINE VERSION\n"
        f"{'n1' + 'a' * 23} *   worker2    Down      Drain          Leader           28.2.2\n"
        f"{'n2' + 'b' * 23}     worker10   Ready     Active                          28.2.2\n"))
    rc, out, _, api = cli(routes, "node", "ls", "-q", "-f", "role=manager")
    assert out == f"{'n1' + 'a' * 23}\n{'n2' + 'b' * 23}\n"
    assert api.calls == [("GET", "/nodes", {"filters": {"role": {"manager": True}}}, None,
                          None)]
    assert json.loads(cli(routes, "node", "ls", "--format", "json")[1].split("\n")[0]) == {
        "Availability": "Drain", "EngineVersion": "28.2.2", "Hostname": "worker2",
        "ID": "n1" + "a" * 23, "ManagerStatus": "Leader", "Self": True, "Status": "Down",
        "TLSStatus": "Unknown"}


def _svc(name: str, mode: dict[str, Any], image: str, status: tuple[int, int],
         ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"ID": f"{name}-" + "x" * 20, "Spec": {"Name": name, "Mode": mode, "TaskTemplate": {
        "ContainerSpec": {"Image": image}}}, "Endpoint": {"Ports": ports} if ports else {},
        "ServiceStatus": {"RunningTasks": status[0], "DesiredTasks": status[1]}}


def test_service_ls_table() -> None:
    ports = [{"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"},
             {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
             {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
             {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}]
    routes = {("GET", "/services"): [
        _svc("web10", {"Global": {}}, f"nginx:1.25@{DIGEST}", (2, 2), ports),
        _svc("web2", {"Replicated": {"Replicas": 3}}, f"bb@{DIGEST}", (1, 3))]}
    rc, out, _, api = cli(routes, "service", "ls")
    assert (rc, out) == (0, (
        "ID             NAME      MODE         REPLICAS   IMAGE" + " " * 72 + "PORTS\n"
        f"web2-xxxxxxx   web2      replicated   1/3        bb@{DIGEST}   \n"
        "web10-xxxxxx   web10     global       2/2        nginx:1.25" + " " * 67
        + "*:8080-8081->80-81/tcp, *:53->53/udp\n"))
    assert api.calls[0][2] == {"filters": None, "status": "true"}
    assert service_ports([]) == "" and service_ports(ports[:1]) == "*:8081->81/tcp"


def _task(ident: str, slot: int, desired: str, state: str, created: float, stamp: float,
          err: str = "") -> dict[str, Any]:
    def ts(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime(t))
    return {"ID": ident + "0" * 20, "ServiceID": "svc", "Slot": slot, "NodeID": "n1",
            "DesiredState": desired, "CreatedAt": ts(created), "Spec": {"ContainerSpec": {
                "Image": f"bb:latest@{DIGEST}"}},
            "Status": {"State": state, "Timestamp": ts(stamp), "Err": err}}


def test_service_ps_rows() -> None:
    now = 1_800_000_000.0
    tasks = [_task("old01", 1, "shutdown", "failed", now - 100, now - 60,
                   "task: non-zero exit (1): something went wrong"),
             _task("slot10", 10, "running", "running", now - 9, now - 7200),
             _task("new01", 1, "running", "running", now - 10, now - 5)]
    rows = task_rows(tasks, {"svc": "web"}, {"n1": "host-one"}, True, True, now)
    out = render(resolve(TASK_FORMAT, TASK_FORMAT), rows, TASK_HEADERS)
    assert out.splitlines() == [
        "ID             NAME        IMAGE       NODE       DESIRED STATE   CURRENT STATE"
        "               ERROR                              PORTS",
        "new010000000   web.1       bb:latest   host-one   Running         Running 5 seconds "
        "ago" + " " * 42,
        "old010000000    \\_ web.1   bb:latest   host-one   Shutdown        Failed about a "
        'minute ago   "task: non-zero exit (1): some…"   ',
        "slot10000000   web.10      bb:latest   host-one   Running         Running 2 hours ago"
        + " " * 44]


def test_service_ps_resolves_services_and_reports_the_missing() -> None:
    routes = {("GET", "/services"): [{"ID": "svc", "Spec": {"Name": "web"}}],
              ("GET", "/tasks"): [_task("t", 2, "running", "running", 0, 0)],
              ("GET", "/nodes"): [{"ID": "n1", "Spec": {}, "Description": {"Hostname": "h1"}}]}
    rc, out, err, api = cli(routes, "service", "ps", "--format", "{{.Name}} {{.Node}}",
                            "web", "nope")
    assert (rc, out, err) == (1, "web.2 h1\n", "no such service: nope\n")
    assert ("GET", "/tasks", {"filters": {"service": {"svc": True}}}, None, None) in api.calls
    assert cli(routes, "service", "ps", "nope")[:3] == (1, "", "no such service: nope\n")


def test_service_inspect_variants() -> None:
    routes = {("GET", "/services/web"): SERVICE,
              ("GET", "/services/nope"): APIError(404, "service nope not found")}
    rc, out, err, api = cli(routes, "service", "inspect", "-f", "{{.Spec.Name}}", "web", "nope")
    assert (rc, out, err) == (1, "web\n", "Error: no such service: nope\n")
    assert api.calls[0][2] == {"insertDefaults": "true"}
    rc, out, _, _ = cli(routes, "service", "inspect", "--pretty", "web")
    assert out.startswith("\nID:\t\tsvcid\nName:\t\tweb\nLabels:\n a=1\n"
                          "Service Mode:\tReplicated\n Replicas:\t1\nPlacement:\n")
    assert out.endswith(" Env:\t\tA=1 B=2 \n Init:\t\tfalse\nEndpoint Mode:\tvip\n\n")


def test_service_pretty_configs_and_resources() -> None:
    service = {"ID": "s", "Spec": {"Name": "w", "Mode": {"Global": {}}, "UpdateConfig": {
        "Parallelism": 2, "Delay": 10 * SECOND, "FailureAction": "pause", "Monitor": 5 * SECOND,
        "MaxFailureRatio": 0, "Order": "stop-first"}, "TaskTemplate": {"Resources": {
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20}, "Reservations": {}}}}}
    text = service_pretty(service, [])
    assert "Service Mode:\tGlobal\n" in text
    assert ("UpdateConfig:\n Parallelism:\t2\n Delay:\t\t10s\n On failure:\tpause\n"
            " Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n"
            ) in text
    assert "Resources:\n Limits:\n  CPU:\t\t0.5\n  Memory:\t64MiB\n" in text


def test_node_inspect_pretty_and_update() -> None:
    node = {"ID": "n1", "Version": {"Index": 12}, "CreatedAt": "2026-01-02T03:04:05.12Z",
            "Spec": {"Labels": {"zone": "a"}, "Role": "manager", "Availability": "active"},
            "Description": {"Hostname": "host1", "Platform": {"OS": "linux",
                                                              "Architecture": "x86_64"},
                            "Resources": {"NanoCPUs": 4 * SECOND, "MemoryBytes": 1 << 30},
                            "Engine": {"EngineVersion": "28.2.2"}},
            "Status": {"State": "ready", "Addr": "10.0.0.1"}}
    routes = {("GET", "/nodes/n1"): node, ("GET", "/info"): {"Swarm": {"NodeID": "n1"}},
              ("POST", "/nodes/n1/update"): None}
    rc, out, _, _ = cli(routes, "node", "inspect", "--pretty", "self")
    assert (rc, out) == (0, (
        "ID:\t\t\tn1\nLabels:\n - zone=a\nHostname:              \thost1\n"
        "Joined at:             \t2026-01-02 03:04:05.12 +0000 utc\nStatus:\n State:\t\t\tReady\n"
        " Availability:         \tActive\n Address:\t\t10.0.0.1\nPlatform:\n"
        " Operating System:\tlinux\n Architecture:\t\tx86_64\nResources:\n CPUs:\t\t\t4\n"
        " Memory:\t\t1GiB\nEngine Version:\t\t28.2.2\n"))
    rc, out, _, api = cli(routes, "node", "update", "--availability", "drain", "--label-add",
                          "x=1", "--label-rm", "zone", "n1")
    assert (rc, out) == (0, "n1\n")
    assert api.posted("/nodes/n1/update") == ({"version": 12}, {
        "Labels": {"x": "1"}, "Role": "manager", "Availability": "drain"})
    assert cli(routes, "node", "update", "--label-rm", "nope", "n1")[2] == \
        "key nope doesn't exist in node's labels\n"


# -- waiting for convergence ---------------------------------------------------------------
def _progress_routes(states: list[str]) -> dict[tuple[str, str], Any]:
    answers = iter(states + [states[-1]] * 50)

    def tasks(_: Any) -> list[dict[str, Any]]:
        state = next(answers)
        return [{"ID": "t1", "Slot": 1, "NodeID": "n1", "DesiredState": "running",
                 "Status": {"State": state}},
                {"ID": "t2", "Slot": 2, "NodeID": "n1", "DesiredState": "running",
                 "Status": {"State": "running"}}]
    return {("GET", "/services/svc"): {"ID": "svcid", "Spec": {
        "Mode": {"Replicated": {"Replicas": 2}}, "UpdateConfig": {"Monitor": 2 * SECOND}}},
        ("GET", "/tasks"): tasks, ("GET", "/nodes"): [{"ID": "n1", "Status": {"State": "ready"}}]}


def _fake_clock() -> tuple[Callable[[], float], Callable[[float], None]]:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += 0.5
    return (lambda: now[0]), sleep


def test_wait_prints_docker_s_lines_without_a_terminal() -> None:
    api = FakeAPI(_progress_routes(["pending", "running"]))
    out = io.StringIO()
    clock, sleep = _fake_clock()
    wait_on_service(SwarmAPI(api), "svc", Display(out, False), clock, sleep)
    lines = out.getvalue().splitlines()
    assert lines[:5] == ["overall progress: 0 out of 2 tasks", "1/2:  ", "2/2:  ",
                         "overall progress: 1 out of 2 tasks",
                         "overall progress: 2 out of 2 tasks"]
    assert lines[5].startswith("verify: Waiting 3 seconds to verify that tasks are stable")
    assert lines[-1] == "verify: Service svc converged"
    assert ("GET", "/tasks", {"filters": {"service": {"svcid": True},
                                          "_up-to-date": {"true": True}}}, None, None) in api.calls


def test_wait_draws_bars_on_a_terminal() -> None:
    api = FakeAPI(_progress_routes(["preparing", "running"]))
    out = io.StringIO()
    clock, sleep = _fake_clock()
    wait_on_service(SwarmAPI(api), "svc", Display(out, True, 120), clock, sleep)
    text = out.getvalue()
    assert "\x1b[2K\r1/2: preparing [" + "=" * 33 + ">" + " " * 17 + "] \r" in text
    assert text.endswith("\x1b[2K\rverify: Service svc converged \r\x1b[1B")


def test_formatting_helpers() -> None:
    assert [go_duration(n) for n in (0, 1500, 2_500_000, 5 * SECOND, 90 * SECOND,
                                     3600 * SECOND, 1_500_000_000)] == [
        "0s", "1.5µs", "2.5ms", "5s", "1m30s", "1h0m0s", "1.5s"]
    names = ["web.10", "web.2", "web.1", "web.01", "a"]
    assert sorted(names, key=natural_key) == ["a", "web.1", "web.01", "web.2", "web.10"]
