"""Registry credentials and Docker's ``X-Registry-Auth`` header.

The header is base64url-encoded JSON ``{"username", "password", "serveraddress",
"identitytoken"}`` (padding optional; some clients send standard base64). An empty header or
``{}`` means anonymous access.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class Credentials:
    """What a client gave us to authenticate against a registry."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _b64decode(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    for altchars in (b"-_", b"+/"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    raise InvalidArgument("invalid X-Registry-Auth header: not base64")


def decode_registry_auth(header: str | None) -> Credentials | None:
    """Credentials from an ``X-Registry-Auth`` header value; None for anonymous."""
    if header is None or not header.strip():
        return None
    raw = _b64decode(header)
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("invalid X-Registry-Auth header: not JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    creds = Credentials(
        username=_text(value, "username"),
        password=_text(value, "password"),
        server_address=_text(value, "serveraddress"),
        identity_token=_text(value, "identitytoken"),
        registry_token=_text(value, "registrytoken"),
    )
    if creds == Credentials(server_address=creds.server_address):
        return None
    return creds


def encode_registry_auth(creds: Credentials) -> str:
    """The header value for ``creds`` (used by clients and tests)."""
    body = {"username": creds.username, "password": creds.password,
            "serveraddress": creds.server_address}
    if creds.identity_token:
        body["identitytoken"] = creds.identity_token
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def _text(value: dict[str, object], key: str) -> str:
    # Docker's JSON keys are matched case-insensitively by Go's decoder.
    for name, item in value.items():
        if name.lower() == key:
            if item is None:
                return ""
            if not isinstance(item, str):
                raise InvalidArgument(f"invalid X-Registry-Auth header: {key} is not a string")
            return item
    return ""
