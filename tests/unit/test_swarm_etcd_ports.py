"""A swarm listen address whose etcd peer port (listen port + 1) is taken gets a clear error."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.host import etcd


def test_a_busy_peer_port_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        peer = busy.getsockname()[1]
        member = etcd.Member(tmp_path, "n1", f"127.0.0.1:{peer - 1}", f"127.0.0.1:{peer}")
        with pytest.raises(errors.InvalidArgument) as refused:
            etcd.check_ports(member)
        assert f"127.0.0.1:{peer} for the swarm's etcd peer port" in str(refused.value)
        assert "--listen-addr" in str(refused.value)
