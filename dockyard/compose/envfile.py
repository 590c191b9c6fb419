"""``.env`` / ``env_file`` parsing and the environment a project is interpolated with."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dockyard.compose.interpolate import interpolate_string
from dockyard.errors import InvalidArgument, NotFound

_LINE = re.compile(r"^\s*(?:export\s+)?([^=\s#]+)\s*(=(.*))?$")


def parse_env_text(text: str, source: str = ".env",
                   lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """Parse dotenv text: ``KEY=VALUE``, ``export KEY=VALUE``, quotes, ``#`` comments.

    Unquoted and double-quoted values are interpolated with earlier keys and ``lookup``;
    single-quoted values are literal. A bare ``KEY`` takes its value from ``lookup`` if set.
    """
    env: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if not m:
            raise InvalidArgument(f"{source}: line {i}: unexpected character in {raw!r}")
        key, has_eq, value = m.group(1), m.group(2), m.group(3) or ""
        scope = {**(lookup or {}), **env}
        if not has_eq:
            if lookup is not None and key in lookup:
                env[key] = lookup[key]
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            body = value[1:]
            while quote not in body.replace("\\" + quote, "") and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            end = _closing_quote(body, quote)
            if end < 0:
                raise InvalidArgument(f"{source}: line {i}: unterminated quoted value")
            body = body[:end]
            if quote == '"':
                body = (body.replace("\\n", "\n").replace('\\"', '"')
                        .replace("\\\\", "\\"))
                body = interpolate_string(body, scope, f"{source}: {key}: ")
            env[key] = body
            continue
        value = re.sub(r"\s+#.*$", "", value)
        env[key] = interpolate_string(value, scope, f"{source}: {key}: ")
    return env


def _closing_quote(body: str, quote: str) -> int:
    i = 0
    while i < len(body):
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


def read_env_file(path: Path, lookup: Mapping[str, str] | None = None,
                  required: bool = True) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if not required:
            return {}
        raise NotFound(f"env file {path} not found") from None
    return parse_env_text(text, str(path), lookup)


def project_environment(project_dir: Path, os_env: Mapping[str, str],
                        env_files: tuple[Path, ...] | list[Path] = ()) -> dict[str, str]:
    """The interpolation environment: ``--env-file`` files (or the project's ``.env``) under
    the OS environment, which always wins."""
    merged: dict[str, str] = {}
    if env_files:
        for f in env_files:
            merged.update(read_env_file(f, {**os_env, **merged}))
    else:
        default = project_dir / ".env"
        if default.is_file():
            merged.update(read_env_file(default, dict(os_env)))
    merged.update(os_env)
    return merged
