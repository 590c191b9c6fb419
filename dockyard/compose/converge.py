"""Converge: carry out a plan against the Engine API (the only way compose talks to the engine).

Order: images (pull or build) → networks → volumes → services level by level
(:func:`dependency_order`; the replicas and services of one level run in parallel threads),
each level waiting for its ``depends_on`` conditions.

Waiting (``depends_on`` conditions, ``up --wait``) polls ``GET /containers/{id}/json`` every
half second and applies Compose's rules (:func:`check_condition`): ``service_healthy`` waits for
``State.Health.Status == "healthy"`` and fails at once when the dependency is unhealthy or
exits; ``service_completed_successfully`` waits for exit code 0.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockyard.client.api import APIClient
from dockyard.client.errors import APIError
from dockyard.compose import labels as L
from dockyard.compose.model import Project, Service
from dockyard.compose.plan import Action, ServicePlan
from dockyard.compose.body import container_body, image_name
from dockyard.compose.buildreq import build_request, split_ref
from dockyard.compose.conditions import (
    COMPLETED,
    HEALTHY,
    RUNNING_OR_HEALTHY,
    ComposeError,
    WaitTimeout,
    check_condition,
    go_duration,
)
from dockyard.compose.render import dependency_order

Progress = Callable[[str, str, str], None]  # (kind, name, status) e.g. ("Container", "x", "Started")
WAIT_TIMEOUT = 300.0  # for depends_on conditions
POLL = 0.5


# -- queries -------------------------------------------------------------------------------------
def list_containers(client: APIClient, project: str, all: bool = True,
                    oneoff: bool = False) -> list[dict[str, Any]]:
    filters = L.project_filter(project, f"{L.ONEOFF}={'True' if oneoff else 'False'}")
    out: list[dict[str, Any]] = client.get("/containers/json", {"all": all, "filters": filters})
    return out


def sort_containers(cs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(c: Mapping[str, Any]) -> tuple[str, int]:
        lb = c.get("Labels") or {}
        try:
            return lb.get(L.SERVICE, ""), int(lb.get(L.NUMBER, "0"))
        except ValueError:
            return lb.get(L.SERVICE, ""), 0
    return sorted(cs, key=key)


# -- the engine side of up -----------------------------------------------------------------------
class Converger:
    def __init__(self, client: APIClient, project: Project, progress: Progress,
                 config_files: Sequence[str] = (), warn: Callable[[str], None] | None = None,
                 ) -> None:
        self.client = client
        self.project = project
        self.progress = progress
        self.config_files = tuple(config_files)
        self.warn = warn or (lambda _msg: None)
        self.wait_timeout = WAIT_TIMEOUT
        self.image_ids: dict[str, str] = {}  # image reference → its id, once looked up

    # networks / volumes
    def ensure_networks(self, services: Iterable[str]) -> None:
        used = {n for s in services for n in self.project.services[s].networks
                if not self.project.services[s].network_mode}
        for key in sorted(used):
            net = self.project.networks[key]
            if self._exists("/networks", net.name):
                continue
            if net.external:
                raise ComposeError(f"network {net.name} declared as external, but could "
                                   "not be found")
            body: dict[str, Any] = {
                "Name": net.name, "CheckDuplicate": True, "Driver": net.driver or "bridge",
                "Options": dict(net.driver_opts), "Internal": net.internal,
                "Attachable": net.attachable,
                "Labels": {**net.labels, L.PROJECT: self.project.name, L.NETWORK: key,
                           L.VERSION: L.COMPOSE_VERSION}}
            if net.enable_ipv6 is not None:
                body["EnableIPv6"] = net.enable_ipv6
            if net.ipam:
                body["IPAM"] = _ipam(net.ipam)
            self.progress("Network", net.name, "Creating")
            self.client.post("/networks/create", json_body=body)
            self.progress("Network", net.name, "Created")

    def ensure_volumes(self, services: Iterable[str]) -> None:
        used = {v.source for s in services for v in self.project.services[s].volumes
                if v.type == "volume" and v.source and v.source in self.project.volumes}
        for key in sorted(used):
            vol = self.project.volumes[key]
            if self._exists("/volumes", vol.name):
                continue
            if vol.external:
                raise ComposeError(f"external volume \"{vol.name}\" not found")
            self.progress("Volume", vol.name, "Creating")
            self.client.post("/volumes/create", json_body={
                "Name": vol.name, "Driver": vol.driver or "local",
                "DriverOpts": dict(vol.driver_opts),
                "Labels": {**vol.labels, L.PROJECT: self.project.name, L.VOLUME: key,
                           L.VERSION: L.COMPOSE_VERSION}})
            self.progress("Volume", vol.name, "Created")

    def _exists(self, kind: str, name: str) -> bool:
        try:
            self.client.get(f"{kind}/{name}/json" if kind == "/images" else f"{kind}/{name}")
            return True
        except APIError as exc:
            if exc.status == 404:
                return False
            raise

    # images
    def ensure_images(self, services: Iterable[str], build: bool = False,
                      pull_missing: bool = True, no_build: bool = False,
                      pull: str | None = None) -> None:
        """Each service's image as its ``pull_policy`` (or ``pull``, ``up --pull``) says:
        ``always`` pulls first (a failed pull of a service that can be built is a warning),
        ``never`` refuses a missing image it cannot build, ``build`` builds every time,
        ``missing`` (the default; also ``if_not_present`` and the refresh policies) pulls or
        builds what is not there. ``build`` (``up --build``) rebuilds what has a build
        section; ``no_build`` (``up --no-build``) builds nothing: a missing image that cannot
        be pulled is refused before anything is created."""
        for name in services:
            svc = self.project.services[name]
            ref = image_name(self.project, svc)
            policy = pull or svc.pull_policy or "missing"
            buildable = svc.build is not None and not no_build
            if policy == "always" and svc.image:
                try:
                    self.pull(svc)
                except (ComposeError, APIError) as exc:
                    if not buildable:
                        raise
                    self.warn(f"pull of {ref} failed ({exc}); building it")
            have = self._exists("/images", ref)
            if buildable and (build or policy == "build" or not have):
                self.build(svc)
            elif not have and no_build and (svc.build is not None and not svc.image):
                raise ComposeError(f"service \"{name}\" needs image {ref}, which is not present "
                                   f"locally and --no-build is set: No such image: {ref}")
            elif not have and policy in ("never", "build"):
                raise ComposeError(f"service \"{name}\" has pull_policy \"{policy}\" and its "
                                   f"image {ref} is not present locally: No such image: {ref}")
            elif not have and pull_missing:
                self.pull(svc)
            self.image_ids.pop(ref, None)

    def image_id(self, svc: Service) -> str | None:
        """The id (``sha256:…``) of the service's local image, for ``com.docker.compose.image``;
        None when it is not there."""
        ref = image_name(self.project, svc)
        if ref not in self.image_ids:
            try:
                self.image_ids[ref] = str(self.client.get(f"/images/{ref}/json")["Id"])
            except APIError as exc:
                if exc.status != 404:
                    raise
                return None
        return self.image_ids[ref]

    def pull(self, svc: Service) -> None:
        ref = image_name(self.project, svc)
        repo, tag = split_ref(ref)
        self.progress("Image", ref, "Pulling")
        with self.client.stream("POST", "/images/create",
                                {"fromImage": repo, "tag": tag}) as resp:
            for msg in resp.iter_json():
                if "error" in msg:
                    raise ComposeError(msg["error"])
        self.progress("Image", ref, "Pulled")

    def build(self, svc: Service) -> None:
        assert svc.build is not None
        ref = image_name(self.project, svc)
        query, data = build_request(ref, svc.build)
        self.progress("Image", ref, "Building")
        with self.client.stream("POST", "/build", query, body=data,
                                headers={"Content-Type": "application/x-tar"}) as resp:
            for msg in resp.iter_json():
                if "errorDetail" in msg or "error" in msg:
                    raise ComposeError((msg.get("errorDetail") or {}).get("message")
                                       or msg.get("error") or "build failed")
        self.progress("Image", ref, "Built")

    # containers
    def resolve(self, service_name: str) -> str:
        """The first container of a service (for links, volumes_from, network_mode)."""
        svc = self.project.services.get(service_name)
        if svc is None:
            return service_name
        if svc.container_name:
            return svc.container_name
        return f"{self.project.name}-{service_name}-1"

    def replicas(self, service_name: str) -> list[tuple[str, int]]:
        """(name, number) of each container of a service, stopped ones too (for links)."""
        out = []
        for c in self._service_containers(service_name):
            try:
                number = int((c.get("Labels") or {}).get(L.NUMBER, "0"))
            except ValueError:
                continue
            out.append((str((c.get("Names") or [c["Id"]])[0]).lstrip("/"), number))
        return sorted(out, key=lambda item: item[1])

    def apply(self, plans: Mapping[str, ServicePlan], start: bool = True,
              wait_deps: bool = True) -> None:
        for level in dependency_order(self.project):
            todo = [plans[s] for s in level if s in plans]
            if not todo:
                continue
            if wait_deps:
                for p in todo:
                    self.wait_dependencies(self.project.services[p.service], plans)
            jobs = [(p, a) for p in todo for a in p.actions]
            with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
                for fut in [pool.submit(self.apply_action, p, a, start) for p, a in jobs]:
                    fut.result()

    def apply_action(self, plan: ServicePlan, action: Action, start: bool) -> None:
        svc = self.project.services[plan.service]
        if action.kind == "create":
            self.create(svc, action.number, action.name, plan.config_hash, start)
        elif action.kind == "recreate":
            assert action.container is not None
            cid = str(action.container["Id"])
            self.progress("Container", action.name, "Recreate")
            self.client.post(f"/containers/{cid}/stop",
                             {"t": int(svc.stop_grace_period)
                              if svc.stop_grace_period is not None else None})
            self.client.delete(f"/containers/{cid}", {"force": True})
            self.create(svc, action.number, action.name, plan.config_hash, start,
                        verb="Recreated")
        elif action.kind == "start":
            if start:
                self.start(action.name, str(action.container["Id"])
                           if action.container else action.name)
        elif action.kind == "noop":
            self.progress("Container", action.name, "Running")
        elif action.kind == "remove":
            cid = str(action.container["Id"]) if action.container else action.name
            self.progress("Container", action.name, "Stopping")
            self.client.post(f"/containers/{cid}/stop")
            self.progress("Container", action.name, "Stopped")
            self.progress("Container", action.name, "Removing")
            self.client.delete(f"/containers/{cid}", {"force": True})
            self.progress("Container", action.name, "Removed")

    def create(self, svc: Service, number: int, name: str, hash_: str, start: bool,
               verb: str = "Created") -> str:
        body, extra = container_body(self.project, svc, number, hash_, self.config_files,
                                     self.resolve, self.replicas, image_id=self.image_id(svc))
        if verb == "Created":
            self.progress("Container", name, "Creating")
        created = self.client.post("/containers/create", {"name": name}, json_body=body)
        cid = str(created["Id"])
        for net, ep in extra:
            self.client.post(f"/networks/{net}/connect",
                             json_body={"Container": cid, "EndpointConfig": ep})
        self.progress("Container", name, verb)
        if start:
            self.start(name, cid)
        return cid

    def start(self, name: str, cid: str) -> None:
        self.progress("Container", name, "Starting")
        try:
            self.client.post(f"/containers/{cid}/start")
        except APIError as exc:
            if exc.status != 304:
                raise
        self.progress("Container", name, "Started")

    def wait_dependencies(self, svc: Service, plans: Mapping[str, ServicePlan] | None = None,
                          ) -> None:
        """Wait for the ``depends_on`` conditions of ``svc`` (those on services in ``plans``,
        or on every service when ``plans`` is empty), with Compose's errors."""
        deadline = time.monotonic() + self.wait_timeout
        for dep, cond in svc.depends_on.items():
            if (cond.condition not in (HEALTHY, COMPLETED) or dep not in self.project.services
                    or (plans and dep not in plans)):
                continue
            cs = self._service_containers(dep)
            if not cs:
                continue
            try:
                self.poll([(c, cond.condition) for c in cs], deadline)
            except WaitTimeout:
                raise ComposeError("timeout waiting for dependencies") from None
            except ComposeError as exc:
                if not cond.required:
                    what = "failed to start: " if cond.condition == HEALTHY else ""
                    self.warn(f"optional dependency \"{dep}\" {what}{exc}")
                    continue
                if cond.condition == HEALTHY:
                    raise ComposeError(f"dependency failed to start: {exc}") from None
                raise

    def wait_services(self, services: Iterable[str], timeout: float | None = None) -> None:
        """``up --wait``: every container running (or healthy when it has a healthcheck), or
        exited 0 for a service another one depends on with ``service_completed_successfully``."""
        completed = {d for s in self.project.services.values()
                     for d, c in s.depends_on.items() if c.condition == COMPLETED}
        wanted = set(services)
        targets = [(c, COMPLETED if svc in completed else RUNNING_OR_HEALTHY)
                   for c in list_containers(self.client, self.project.name)
                   if (svc := (c.get("Labels") or {}).get(L.SERVICE)) in wanted]
        deadline = time.monotonic() + timeout if timeout else float("inf")
        try:
            self.poll(targets, deadline)
        except WaitTimeout:
            raise ComposeError(f"application not healthy after {go_duration(timeout or 0)}"
                               ) from None

    def _service_containers(self, service: str) -> list[dict[str, Any]]:
        return [c for c in list_containers(self.client, self.project.name)
                if (c.get("Labels") or {}).get(L.SERVICE) == service]

    def poll(self, targets: Sequence[tuple[Mapping[str, Any], str]], deadline: float) -> None:
        """Inspect each container until it meets its condition (:func:`check_condition`);
        :class:`ComposeError` as soon as one never will, :class:`WaitTimeout` at ``deadline``."""
        pending = {str(c["Id"]): (_name(c), cond) for c, cond in targets}
        for name, _cond in pending.values():
            self.progress("Container", name, "Waiting")
        while pending:
            for cid, (name, cond) in list(pending.items()):
                try:
                    met = check_condition(self.client.get(f"/containers/{cid}/json"), cond)
                except ComposeError:
                    self.progress("Container", name, "Error")
                    raise
                if met:
                    self.progress("Container", name, "Exited" if cond == COMPLETED
                                  else "Healthy")
                    del pending[cid]
            if pending:
                if time.monotonic() >= deadline:
                    raise WaitTimeout()
                time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


def _name(c: Mapping[str, Any]) -> str:
    return str((c.get("Names") or [c.get("Id", "")])[0]).lstrip("/")


def _ipam(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Driver": raw.get("driver") or "default"}
    cfgs = []
    for c in raw.get("config") or []:
        cfgs.append({k2: c[k1] for k1, k2 in (("subnet", "Subnet"), ("gateway", "Gateway"),
                                               ("ip_range", "IPRange"))
                     if c.get(k1)})
    out["Config"] = cfgs
    if raw.get("options"):
        out["Options"] = raw["options"]
    return out
