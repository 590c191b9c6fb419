"""``docker pull``, ``docker push`` and ``docker login`` through the daemon."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.distribution.auth import Credentials, decode_registry_auth
from dockyard.distribution.pull import pull_image
from dockyard.distribution.push import push
from dockyard.distribution.registry_client import RegistryClient
from dockyard.engine.events import EventBus
from dockyard.engine.paths import Paths
from dockyard.errors import InvalidArgument, Unauthorized, Unavailable
from dockyard.image.store import ImageStore
from dockyard.types import reference

Emit = Callable[[dict[str, Any]], None]


@dataclass
class Registries:
    store: ImageStore
    events: EventBus
    paths: Paths
    insecure: tuple[str, ...] = field(default=())
    offline: bool = False  # only registries on this machine (tests: no traffic leaves it)

    def _client(self, auth_header: str) -> RegistryClient:
        return RegistryClient(decode_registry_auth(auth_header), self.insecure)

    def _check_reachable(self, domain: str, what: str = "") -> None:
        host = domain.rsplit(":", 1)[0].strip("[]") if domain.count(":") <= 1 else \
            domain.strip("[]")
        local = host == "localhost" or host.startswith("127.") or host == "::1"
        if self.offline and not local:
            raise Unavailable(f"{what or 'this registry'} is not reachable: the daemon runs "
                              "with --offline (only registries on this machine)")

    def pull(self, image: str, tag: str, auth_header: str, emit: Emit,
             platform: str = "") -> None:
        if tag and "@" not in image:
            image = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
        ref = reference.parse(image)
        self._check_reachable(ref.domain, ref.path)
        pull_image(self.store, ref, self._client(auth_header), emit, platform or "linux/amd64",
                   self.paths.tmp)
        self.events.publish("image", "pull", ref.familiar(), name=ref.familiar())

    def push(self, name: str, tag: str, auth_header: str, emit: Emit) -> None:
        ref = reference.parse(name if not tag else f"{name}:{tag}")
        self._check_reachable(ref.domain, ref.path)
        push(self.store, ref, self._client(auth_header), emit, tmp_dir=self.paths.tmp)
        self.events.publish("image", "push", ref.familiar(), name=ref.familiar())

    def login(self, body: dict[str, Any]) -> dict[str, str]:
        """``POST /auth``: check the credentials against the registry's /v2/."""
        server = str(body.get("serveraddress") or "docker.io")
        domain = server.split("://", 1)[-1].split("/", 1)[0]
        if domain in ("index.docker.io", "registry-1.docker.io"):
            domain = "docker.io"
        self._check_reachable(domain)
        creds = Credentials(username=str(body.get("username") or ""),
                            password=str(body.get("password") or ""), server_address=server)
        if not creds.username:
            raise InvalidArgument("login: username is empty")
        client = RegistryClient(creds, self.insecure)
        probe = reference.parse(f"{domain}/dockyard-login-probe/x:latest")
        repo = client.repository(probe)
        url = repo.endpoint.base + "/v2/"
        try:
            with repo.request("GET", url) as resp:
                resp.read()
                if resp.status == 401:
                    raise Unauthorized("unauthorized: incorrect username or password")
        except Unauthorized:
            # Docker's words: the token server refused the credentials, or the registry
            # itself (basic auth) still answered 401 with them
            if repo.scheme == "bearer":
                raise Unauthorized(f'Get "{url}": unauthorized: incorrect username or '
                                   "password") from None
            raise Unauthorized(f"login attempt to {url} failed with status: 401 "
                               "Unauthorized") from None
        return {"Status": "Login Succeeded", "IdentityToken": ""}
