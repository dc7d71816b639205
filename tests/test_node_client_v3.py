"""Engine.IO v3 end to end: Node's engine.io-client 3.5 against ours with ``allow_eio3=True``.

tests/node/eio3_client.js drives the official 3.x client (installed by ``npm ci`` as
``engine.io-client-v3``) against tests/apps/echo_app.py on uvicorn and on hypercorn's
trio worker (or the servers in NODE_V3_TEST_SERVERS): echo of text and binary over
polling (base64, as the client in Node has no XHR2; and XHR2 binary payloads through a
stand-in XMLHttpRequest that takes binary, as a browser's does), websocket (binary
frames, or base64 with ``forceBase64``) and the upgrade; the client's pings answered
over each transport; the server's ping timeout for a client that stops pinging; and
code 5 for a v3 client when ``allow_eio3`` is off. What the client cannot see (the
disconnect reason, what arrived) comes from the app's event log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.nodeclient import REPO_ROOT, V3_CLIENT_SCRIPT, node_available, run_node_client
from tests.servers import running_server
from tests.test_node_client import EchoServer, _check_disconnects_once

_SERVERS = os.environ.get("NODE_V3_TEST_SERVERS", "uvicorn,hypercorn-trio")
SERVER_NAMES = [s.strip() for s in _SERVERS.split(",") if s.strip()]
PING_INTERVAL = 1.0
PING_TIMEOUT = 0.5
V3_PACKAGE = os.path.join(REPO_ROOT, "node_modules", "engine.io-client-v3")

pytestmark = pytest.mark.skipif(
    not node_available() or not os.path.isdir(V3_PACKAGE),
    reason="node or node_modules (engine.io-client-v3) missing: run `npm ci`",
)

# how the client connects: its options, the transport it ends on, whether it takes binary
MODES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "polling-base64": ({"transports": "polling"}, "polling", False),
    "polling-xhr2": ({"transports": "polling", "xhr2": True}, "polling", True),
    "websocket": ({"transports": "websocket"}, "websocket", True),
    "websocket-base64": ({"transports": "websocket", "force_base64": True}, "websocket", False),
    "upgrade": ({"wait_upgrade": True, "xhr2": True}, "websocket", True),
    "upgrade-base64": ({"wait_upgrade": True, "force_base64": True}, "websocket", False),
}


def _start(server_name: str, tmp_dir: str, allow: bool) -> Any:
    event_log = os.path.join(tmp_dir, f"events-{server_name}-{allow}.jsonl")
    env = {
        "EIO_PING_INTERVAL": str(PING_INTERVAL),
        "EIO_PING_TIMEOUT": str(PING_TIMEOUT),
        "EIO_EVENT_LOG": event_log,
        "EIO_ALLOW_EIO3": "1" if allow else "0",
    }
    return running_server("apps.echo_app:app", server_name, env=env), event_log


@pytest.fixture(scope="module", params=SERVER_NAMES)
def v3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EchoServer]:
    context, event_log = _start(request.param, str(tmp_path_factory.mktemp("v3")), allow=True)
    with context as srv:
        server = EchoServer("ours", srv, srv.port, event_log)
        yield server
        _check_disconnects_once(server)


def run(server: EchoServer, scenario: str, **opts: Any) -> dict[str, Any]:
    return run_node_client(server.url, scenario, script=V3_CLIENT_SCRIPT, **opts)  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", list(MODES))
def test_echo_text_and_binary(v3_server: EchoServer, mode: str) -> None:
    opts, final, binary = MODES[mode]
    result = run(v3_server, "echo", text=5, binary=5, **opts)
    assert result["echoed"] == 10 and result["finalTransport"] == final, result
    assert result["supportsBinary"] is binary, result
    handshake = result["handshake"]
    # the v3 handshake: no maxPayload; the interval as configured
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout"}, handshake
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (1000, 500)
    if mode == "polling-xhr2":  # binary went both ways in the XHR2 binary payload
        assert result["xhr"].get("GET <- application/octet-stream", 0) >= 1, result["xhr"]
        assert result["xhr"].get("POST -> application/octet-stream", 0) >= 1, result["xhr"]
    if mode.startswith("upgrade"):
        assert result["upgraded"] and result["upgradeError"] is None, result
    connect = v3_server.wait_for_event(result["sid"], "connect")[0]
    assert "EIO=3" in connect["query"]
    assert ("b64=1" in connect["query"]) is (not binary)
    events = v3_server.wait_for_event(result["sid"], "disconnect")
    # a 3.x client closes a websocket without a close packet first
    assert [e["reason"] for e in events] == ["client disconnect" if final == "polling" else "transport close"]
    kinds = [e["kind"] for e in v3_server.events_for(result["sid"]) if e["event"] == "message"]
    assert kinds == ["text", "binary"] * 5


@pytest.mark.parametrize("mode", ["polling-base64", "websocket", "upgrade"])
def test_client_pings_are_answered(v3_server: EchoServer, mode: str) -> None:
    opts, final, _ = MODES[mode]
    result = run(v3_server, "ping", duration=3200, **opts)
    # the client pings every second and closes by itself after a ping without a pong
    assert result["pings"] >= 2 and result["pongs"] == result["pings"], result
    assert result["finalTransport"] == final and not result["errors"], result


@pytest.mark.parametrize("mode", ["polling-base64", "websocket", "upgrade"])
def test_server_times_out_a_client_that_stops_pinging(v3_server: EchoServer, mode: str) -> None:
    opts, _, _ = MODES[mode]
    result = run(v3_server, "silent", **opts)
    sid = result["sid"]
    disconnect = v3_server.wait_for_event(sid, "disconnect")
    assert [e["reason"] for e in disconnect] == ["ping timeout"], result
    connect = v3_server.wait_for_event(sid, "connect")[0]
    # not before ping_interval + ping_timeout after the open (the client never pinged)
    assert disconnect[0]["time"] - connect["time"] >= PING_INTERVAL + PING_TIMEOUT - 0.05
    assert result["closed"], result


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_without_allow_eio3_a_v3_client_gets_code_5(server_name: str, tmp_path: Any) -> None:
    context, _ = _start(server_name, str(tmp_path), allow=False)
    with context as srv:
        for transports in ("polling", "websocket"):
            result = run_node_client(
                srv.url, "handshake", script=V3_CLIENT_SCRIPT, transports=transports, check=False
            )
            assert result["ok"] and not result["opened"] and result["errors"], result
        response = httpx.get(srv.url + "/engine.io/", params={"EIO": "3", "transport": "polling"}, timeout=5)
        assert response.status_code == 400
        assert response.json() == {"code": 5, "message": "Unsupported protocol version"}
        # the v4 client still connects to the same server
        v4 = run_node_client(srv.url, "echo", transports="polling", text=1, binary=1)
        assert v4["ok"]
