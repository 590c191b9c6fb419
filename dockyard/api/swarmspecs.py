"""The bodies and query values of the swarm routes, checked and completed as moby does.

A service spec goes through what moby's ``convert.ServiceSpecToGRPC`` refuses (plain
messages) and then swarmkit's ``validateServiceSpec`` (``rpc error: code = …`` messages), and
gets the defaults a spec read back from moby shows: a random Name, ``Labels: {}``, one
replica, ``Runtime: "container"``, ``ForceUpdate: 0``, ``Isolation: "default"``.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.api.swarmfilters import mode_of
from dockyard.errors import InvalidArgument, NotImplementedYet
from dockyard.types import reference
from dockyard.types.swarm import NO_AUTOLOCK, NO_CA, InitRequest, JoinRequest

INVALID = "rpc error: code = InvalidArgument desc = "
UNIMPLEMENTED = "rpc error: code = Unimplemented desc = "
DEFAULT_LISTEN = "0.0.0.0:2377"
_DNS_NAME = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
_UINT = re.compile(r"^[0-9]+$")
_TRUE, _FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")
_MODES = ("Replicated", "Global", "ReplicatedJob", "GlobalJob")


def quote(text: str) -> str:
    """Go's ``%q`` for the strings these messages quote."""
    return json.dumps(text, ensure_ascii=False)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def body_object(value: Any, go_type: str) -> dict[str, Any]:
    """A JSON body that must be an object (an empty body is an empty object, as in moby)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON: json: cannot unmarshal {_kind(value)} into Go "
                              f"value of type {go_type}")
    return value


def _typed(value: Any, want: type, field: str, go_type: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise InvalidArgument(f"invalid JSON: json: cannot unmarshal {_kind(value)} into Go "
                              f"struct field {field} of type {go_type}")
    return value


def _obj(parent: Mapping[str, Any], key: str, field: str, go_type: str) -> dict[str, Any] | None:
    return _typed(parent.get(key), dict, f"{field}.{key}", go_type)


def version(text: str, kind: str) -> int:
    """The ``version`` query parameter (Go's ``strconv.ParseUint``)."""
    if _UINT.match(text) and int(text) < 2 ** 64:
        return int(text)
    reason = "value out of range" if _UINT.match(text) else "invalid syntax"
    raise InvalidArgument(f"invalid {kind} version '{text}': strconv.ParseUint: parsing "
                          f"{quote(text)}: {reason}")


def parse_bool(text: str, name: str) -> bool:
    """A strict boolean query parameter (Go's ``strconv.ParseBool``); absent is false."""
    if text in _TRUE:
        return True
    if text == "" or text in _FALSE:
        return False
    raise InvalidArgument(f"invalid value for {name}: {text}: strconv.ParseBool: parsing "
                          f"{quote(text)}: invalid syntax")


def bool_value(text: str) -> bool:
    """A lenient boolean query parameter (moby's ``httputils.BoolValue``)."""
    return text.strip().lower() not in ("", "0", "no", "false", "none")


def rollback(text: str) -> bool:
    if text in ("", "none"):
        return False
    if text == "previous":
        return True
    raise InvalidArgument(f"unrecognized rollback option {text}")


def init_request(value: Any) -> InitRequest:
    body = body_object(value, "swarm.InitRequest")
    return InitRequest(
        listen_addr=_typed(body.get("ListenAddr"), str, "InitRequest.ListenAddr", "string")
        or DEFAULT_LISTEN,
        advertise_addr=_typed(body.get("AdvertiseAddr"), str, "InitRequest.AdvertiseAddr",
                              "string") or "",
        force_new_cluster=bool(_typed(body.get("ForceNewCluster"), bool,
                                      "InitRequest.ForceNewCluster", "bool")),
        spec=_obj(body, "Spec", "InitRequest", "swarm.Spec"))


def join_request(value: Any) -> JoinRequest:
    body = body_object(value, "swarm.JoinRequest")
    addrs = _typed(body.get("RemoteAddrs"), list, "JoinRequest.RemoteAddrs", "[]string") or []
    for addr in addrs:
        _typed(addr, str, "JoinRequest.RemoteAddrs", "string")
    return JoinRequest(
        remote_addrs=list(addrs),
        join_token=_typed(body.get("JoinToken"), str, "JoinRequest.JoinToken", "string") or "",
        listen_addr=_typed(body.get("ListenAddr"), str, "JoinRequest.ListenAddr", "string")
        or DEFAULT_LISTEN,
        advertise_addr=_typed(body.get("AdvertiseAddr"), str, "JoinRequest.AdvertiseAddr",
                              "string") or "")


MIN_CERT_EXPIRY = 3_600_000_000_000  # swarmkit's ca.MinNodeCertExpiration: 1h


def swarm_spec(value: Any) -> dict[str, Any]:
    """A swarm.Spec for ``POST /swarm/update``, checked as swarmkit's ``validateClusterSpec``;
    what dockyard cannot do (autolock, CA changes) is refused as not implemented."""
    spec = dict(body_object(value, "swarm.Spec"))
    sections = {key: _obj(spec, key, "Spec", f"swarm.{kind}") or {} for key, kind in (
        ("Orchestration", "OrchestrationConfig"), ("Raft", "RaftConfig"),
        ("Dispatcher", "DispatcherConfig"), ("CAConfig", "CAConfig"),
        ("EncryptionConfig", "EncryptionConfig"), ("TaskDefaults", "TaskDefaults"))}
    for section, key in (("Orchestration", "TaskHistoryRetentionLimit"),
                         ("Raft", "SnapshotInterval"), ("Raft", "KeepOldSnapshots"),
                         ("Raft", "LogEntriesForSlowFollowers"), ("Raft", "ElectionTick"),
                         ("Raft", "HeartbeatTick"), ("Dispatcher", "HeartbeatPeriod"),
                         ("CAConfig", "NodeCertExpiry"), ("CAConfig", "ForceRotate")):
        given = sections[section].get(key)
        if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
            raise InvalidArgument(f"json: cannot unmarshal {_kind(given)} into Go struct field "
                                  f"Spec.{section}.{key} of type int64")
    expiry = sections["CAConfig"].get("NodeCertExpiry")
    if expiry is not None and expiry < MIN_CERT_EXPIRY:
        raise InvalidArgument(INVALID + "minimum certificate expiry time is: 1h0m0s")
    heartbeat = sections["Dispatcher"].get("HeartbeatPeriod")
    if heartbeat is not None and heartbeat < 0:
        raise InvalidArgument(INVALID + "heartbeat time period cannot be a negative duration")
    if sections["EncryptionConfig"].get("AutoLockManagers"):
        raise NotImplementedYet(NO_AUTOLOCK)
    ca = sections["CAConfig"]
    if ca.get("ExternalCAs") or ca.get("SigningCACert") or ca.get("SigningCAKey"):
        raise NotImplementedYet(NO_CA)
    return spec


def node_spec(value: Any) -> dict[str, Any]:
    """A NodeSpec with Role and Availability checked (moby's ``NodeSpecToGRPC``)."""
    spec = dict(body_object(value, "swarm.NodeSpec"))
    for key, allowed in (("Role", ("worker", "manager")),
                         ("Availability", ("active", "pause", "drain"))):
        given = _typed(spec.get(key), str, f"NodeSpec.{key}", f"swarm.Node{key}") or ""
        if given.lower() not in allowed:
            raise InvalidArgument(f"invalid {key}: {quote(given)}")
        spec[key] = given.lower()
    spec["Labels"] = _obj(spec, "Labels", "NodeSpec", "map[string]string") or {}
    return spec


def service_spec(value: Any, new_name: Callable[[], str]) -> dict[str, Any]:
    """A checked copy of a ServiceSpec with moby's defaults; ``new_name`` names it when the
    request gives no Name."""
    spec = copy.deepcopy(body_object(value, "swarm.ServiceSpec"))
    spec["Name"] = _typed(spec.get("Name"), str, "ServiceSpec.Name", "string") or new_name()
    spec["Labels"] = _obj(spec, "Labels", "ServiceSpec", "map[string]string") or {}
    task = spec["TaskTemplate"] = _obj(spec, "TaskTemplate", "ServiceSpec", "swarm.TaskSpec") or {}
    _runtime(task)
    _converted(spec, task)
    _mode(spec)
    _validated(spec, task)
    return spec


def _runtime(task: dict[str, Any]) -> None:
    runtime = _typed(task.get("Runtime"), str, "ServiceSpec.TaskTemplate.Runtime",
                     "swarm.RuntimeType") or ""
    if runtime == "plugin":
        raise NotImplementedYet("plugin services (Runtime \"plugin\") are not supported yet")
    if runtime not in ("", "container"):
        raise InvalidArgument("unsupported runtime")
    container = _obj(task, "ContainerSpec", "ServiceSpec.TaskTemplate", "swarm.ContainerSpec")
    if container is None:
        raise InvalidArgument("mismatched Runtime and *Spec fields")
    task["Runtime"] = "container"
    task.setdefault("ForceUpdate", 0)
    container.setdefault("Isolation", "default")


def _converted(spec: Mapping[str, Any], task: Mapping[str, Any]) -> None:
    """What ``ServiceSpecToGRPC`` refuses (moby answers these with plain 400s)."""
    policy = _obj(task, "RestartPolicy", "ServiceSpec.TaskTemplate", "swarm.RestartPolicy")
    condition = (policy or {}).get("Condition") or ""
    if condition not in ("", "none", "on-failure", "any"):
        raise InvalidArgument(f"invalid RestartCondition: {quote(str(condition))}")
    for key in ("UpdateConfig", "RollbackConfig"):
        config = _obj(spec, key, "ServiceSpec", "swarm.UpdateConfig") or {}
        action, order = config.get("FailureAction") or "", config.get("Order") or ""
        if action not in ("", "pause", "continue", "rollback"):
            raise InvalidArgument(f"unrecognized update failure action {action}")
        if order not in ("", "stop-first", "start-first"):
            raise InvalidArgument(f"unrecognized update order {order}")
    endpoint = _obj(spec, "EndpointSpec", "ServiceSpec", "swarm.EndpointSpec") or {}
    if (endpoint.get("Mode") or "") not in ("", "vip", "dnsrr"):
        raise InvalidArgument(f"invalid resolution mode: {quote(str(endpoint['Mode']))}")


def _mode(spec: dict[str, Any]) -> None:
    mode = spec["Mode"] = _obj(spec, "Mode", "ServiceSpec", "swarm.ServiceMode") or {}
    given = [key for key in _MODES if mode.get(key) is not None]
    if len(given) > 1:
        raise InvalidArgument("must specify only one service mode")
    if mode_of(spec).endswith("-job"):
        raise NotImplementedYet("job services (replicated-job, global-job) are not supported "
                                "yet")
    if given == ["Global"]:
        return
    replicated = _obj(mode, "Replicated", "ServiceSpec.Mode", "swarm.ReplicatedService") or {}
    replicas = replicated.get("Replicas")
    if replicas is None:
        replicas = 1
    elif isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise InvalidArgument(f"invalid JSON: json: cannot unmarshal number {replicas} into Go "
                              "struct field ReplicatedService.Mode.Replicated.Replicas of "
                              "type uint64")
    mode.clear()
    mode["Replicated"] = {**replicated, "Replicas": replicas}


def _validated(spec: Mapping[str, Any], task: Mapping[str, Any]) -> None:
    """swarmkit's checks, in its order: name, image, endpoint."""
    name = str(spec["Name"])
    if not _DNS_NAME.match(name):
        raise InvalidArgument(INVALID + "name must be valid as a DNS name component")
    if len(name) > 63:
        raise InvalidArgument(INVALID + "name must be 63 characters or fewer")
    image = _typed((task.get("ContainerSpec") or {}).get("Image"), str,
                   "ServiceSpec.TaskTemplate.ContainerSpec.Image", "string") or ""
    if not image:
        raise InvalidArgument(INVALID + "ContainerSpec: image reference must be provided")
    try:
        reference.parse(image)
    except InvalidArgument:
        raise InvalidArgument(INVALID + f"ContainerSpec: {quote(image)} is not a valid "
                              "repository/tag") from None
    _ports(spec.get("EndpointSpec") or {})


def _ports(endpoint: Mapping[str, Any]) -> None:
    seen = set()
    ports = _typed(endpoint.get("Ports"), list, "EndpointSpec.Ports", "[]swarm.PortConfig")
    for port in ports or []:
        _typed(port, dict, "EndpointSpec.Ports", "swarm.PortConfig")
        ingress = (port.get("PublishMode") or "ingress") == "ingress"
        if endpoint.get("Mode") == "dnsrr" and ingress:
            raise InvalidArgument(INVALID + "EndpointSpec: port published with ingress mode "
                                  "can't be used with dnsrr mode")
        published = (port.get("PublishedPort") or 0, port.get("Protocol") or "tcp")
        if published[0] and published in seen:
            raise InvalidArgument(INVALID + "EndpointSpec: duplicate published ports provided")
        seen.add(published)
        if not port.get("TargetPort"):
            raise InvalidArgument(INVALID + "EndpointSpec: target port must be provided")


def check_change(current: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """What swarmkit's UpdateService refuses whatever the rest of the spec says."""
    if mode_of(current) != mode_of(new):
        raise NotImplementedYet(UNIMPLEMENTED + "service mode change is not allowed")
    if current.get("Name") != new.get("Name"):
        raise NotImplementedYet(UNIMPLEMENTED + "renaming services is not supported")
