"""What every command gets: the API client, the standard streams and the config dir."""
from __future__ import annotations

import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, TextIO

from dockyard.client.api import APIClient
from dockyard.client.transport import TLSOptions


@dataclass
class Context:
    host: str
    tls: TLSOptions | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    config_dir: Path | None = None
    client_factory: type[APIClient] = APIClient

    @cached_property
    def client(self) -> APIClient:
        return self.client_factory(self.host, self.tls,
                                   version=self.env.get("DOCKER_API_VERSION") or None)

    @property
    def config_path(self) -> Path:
        base = self.config_dir or Path(self.env.get("DOCKER_CONFIG") or
                                       Path.home() / ".docker")
        return base / "config.json"

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout.write(text + end)
        self.stdout.flush()

    def err(self, text: str = "", end: str = "\n") -> None:
        self.stderr.write(text + end)
        self.stderr.flush()

    @property
    def bin_stdout(self) -> BinaryIO:
        self.stdout.flush()
        return typing.cast(BinaryIO, getattr(self.stdout, "buffer", self.stdout))

    @property
    def bin_stderr(self) -> BinaryIO:
        self.stderr.flush()
        return typing.cast(BinaryIO, getattr(self.stderr, "buffer", self.stderr))

    @property
    def bin_stdin(self) -> BinaryIO:
        return typing.cast(BinaryIO, getattr(self.stdin, "buffer", self.stdin))

    def stdin_fd(self) -> int:
        try:
            return self.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return -1

    def stdout_is_tty(self) -> bool:
        try:
            return self.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    def stdin_is_tty(self) -> bool:
        try:
            return self.stdin.isatty()
        except (AttributeError, ValueError):
            return False
