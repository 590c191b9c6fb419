"""Swarm routes on a daemon that is not in a swarm: Docker's 503 texts, and bad requests."""
from __future__ import annotations

import json

from dockyard.testing.daemon import DaemonProcess
from tests.api.test_bad_input import call, message

NOT_MANAGER = "This node is not a swarm manager. Use \"docker swarm init\""


def test_inactive_node_answers_503(daemon: DaemonProcess) -> None:
    for method, url in (("GET", "/v1.50/nodes"), ("GET", "/v1.50/services"),
                        ("GET", "/v1.50/tasks"), ("GET", "/v1.50/swarm"),
                        ("GET", "/v1.50/services/web"), ("DELETE", "/v1.50/nodes/x")):
        status, data = call(daemon, method, url)
        assert status == 503, (url, data)
        assert message(data).startswith(NOT_MANAGER)
    status, data = call(daemon, "POST", "/v1.50/swarm/leave")
    assert status == 503 and "not part of a swarm" in message(data)
    status, data = call(daemon, "GET", "/v1.50/info")
    assert json.loads(data)["Swarm"]["LocalNodeState"] == "inactive"


def test_bad_init_and_join_requests(daemon: DaemonProcess) -> None:
    status, data = call(daemon, "POST", "/v1.50/swarm/init",
                        json.dumps({"ListenAddr": "127.0.0.1:99999"}).encode())
    assert status == 400 and "bad port" in message(data)
    status, data = call(daemon, "POST", "/v1.50/swarm/join",
                        json.dumps({"RemoteAddrs": ["127.0.0.1:1"],
                                    "JoinToken": "nonsense"}).encode())
    assert status == 400 and message(data) == "invalid join token"
    status, data = call(daemon, "POST", "/v1.50/swarm/join",
                        json.dumps({"RemoteAddrs": [],
                                    "JoinToken": "SWMTKN-1-a-b"}).encode())
    assert status == 400 and "RemoteAddr" in message(data)
    status, data = call(daemon, "POST", "/v1.50/swarm/init", b"{not json")
    assert status == 400
    status, data = call(daemon, "GET", "/v1.50/info")
    assert json.loads(data)["Swarm"]["LocalNodeState"] == "inactive"
