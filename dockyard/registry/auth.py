"""Basic authentication against an htpasswd file: bcrypt (`htpasswd -B`), `{SHA}` and plain."""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path


def _bcrypt_check(password: str, hashed: str) -> bool:
    try:
        import bcrypt  # optional dependency, only needed for bcrypt entries
    except ImportError:
        return False
    try:
        return bool(bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode()))
    except ValueError:
        return False


def check_password(password: str, hashed: str) -> bool:
    if hashed.startswith(("$2y$", "$2b$", "$2a$")):
        return _bcrypt_check(password, hashed)
    if hashed.startswith("{SHA}"):
        want = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        return hmac.compare_digest(want, hashed[5:])
    if hashed.startswith("$"):
        return False  # apr1/md5-crypt and others are not supported
    return hmac.compare_digest(password, hashed)


@dataclass(frozen=True)
class Htpasswd:
    entries: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Htpasswd:
        entries: dict[str, str] = {}
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and ":" in line:
                user, hashed = line.split(":", 1)
                entries[user] = hashed
        return cls(entries)

    def verify(self, authorization: str | None) -> str | None:
        """The user name when ``authorization`` is valid Basic credentials, else None."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        hashed = self.entries.get(user)
        return user if hashed is not None and check_password(password, hashed) else None
