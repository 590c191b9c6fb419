"""Identifiers and names: random 64-hex ids, Docker's container-name rules and generator."""
from __future__ import annotations

import os
import random
import re

from dockyard.errors import InvalidArgument

_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = ("admiring", "brave", "clever", "dazzling", "eager", "festive", "gallant", "happy",
         "jolly", "keen", "lucid", "modest", "nifty", "optimistic", "quirky", "serene",
         "tender", "upbeat", "vibrant", "wizardly", "zealous", "bold", "calm", "elated")
_RIGHT = ("turing", "hopper", "lovelace", "curie", "noether", "shannon", "ritchie", "thompson",
          "torvalds", "knuth", "dijkstra", "hamilton", "babbage", "kepler", "galileo", "darwin",
          "pascal", "euler", "gauss", "fermat", "tesla", "bohr", "feynman", "franklin")


def new_id() -> str:
    """A random 64-hex-digit object id (never all digits, so it never parses as a number)."""
    while True:
        value = os.urandom(32).hex()
        if not value.isdigit():
            return value


def short_id(full: str) -> str:
    body = full.split(":", 1)[1] if full.startswith("sha256:") else full
    return body[:12]


def validate_container_name(name: str) -> str:
    """Return the name without a leading slash; InvalidArgument with Docker's text if invalid."""
    if not _NAME_RE.match(name):
        raise InvalidArgument(f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name.lstrip("/")


def generate_name(taken: set[str], rng: random.Random | None = None) -> str:
    rng = rng or random.SystemRandom()
    for attempt in range(100):
        name = f"{rng.choice(_LEFT)}_{rng.choice(_RIGHT)}"
        if attempt > 5:
            name += str(rng.randint(0, 9))
        if name not in taken:
            return name
    return "c_" + new_id()[:12]
