"""This node's membership, kept across daemon restarts, and the swarm's join tokens.

``<data-root>/swarm/state.json`` says which swarm the node is in (its node id, role, the etcd
endpoints to reach the cluster store and, on a manager, its etcd member); written atomically
when the node inits, joins or leaves, and read at boot to rejoin. Join tokens look like
Docker's: ``SWMTKN-1-<cluster secret>-<role secret>``.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.util.atomic import write_bytes

_ALNUM = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Membership:
    node_id: str
    role: str  # "manager" | "worker"
    addr: str  # the address this node advertises (host part of --advertise-addr)
    endpoints: list[str] = field(default_factory=list)  # etcd client URLs
    member_client: str = ""  # host:port of this manager's etcd member
    member_peer: str = ""
    listen_addr: str = ""  # --listen-addr as given: where a promoted worker's member listens

    @property
    def manager(self) -> bool:
        return self.role == "manager"


def load(path: Path) -> Membership | None:
    try:
        data = json.loads(path.read_text())
        return Membership(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"swarm state {path} is unreadable: {exc}") from exc


def save(path: Path, membership: Membership) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, json.dumps(asdict(membership)).encode())


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


def _secret(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_tokens() -> dict[str, str]:
    cluster = _secret(50)
    return {"Worker": f"SWMTKN-1-{cluster}-{_secret(25)}",
            "Manager": f"SWMTKN-1-{cluster}-{_secret(25)}"}


def rotated(token: str) -> str:
    """A new token for the same role and swarm: the cluster part stays, the secret changes
    (so the old token stops admitting nodes)."""
    parts = token.split("-")
    cluster = parts[2] if len(parts) == 4 else _secret(50)
    return f"SWMTKN-1-{cluster}-{_secret(25)}"


def check_token(token: str) -> None:
    parts = token.split("-")
    if len(parts) != 4 or parts[0] != "SWMTKN" or parts[1] != "1":
        raise InvalidArgument("invalid join token")


def split_addr(addr: str, default_port: int = 2377) -> tuple[str, int]:
    """``host[:port]`` → (host, port); Docker's default port 2377."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr, default_port
    try:
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"invalid address {addr!r}: bad port") from None
    if not 0 < number < 65536:
        raise InvalidArgument(f"invalid address {addr!r}: bad port")
    return host.strip("[]"), number
