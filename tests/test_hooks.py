"""The server hooks named as in Node's engine.io, on real servers with real clients.

``allow_request`` refusals (plain, coroutine and raising) on polling and websocket, with
no connect handler run; ``connection_error`` for every kind of refused request with its
code and context; headers added by ``initial_headers`` on the handshake only and by
``headers`` on every response; ``upgrade`` once per upgraded session. The app
(``tests/apps/hooks_app.py``) serves the same hooks as plain functions at
``/engine.io/`` and as coroutine functions at ``/async/``; what it saw is read from its
control endpoint, waiting for a condition with a bound rather than sleeping.

The clients: python-engineio's, Node's engine.io-client, and raw httpx and websockets
for what a client library would not send.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable

import engineio
import httpx
import pytest
import websockets
from servers import SERVERS, running_server
from websockets.exceptions import InvalidStatus

from tests.nodeclient import node_available, run_node_client

PATHS = {"sync": "/engine.io/", "async": "/async/"}
# granian drops the headers of websocket.accept (see docs/servers): the hooks run, the
# client never sees what they add
WS_HEADERS_DROPPED = {"granian"}


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Any:
    with running_server("apps.hooks_app:app", request.param) as srv:
        yield srv


@pytest.fixture(params=list(PATHS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def seen(server: Any, kind: str) -> dict[str, Any]:
    return httpx.get(server.url + "/control/events", timeout=5).json()[kind]  # type: ignore[no-any-return]


def wait_for(server: Any, kind: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 5.0) -> Any:
    """Read the control endpoint until ``predicate`` returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        state = seen(server, kind)
        found = predicate(state)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; the server saw {state}")
        time.sleep(0.02)


def errors_for(tag: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda state: [e for e in state["errors"] if f"tag={tag}" in e["query"]]


def tagged(extra: str = "") -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    return tag, f"tag={tag}{extra}"


# --- allow_request ------------------------------------------------------------------------


@pytest.mark.parametrize("deny", ["1", "raise"])
def test_allow_request_refuses_a_polling_handshake(server: Any, kind: str, deny: str) -> None:
    before = len(seen(server, kind)["connects"])
    tag, query = tagged(f"&deny={deny}")
    url = f"{server.url}{PATHS[kind]}?EIO=4&transport=polling&{query}"
    r = httpx.get(url, headers={"Origin": "https://good.example"}, timeout=5)
    message = "no entry" if deny == "raise" else "Forbidden"
    assert r.status_code == 403
    assert r.json() == {"code": 4, "message": message}
    assert r.headers["access-control-allow-origin"] == "https://good.example"  # the core's CORS rules
    (error,) = wait_for(server, kind, errors_for(tag))
    assert error["code"] == 4 and error["message"] == "Forbidden" and error["remote"] == "127.0.0.1"
    assert error["context"] == ({"message": "no entry"} if deny == "raise" else {})
    state = seen(server, kind)
    assert len(state["connects"]) == before  # no session, no connect handler
    assert any(f"tag={tag}" in q for _, q in state["asked"])


@pytest.mark.parametrize("deny", ["1", "raise"])
def test_allow_request_refuses_a_websocket_handshake(server: Any, kind: str, deny: str) -> None:
    before = len(seen(server, kind)["connects"])
    tag, query = tagged(f"&deny={deny}")

    async def scenario() -> None:
        url = f"{server.ws_url}{PATHS[kind]}?EIO=4&transport=websocket&{query}"
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(url, open_timeout=5):
                pass
        assert info.value.response.status_code == 403

    asyncio.run(scenario())
    (error,) = wait_for(server, kind, errors_for(tag))
    assert error["code"] == 4
    assert len(seen(server, kind)["connects"]) == before


def test_python_client_is_refused_and_no_connect_handler_runs(server: Any, kind: str) -> None:
    before = len(seen(server, kind)["connects"])
    tag, query = tagged("&deny=raise")

    async def scenario(transports: list[str]) -> None:
        client = engineio.AsyncClient()
        # python-engineio's client closes its HTTP session before it reads the refusal's body:
        # where the body comes in a write of its own (hypercorn), that read fails with RuntimeError
        with pytest.raises((engineio.exceptions.ConnectionError, RuntimeError)):
            await client.connect(f"{server.url}?{query}", transports=transports, engineio_path=PATHS[kind])

    asyncio.run(scenario(["polling"]))
    asyncio.run(scenario(["websocket"]))
    errors = wait_for(server, kind, lambda s: len(errors_for(tag)(s)) == 2 and errors_for(tag)(s))
    assert [e["code"] for e in errors] == [4, 4]
    assert len(seen(server, kind)["connects"]) == before


def test_refused_upgrade_keeps_the_session_on_polling(server: Any, kind: str) -> None:
    tag, query = tagged("&deny_upgrade=1")

    async def scenario() -> str:
        client = engineio.AsyncClient()
        got: asyncio.Queue[Any] = asyncio.Queue()
        client.on("message", got.put_nowait)
        await client.connect(f"{server.url}?{query}", engineio_path=PATHS[kind])
        sid = client.sid
        wait_for(server, kind, errors_for(tag))  # the upgrade was tried, and refused
        await client.send("still here")
        assert await asyncio.wait_for(got.get(), 5) == "still here"
        assert client.transport() == "polling"
        await client.disconnect()
        return sid  # type: ignore[no-any-return]

    sid = asyncio.run(scenario())
    (error,) = errors_for(tag)(seen(server, kind))
    assert error["code"] == 4 and f"sid={sid}" in error["query"]
    state = seen(server, kind)
    assert sid in state["connects"]
    assert not [u for u in state["upgrades"] if u[0] == sid]


def test_allow_request_is_asked_about_handshakes_and_upgrades_only(server: Any, kind: str) -> None:
    tag, query = tagged()

    async def scenario(transports: list[str]) -> str:
        client = engineio.AsyncClient()
        got: asyncio.Queue[Any] = asyncio.Queue()
        client.on("message", got.put_nowait)
        await client.connect(f"{server.url}?{query}", transports=transports, engineio_path=PATHS[kind])
        for i in range(3):
            await client.send(f"m{i}")
            assert await asyncio.wait_for(got.get(), 5) == f"m{i}"
        sid = client.sid
        await client.disconnect()
        return sid  # type: ignore[no-any-return]

    polling_sid = asyncio.run(scenario(["polling"]))
    upgraded_sid = asyncio.run(scenario(["polling", "websocket"]))
    asked = [q for _, q in seen(server, kind)["asked"] if f"tag={tag}" in q]
    handshakes = [q for q in asked if "sid=" not in q]
    upgrades = [q for q in asked if "sid=" in q]
    assert len(handshakes) == 2 and all("transport=polling" in q for q in handshakes)
    assert (
        len(upgrades) == 1 and f"sid={upgraded_sid}" in upgrades[0] and "transport=websocket" in upgrades[0]
    )
    assert not any(f"sid={polling_sid}" in q for q in asked)


# --- connection_error ------------------------------------------------------------------------


def test_connection_error_for_every_kind_of_refusal(server: Any, kind: str) -> None:
    base = f"{server.url}{PATHS[kind]}"
    tag, query = tagged()
    expected: list[tuple[int, int, dict[str, Any]]] = []  # (status, code, context)
    with httpx.Client(timeout=5) as c:

        def refused(
            method: str, params: str, status: int, code: int, context: dict[str, Any], **kw: Any
        ) -> None:
            r = c.request(method, f"{base}?{params}&{query}", **kw)
            assert r.status_code == status, r.text
            assert r.json()["code"] == code
            expected.append((status, code, context))

        refused("GET", "EIO=9&transport=polling", 400, 5, {"protocol": "9"})
        refused("GET", "EIO=4&transport=polling&sid=gone", 400, 1, {"sid": "gone"})
        refused("GET", "EIO=4&transport=carrier-pigeon", 400, 0, {"transport": "carrier-pigeon"})
        refused("POST", "EIO=4&transport=polling", 400, 2, {"method": "POST"}, content=b"1:4")
        origin = "https://evil.example"
        refused(
            "GET",
            "EIO=4&transport=polling",
            403,
            4,
            {"name": "ORIGIN_NOT_ALLOWED", "origin": origin, "message": f"origin {origin!r} not allowed"},
            headers={"Origin": origin},
        )
        refused("GET", "EIO=4&transport=polling&deny=raise", 403, 4, {"message": "no entry"})
        hs = c.get(f"{base}?EIO=4&transport=polling&{query}")
        sid = hs.text.split('"sid":"')[1].split('"')[0]
        refused(
            "POST",
            f"EIO=4&transport=polling&sid={sid}",
            413,
            3,
            {"name": "PAYLOAD_TOO_LARGE", "message": "Payload too large"},
            content=b"4" + b"x" * 5000,
        )
    errors = wait_for(server, kind, lambda s: len(errors_for(tag)(s)) == len(expected) and errors_for(tag)(s))
    assert [(e["code"], e["context"]) for e in errors] == [(code, ctx) for _, code, ctx in expected]
    messages = {0: "Transport unknown", 1: "Session ID unknown", 2: "Bad handshake method", 3: "Bad request"}
    messages |= {4: "Forbidden", 5: "Unsupported protocol version"}
    assert all(e["message"] == messages[e["code"]] for e in errors)
    assert all(e["remote"] == "127.0.0.1" for e in errors)


# --- initial_headers and headers ------------------------------------------------------------


def test_initial_headers_on_the_handshake_only_headers_on_every_response(server: Any, kind: str) -> None:
    base = f"{server.url}{PATHS[kind]}?EIO=4&transport=polling"
    with httpx.Client(timeout=5) as c:
        hs = c.get(base)
        assert hs.status_code == 200
        assert hs.headers["x-initial"] == "yes" and hs.headers["x-every"] == "GET"
        assert hs.headers.get_list("set-cookie") == ["a=1", "b=2"]
        sid = hs.text.split('"sid":"')[1].split('"')[0]
        post = c.post(f"{base}&sid={sid}", content=b"4hello")
        poll = c.get(f"{base}&sid={sid}")
        assert (post.status_code, post.text, poll.status_code, poll.text) == (200, "ok", 200, "4hello")
        for r, method in ((post, "POST"), (poll, "GET")):
            assert r.headers["x-every"] == method
            assert "x-initial" not in r.headers
        preflight = c.options(base, headers={"Origin": "https://good.example"})
        assert preflight.status_code == 204 and preflight.headers["x-every"] == "OPTIONS"
        assert "x-initial" not in preflight.headers
        refused = c.get(f"{base}&sid=gone")
        assert refused.status_code == 400
        assert "x-every" not in refused.headers and "x-initial" not in refused.headers


def test_headers_reach_websocket_handshakes(server: Any, kind: str) -> None:
    path = PATHS[kind]

    async def scenario() -> None:
        async with websockets.connect(
            f"{server.ws_url}{path}?EIO=4&transport=websocket", open_timeout=5
        ) as ws:
            assert (await asyncio.wait_for(ws.recv(), 5)).startswith("0{")
            headers = ws.response.headers
            if server.name in WS_HEADERS_DROPPED:
                assert "x-every" not in headers
                return
            assert headers["x-initial"] == "yes" and headers["x-every"] == "GET"
            assert headers.get_all("set-cookie") == ["a=1", "b=2"]
        async with httpx.AsyncClient(timeout=5) as c:
            hs = await c.get(f"{server.url}{path}?EIO=4&transport=polling")
            sid = hs.text.split('"sid":"')[1].split('"')[0]
        url = f"{server.ws_url}{path}?EIO=4&transport=websocket&sid={sid}"
        async with websockets.connect(url, open_timeout=5) as probe:
            assert probe.response.headers["x-every"] == "GET"
            assert "x-initial" not in probe.response.headers  # an upgrade, not a handshake

    asyncio.run(scenario())


# --- upgrade ------------------------------------------------------------------------------------


def test_upgrade_event_once_per_upgraded_session(server: Any, kind: str) -> None:
    async def scenario(transports: list[str]) -> str:
        client = engineio.AsyncClient()
        got: asyncio.Queue[Any] = asyncio.Queue()
        client.on("message", got.put_nowait)
        await client.connect(server.url, transports=transports, engineio_path=PATHS[kind])
        await client.send("hi")
        assert await asyncio.wait_for(got.get(), 5) == "hi"
        sid = client.sid
        if transports == ["polling", "websocket"]:
            wait_for(server, kind, lambda s: [u for u in s["upgrades"] if u[0] == sid])
            assert client.transport() == "websocket"
        await client.disconnect()
        return sid  # type: ignore[no-any-return]

    upgraded = asyncio.run(scenario(["polling", "websocket"]))
    polling = asyncio.run(scenario(["polling"]))
    websocket = asyncio.run(scenario(["websocket"]))
    upgrades = seen(server, kind)["upgrades"]
    assert [u for u in upgrades if u[0] == upgraded] == [[upgraded, "websocket"]]
    assert not [u for u in upgrades if u[0] in (polling, websocket)]


@pytest.mark.skipif(
    not node_available(), reason="node or node_modules missing (run `npm ci` at the repo root)"
)
def test_upgrade_event_for_nodes_client(server: Any) -> None:
    result = run_node_client(server.url, "echo", text=2, binary=2, size=16, wait_upgrade=True)
    assert result["ok"] and result["upgraded"], result
    sid = result["sid"]
    found = wait_for(server, "sync", lambda s: [u for u in s["upgrades"] if u[0] == sid])
    assert found == [[sid, "websocket"]]
