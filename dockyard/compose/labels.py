"""The labels Docker Compose writes on what it creates; they are compose's only database."""
from __future__ import annotations

PREFIX = "com.docker.compose"
PROJECT = f"{PREFIX}.project"
SERVICE = f"{PREFIX}.service"
NUMBER = f"{PREFIX}.container-number"
ONEOFF = f"{PREFIX}.oneoff"
SLUG = f"{PREFIX}.slug"  # the random id of a one-off (`compose run`) container
CONFIG_HASH = f"{PREFIX}.config-hash"
WORKING_DIR = f"{PREFIX}.project.working_dir"
CONFIG_FILES = f"{PREFIX}.project.config_files"
ENVIRONMENT_FILE = f"{PREFIX}.project.environment_file"
VERSION = f"{PREFIX}.version"
NETWORK = f"{PREFIX}.network"
VOLUME = f"{PREFIX}.volume"
IMAGE = f"{PREFIX}.image"
DEPENDS_ON = f"{PREFIX}.depends_on"

# The compose version we claim to be (docker compose v2 writes its own version here).
COMPOSE_VERSION = "2.29.7"


def project_filter(project: str, *extra: str) -> dict[str, list[str]]:
    """The ``filters`` query for everything labelled with ``project``."""
    return {"label": [f"{PROJECT}={project}", *extra]}
