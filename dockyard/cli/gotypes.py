"""Which Engine API fields are Go slices, maps or pointers.

``docker inspect -f`` runs templates over typed Go structs, where a null or omitted slice
prints ``[]``, a map ``map[]`` and a pointer ``<nil>``; decoded JSON only has ``None`` or a
missing key. This table (field names of the container/image/network/volume inspect types,
from the Engine API spec) lets the template engine print those the way docker does.
"""
from __future__ import annotations

SLICES = frozenset({
    "Binds", "Links", "Cmd", "Entrypoint", "Env", "Shell", "OnBuild", "Mounts", "CapAdd",
    "CapDrop", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "SecurityOpt",
    "Ulimits", "Devices", "DeviceCgroupRules", "DeviceRequests", "VolumesFrom", "MaskedPaths",
    "ReadonlyPaths", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "RepoTags", "RepoDigests", "Layers", "Args",
    "ExecIDs", "Aliases", "DNSNames", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "Test",
    "Log", "Capabilities",
})

MAPS = frozenset({
    "Labels", "Volumes", "ExposedPorts", "PortBindings", "Ports", "Networks", "StorageOpt",
    "Tmpfs", "Sysctls", "DriverOpts", "Data", "Annotations", "Attributes",
})

POINTERS = frozenset({
    "Health", "Healthcheck", "MemorySwappiness", "OomKillDisable", "PidsLimit", "Init",
    "StopTimeout", "IPAMConfig", "Metadata", "Descriptor", "Manifests",
})


def kind_of(field: str) -> str | None:
    """``slice``, ``map``, ``ptr`` or None (unknown: print Go's ``<no value>``/``<nil>``)."""
    if field in SLICES:
        return "slice"
    if field in MAPS:
        return "map"
    if field in POINTERS:
        return "ptr"
    return None
