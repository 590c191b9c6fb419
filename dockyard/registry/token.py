"""Bearer-token auth (``--auth token``): the token endpoint and the checks on every request.

The flow Docker Hub uses: a request without a token gets 401 and
``WWW-Authenticate: Bearer realm="<base>/token",service="dockyard-registry",scope="…"``; the
client fetches ``GET /token?service=…&scope=…`` (with Basic credentials, or anonymously) and
retries with ``Authorization: Bearer <jwt>``. The token is a compact JWT signed with
HMAC-SHA256 whose ``access`` claim lists what was granted::

    {"iss": …, "sub": "alice", "aud": "dockyard-registry", "iat": …, "nbf": …, "exp": …,
     "jti": …, "access": [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]}

Users in the htpasswd file get every action they ask for; anonymous callers get ``pull`` on
repositories only with ``--anonymous-pull``. Refresh tokens are not issued.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.registry.auth import Htpasswd
from dockyard.registry.httpd import Request, Response
from dockyard.registry.names import RegistryError

SERVICE = "dockyard-registry"
ISSUER = "dockyard-registry-token-server"
DEFAULT_TTL = 300
LEEWAY = 60  # seconds of clock skew tolerated on iat/nbf
SECRET_FILE = "token-secret"
GRANTABLE = {"repository": {"pull", "push", "delete", "*"}, "registry": {"*"}}


@dataclass(frozen=True)
class Access:
    """One ``type:name:actions`` scope (``repository:a/b:pull,push``, ``registry:catalog:*``)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, scope: str) -> Access | None:
        kind, _, rest = scope.partition(":")
        name, sep, actions = rest.rpartition(":")
        if not kind or not sep or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


# --- compact JWS (HS256) ------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def sign(claims: dict[str, Any], secret: bytes) -> str:
    signing_input = _b64(_json({"alg": "HS256", "typ": "JWT"})) + "." + _b64(_json(claims))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


class InvalidToken(ValueError):
    pass


def verify(token: str, secret: bytes, audience: str, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid, unexpired token for ``audience``; else InvalidToken."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    try:
        header = json.loads(_unb64(parts[0]))
        signature = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("unsupported token algorithm")
    want = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, signature):
        raise InvalidToken("invalid token signature")
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed token claims") from None
    if not isinstance(claims, dict):
        raise InvalidToken("malformed token claims")
    now = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
    if not isinstance(exp, int | float) or now >= exp:
        raise InvalidToken("token expired")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY:
        raise InvalidToken("token not yet valid")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidToken("token audience mismatch")
    return claims


def load_secret(path: Path | None, storage_root: Path) -> bytes:
    """``--token-secret FILE``'s bytes, or a random secret kept (0600) in the storage root."""
    if path is not None:
        data = Path(path).read_bytes().strip()
        if len(data) < 16:
            raise ValueError(f"token secret {path} is too short (want >= 16 bytes)")
        return data
    target = storage_root / SECRET_FILE
    if not target.exists():
        tmp = storage_root / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)  # never replaces a secret another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return target.read_bytes().strip()


# --- the server side ----------------------------------------------------------------------
def _bad_request(message: str) -> RegistryError:
    return RegistryError("UNSUPPORTED", message, status=400)


@dataclass
class TokenAuth:
    secret: bytes
    htpasswd: Htpasswd | None = None
    anonymous_pull: bool = False
    ttl: int = DEFAULT_TTL
    realm: str = ""  # absolute URL; empty: derived from the request's Host header
    tls: bool = False
    service: str = SERVICE

    # -- challenges -----------------------------------------------------------------------
    def _realm(self, req: Request) -> str:
        if self.realm:
            return self.realm
        host = req.headers.get("Host") or "127.0.0.1"
        return f"{'https' if self.tls else 'http'}://{host}/token"

    def challenge(self, req: Request, need: list[Access], error: str = "") -> str:
        value = f'Bearer realm="{self._realm(req)}",service="{self.service}"'
        if need:
            value += f',scope="{" ".join(a.scope() for a in need)}"'
        if error:
            value += f',error="{error}"'
        return value

    def _unauthorized(self, req: Request, need: list[Access], message: str,
                      error: str = "") -> RegistryError:
        return RegistryError("UNAUTHORIZED", message, [a.claim() for a in need] or None,
                             headers={"WWW-Authenticate": self.challenge(req, need, error)})

    # -- every registry request -----------------------------------------------------------
    def authorize(self, req: Request, need: list[Access]) -> None:
        """Raise 401 (with the challenge) or 403 unless the request's token covers ``need``."""
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized(req, need, "authentication required")
        try:
            claims = verify(token, self.secret, self.service)
        except InvalidToken as e:
            raise self._unauthorized(req, need, str(e), "invalid_token") from None
        if all(_covers(claims.get("access"), a) for a in need):
            return
        if claims.get("sub"):
            raise RegistryError("DENIED", "requested access to the resource is denied",
                                [a.claim() for a in need])
        raise self._unauthorized(req, need, "insufficient scope", "insufficient_scope")

    # -- GET /token -----------------------------------------------------------------------
    def issue(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", "refresh tokens are not supported; use GET",
                                status=405)
        service = req.arg("service")
        if service and service != self.service:
            raise _bad_request(f"unknown service {service!r}")
        user = self._user(req)
        granted = [g for g in (self._grant(user, s) for s in self._scopes(req)) if g]
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": self.service, "iat": now, "nbf": now,
                  "exp": now + self.ttl, "jti": secrets.token_hex(16),
                  "access": [g.claim() for g in granted]}
        token = sign(claims, self.secret)
        issued = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response.json(200, {"token": token, "access_token": token,
                                   "expires_in": self.ttl, "issued_at": issued},
                             {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _user(self, req: Request) -> str:
        header = req.headers.get("Authorization")
        if not header:
            return ""
        user = self.htpasswd.verify(header) if self.htpasswd is not None else None
        if user is None:
            raise RegistryError("UNAUTHORIZED", "incorrect username or password",
                                headers={"WWW-Authenticate": 'Basic realm="dockyard-token"'})
        return user

    @staticmethod
    def _scopes(req: Request) -> list[Access]:
        out: list[Access] = []
        for value in req.query.get("scope", []):
            for item in value.split(" "):  # several scopes may share one parameter
                if not item:
                    continue
                access = Access.parse(item)
                if access is None:
                    raise _bad_request(f"invalid scope {item!r}")
                out.append(access)
        return out

    def _grant(self, user: str, want: Access) -> Access | None:
        allowed = GRANTABLE.get(want.type, set())
        if user:
            actions = tuple(a for a in want.actions if a in allowed)
        elif self.anonymous_pull and want.type == "repository":
            actions = tuple(a for a in want.actions if a == "pull")
        else:
            actions = ()
        return Access(want.type, want.name, actions) if actions else None


def _covers(granted: Any, need: Access) -> bool:
    have: set[str] = set()
    for entry in granted if isinstance(granted, list) else []:
        if isinstance(entry, dict) and entry.get("type") == need.type \
                and entry.get("name") == need.name and isinstance(entry.get("actions"), list):
            have.update(a for a in entry["actions"] if isinstance(a, str))
    return "*" in have or all(a in have for a in need.actions)
