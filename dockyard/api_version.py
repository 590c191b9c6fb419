"""The Engine API versions dockyard serves (docker CLI 28 negotiates 1.50; docker-py 7.1 1.44)."""
API_VERSION = "1.50"
MIN_API_VERSION = "1.24"


def older_than(version: str, other: str) -> bool:
    """``version < other`` for Engine API versions (``"1.38" < "1.45"``)."""
    return tuple(int(x) for x in version.split(".")) < tuple(int(x) for x in other.split("."))
