"""The Socket.IO admin UI on engineio_asgi: ``sio.instrument()`` with python-socketio's admin namespace.

tests/apps/socketio_app.py runs with ``SIO_ADMIN=auth`` (credentials) or ``open``
(none) on uvicorn and granian; tests/node/sio_admin.js connects clients over
polling and websocket with socket.io-client, then connects to ``/admin`` as the
admin UI does and reports the ``config``, ``all_sockets``, ``server_stats``,
``socket_connected``/``socket_updated``/``socket_disconnected`` events it got. They
are checked against the clients it really connected.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Iterator

import pytest
from apps.socketio_app import ADMIN_AUTH, TOKEN
from nodeclient import node_available
from servers import REPO_ROOT, running_server

APP = "apps.socketio_app:app"
SCRIPT = REPO_ROOT / "tests" / "node" / "sio_admin.js"
POLLING, UPGRADED = 2, 2

pytestmark = pytest.mark.skipif(not node_available(), reason="node and npm dependencies needed (npm ci)")


@pytest.fixture(scope="module", params=[(s, a) for s in ("uvicorn", "granian") for a in ("auth", "open")])
def admin_server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    server, mode = request.param
    with running_server(APP, server, env={"SIO_ADMIN": mode}) as srv:
        yield srv, mode


def run_admin(url: str, auth: Any = None) -> dict[str, Any]:
    cmd = ["node", str(SCRIPT), url, f"--polling={POLLING}", f"--upgraded={UPGRADED}", f"--token={TOKEN}"]
    if auth is not None:
        cmd.append(f"--auth={json.dumps(auth)}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=str(REPO_ROOT))
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no report from the admin client: {proc.stderr[-2000:]}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def test_admin_namespace_reports_what_is_connected(admin_server: tuple[Any, str]) -> None:
    srv, mode = admin_server
    report = run_admin(srv.url, ADMIN_AUTH if mode == "auth" else None)
    assert report["ok"], (report.get("error") or report.get("connect_error"), srv.stderr_text()[-3000:])
    assert "ALL_EVENTS" in report["config"]["supportedFeatures"]
    clients = {c["id"]: c["transport"] for c in report["clients"]}
    assert sorted(clients.values()) == ["polling"] * POLLING + ["websocket"] * UPGRADED
    # all_sockets: every client on "/", with its transport, and the admin's own socket
    listed = {s["id"]: s for s in report["all_sockets"]}
    on_root = {sid: s["transport"] for sid, s in listed.items() if s["nsp"] == "/"}
    assert on_root == clients
    assert [s["nsp"] for s in listed.values()].count("/admin") == 1
    for s in listed.values():
        assert s["handshake"]["address"] == "127.0.0.1"
    # server_stats: every Engine.IO session, and the polling ones among them (the admin is on websocket)
    full = [s for s in report["stats"] if s["clientsCount"] == POLLING + UPGRADED + 1]
    assert full and all(s["pollingClientsCount"] == POLLING for s in full)
    sockets = {n["name"]: n["socketsCount"] for n in full[0]["namespaces"]}
    assert sockets["/"] == POLLING + UPGRADED
    events = [e for s in report["stats"] for e in s["aggregatedEvents"]]
    kinds = {e["type"] for e in events}
    assert {"packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= kinds
    after = [e for s in report["stats"][report["stats_before_echo"] :] for e in s["aggregatedEvents"]]
    assert sum(e["count"] for e in after if e["type"] == "packetsIn") >= 3 * (POLLING + UPGRADED)
    assert sum(e["count"] for e in events if e["type"] == "rawConnection") >= 1
    # the late client: connected, then seen on websocket; the first polling client left
    late = report["late"]["id"]
    assert any(s["id"] == late for s in report["connected"])
    seen_ws = [u for u in report["updated"] if u["id"] == late] or [
        s for s in report["connected"] if s["id"] == late and s["transport"] == "websocket"
    ]
    assert seen_ws
    gone = [d for d in report["disconnected"] if d[1] == report["leaving"]]
    # (python-socketio's reason: its DISCONNECT packet, or the Engine.IO close right behind it)
    assert gone and gone[0][0] == "/" and gone[0][2] in ("client namespace disconnect", "client disconnect")


def test_admin_credentials_are_checked(admin_server: tuple[Any, str]) -> None:
    srv, mode = admin_server
    wrong = run_admin(srv.url, {"username": "admin", "password": "wrong"})
    if mode == "open":  # auth=False: anyone, whatever they send
        assert wrong["ok"], wrong
        return
    assert wrong.get("connect_error") == "authentication failed"
    missing = run_admin(srv.url)
    assert missing.get("connect_error") == "authentication failed"
