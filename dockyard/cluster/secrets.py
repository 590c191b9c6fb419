"""Swarm secrets and configs: the manager's create/update/remove, the checks a service's
references get, and the files a task's container is given.

Both kinds are stored as ``{"Spec": SecretSpec|ConfigSpec}`` with ``Data`` base64-encoded, as
in the Engine API's JSON (the routes leave a secret's ``Data`` out of every answer). A name is
held by a ``<kind>-names/<name>`` key written in the same transaction as the object, so two
creates of one name cannot both win. Rules as swarmkit's control API: names of at most 64
``[a-zA-Z0-9-_.]`` characters starting and ending with a letter or digit, data of 1 byte to
less than 500 KiB, only ``Labels`` may change, and an object is not removed while a service
references it. The data sits in etcd unencrypted (swarmkit encrypts its Raft log).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard import errors
from dockyard.cluster.objects import SERVICES, new_id
from dockyard.cluster.store import Delete, Object, Put, Store
from dockyard.types.swarm import CONFIGS, SECRETS

MAX_SIZE = 500 * 1024
SECRET_DIR = "/run/secrets"
_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
_SINGULAR = {SECRETS: "secret", CONFIGS: "config"}
_REF_KEY = {SECRETS: "Secrets", CONFIGS: "Configs"}


def _rpc(code: str, text: str) -> str:
    return f"rpc error: code = {code} desc = {text}"


def singular(kind: str) -> str:
    if kind not in _SINGULAR:
        raise errors.InvalidArgument(f"unknown object kind {kind!r}")
    return _SINGULAR[kind]


def decode(data: Any) -> bytes:
    """``Data`` as the JSON carries it (base64, standard alphabet as Go encodes []byte)."""
    if data in (None, ""):
        return b""
    if not isinstance(data, str):
        raise errors.InvalidArgument("invalid JSON: illegal base64 data")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument("invalid JSON: illegal base64 data at input byte 0") \
            from None


def check_spec(kind: str, spec: Mapping[str, Any]) -> bytes:
    """swarmkit's validation of a SecretSpec/ConfigSpec; the decoded data."""
    what = singular(kind)
    name = str(spec.get("Name") or "")
    if not name:
        raise errors.InvalidArgument(_rpc("InvalidArgument", "name must be provided"))
    if len(name) > 64 or not _NAME.match(name):
        raise errors.InvalidArgument(_rpc(
            "InvalidArgument", "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and "
            "the start and end character must be [a-zA-Z0-9]"))
    if kind == SECRETS and spec.get("Driver"):
        raise errors.NotImplementedYet("secret drivers (plugins) are not supported")
    if (spec.get("Templating") or {}).get("Name"):
        raise errors.NotImplementedYet(f"templated {what}s are not supported")
    data = decode(spec.get("Data"))
    if not 0 < len(data) < MAX_SIZE:
        raise errors.InvalidArgument(_rpc(
            "InvalidArgument", f"{what} data must be larger than 0 and less than {MAX_SIZE} "
                               "bytes"))
    return data


def stored_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": str(spec.get("Name")),
                           "Labels": dict(spec.get("Labels") or {})}
    if spec.get("Data"):
        out["Data"] = spec["Data"]
    return out


def references(kind: str, service_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    container = (service_spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return list(container.get(_REF_KEY[kind]) or [])


def check_refs(kind: str, service_spec: Mapping[str, Any], stored: Sequence[Object]) -> None:
    """A service spec's references to ``kind``, as swarmkit checks them on create/update."""
    what = singular(kind)
    targets: dict[str, str] = {}
    by_id = {o.id: str((o.spec.get("Spec") or {}).get("Name", "")) for o in stored}
    missing = []
    for ref in references(kind, service_spec):
        ref_id = str(ref.get(f"{what.capitalize()}ID") or "")
        ref_name = str(ref.get(f"{what.capitalize()}Name") or "")
        if not ref_id or not ref_name:
            raise errors.InvalidArgument(_rpc("InvalidArgument", f"malformed {what} reference"))
        file = ref.get("File")
        if file is None and not (kind == CONFIGS and ref.get("Runtime") is not None):
            raise errors.InvalidArgument(_rpc("InvalidArgument", f"malformed {what} reference, "
                                                                 "no target provided"))
        if file is not None:
            target = str(file.get("Name") or "")
            if not target:
                raise errors.InvalidArgument(_rpc(
                    "InvalidArgument", f"malformed file {what} reference, invalid target file "
                                       "name provided"))
            if target in targets:
                raise errors.InvalidArgument(_rpc(
                    "InvalidArgument", f"{what} references '{targets[target]}' and '{ref_name}'"
                                       f" have a conflicting target: '{target}'"))
            targets[target] = ref_name
        if by_id.get(ref_id) != ref_name:
            missing.append(ref_name)
    if missing:
        plural = what + ("s" if len(missing) > 1 else "")
        raise errors.InvalidArgument(_rpc("InvalidArgument",
                                          f"{plural} not found: {', '.join(missing)}"))


@dataclass(frozen=True)
class TaskFile:
    """One secret or config file of a task's container."""
    target: str  # absolute path in the container
    data: bytes
    uid: int
    gid: int
    mode: int


def target_path(kind: str, name: str) -> str:
    if name.startswith("/"):
        return name
    return f"{SECRET_DIR}/{name}" if kind == SECRETS else f"/{name}"


def task_files(store: Store, task_spec: Mapping[str, Any]) -> tuple[TaskFile, ...]:
    """The files of a task's secrets and configs, read from the store now (as a swarm agent
    gets them when its task starts). NotFound when one was removed meanwhile."""
    container = task_spec.get("ContainerSpec") or {}
    out = []
    for kind in (SECRETS, CONFIGS):
        what = singular(kind)
        for ref in container.get(_REF_KEY[kind]) or []:
            file = ref.get("File")
            if file is None:
                continue  # a runtime config (credential spec): nothing to mount
            ref_id = str(ref.get(f"{what.capitalize()}ID") or "")
            try:
                obj = store.get(kind, ref_id)
            except errors.NotFound:
                raise errors.NotFound(f"{what} {ref.get(what.capitalize() + 'Name') or ref_id}"
                                      " not found") from None
            data = decode((obj.spec.get("Spec") or {}).get("Data"))
            mode = file.get("Mode")
            out.append(TaskFile(target_path(kind, str(file.get("Name") or "")), data,
                                _int(file.get("UID")), _int(file.get("GID")),
                                0o444 if mode is None else int(mode) & 0o7777))
    return tuple(out)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise errors.InvalidArgument(f"invalid uid/gid {value!r}") from None


class SecretViews:
    """The manager's secret and config writes (a mixin of ``NodeViews``)."""

    def _manager_store(self) -> Store:
        raise NotImplementedError

    def file_object(self, kind: str, ref: str) -> Object:
        """By full id, then exact name, then unique id prefix (moby's getSecret)."""
        what = singular(kind)
        found = self._manager_store().list(kind).objects
        for obj in found:
            if obj.id == ref:
                return obj
        named = [o for o in found if (o.spec.get("Spec") or {}).get("Name") == ref]
        matches = named or ([o for o in found if o.id.startswith(ref)] if ref else [])
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise errors.InvalidArgument(f"{what} {ref} is ambiguous ({len(matches)} matches "
                                         "found)")
        raise errors.NotFound(f"{what} {ref} not found")

    def create_file_object(self, kind: str, spec: Mapping[str, Any]) -> Object:
        check_spec(kind, spec)
        store = self._manager_store()
        name = str(spec["Name"])
        obj = Object(kind, new_id(), {"Spec": stored_spec(spec)})
        try:
            commit = store.transaction([], [Put(Object(f"{kind}-names", name, {"ID": obj.id})),
                                            Put(obj)])
        except errors.Conflict:
            raise errors.Conflict(_rpc("AlreadyExists",
                                       f"{singular(kind)} {name} already exists")) from None
        return commit.objects[1]

    def update_file_object(self, kind: str, ref: str, version: int,
                           spec: Mapping[str, Any]) -> Object:
        store = self._manager_store()
        current = self.file_object(kind, ref)
        old = current.spec.get("Spec") or {}
        if version != current.version:
            raise errors.InvalidArgument(_rpc("Unknown", "update out of sequence"))
        if spec.get("Name") != old.get("Name") or (
                spec.get("Data") and decode(spec.get("Data")) != decode(old.get("Data"))):
            raise errors.InvalidArgument(_rpc("InvalidArgument",
                                              "only updates to Labels are allowed"))
        body = {**current.spec, "Spec": {**old, "Labels": dict(spec.get("Labels") or {})}}
        try:
            return store.update(current.with_spec(body))
        except errors.Conflict:
            raise errors.InvalidArgument(_rpc("Unknown", "update out of sequence")) from None

    def remove_file_object(self, kind: str, ref: str) -> None:
        store = self._manager_store()
        current = self.file_object(kind, ref)
        what = singular(kind)
        users = []
        for svc in store.list(SERVICES).objects:
            spec = svc.spec.get("Spec") or {}
            if any(r.get(f"{what.capitalize()}ID") == current.id
                   for r in references(kind, spec)):
                users.append(str(spec.get("Name", "")))
        name = str((current.spec.get("Spec") or {}).get("Name", ""))
        if users:
            noun = "service" if len(users) == 1 else "services"
            raise errors.InvalidArgument(_rpc(
                "InvalidArgument", f"{what} '{name}' is in use by the following {noun}: "
                                   f"{', '.join(users)}"))
        store.transaction([], [Delete(kind, current.id, current.version),
                               Delete(f"{kind}-names", name)])

    def check_references(self, spec: Mapping[str, Any]) -> None:
        store = self._manager_store()
        for kind in (SECRETS, CONFIGS):
            if references(kind, spec):
                check_refs(kind, spec, store.list(kind).objects)
