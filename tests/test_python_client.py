"""python-engineio's AsyncClient against our server, on every ASGI server we support.

Each server runs in its own process on 127.0.0.1 (uvicorn, hypercorn on asyncio and
on trio, granian); the client side is asyncio because python-engineio's client is.
What the server saw (connects, disconnect reasons) is read from the app's control
endpoint, waiting for a condition with a bound rather than sleeping.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

import engineio
import httpx
import pytest
from servers import SERVERS, running_server

PING_INTERVAL = 0.6
PING_TIMEOUT = 0.4


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Any:
    env = {"EIO_PING_INTERVAL": str(PING_INTERVAL), "EIO_PING_TIMEOUT": str(PING_TIMEOUT)}
    with running_server("apps.full_app:app", request.param, env=env) as srv:
        yield srv


def events(url: str) -> dict[str, Any]:
    return httpx.get(url + "/control/events", timeout=5).json()  # type: ignore[no-any-return]


def wait_for(url: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
    """Poll the control endpoint until ``predicate`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = events(url)
    while not predicate(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; server saw {seen}")
        time.sleep(0.02)
        seen = events(url)
    return seen


def reason_of(seen: dict[str, Any], sid: str) -> list[str]:
    return [r for s, r in seen["disconnects"] if s == sid]


class Collector:
    """A client that records messages and wakes a waiter when enough arrived."""

    def __init__(self, **client_kwargs: Any) -> None:
        self.client = engineio.AsyncClient(**client_kwargs)
        self.messages: list[Any] = []
        self.disconnected = asyncio.Event()
        self._want = 0
        self._enough = asyncio.Event()
        self.client.on("message", self._on_message)
        self.client.on("disconnect", self._on_disconnect)

    def _on_message(self, data: Any) -> None:
        self.messages.append(data)
        if len(self.messages) >= self._want:
            self._enough.set()

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def wait_messages(self, n: int, timeout: float = 10) -> list[Any]:
        self._want = n
        if len(self.messages) < n:
            self._enough.clear()
            await asyncio.wait_for(self._enough.wait(), timeout)
        return self.messages


TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_echo_text_and_binary_in_order(server: Any, mode: str) -> None:
    async def scenario() -> None:
        c = Collector()
        await c.client.connect(server.url, transports=TRANSPORTS[mode])
        expected: list[Any] = []
        for i in range(60):
            text = f"msg {i} é€𝄞"
            blob = bytes([i % 256, 0, 255, 0x1E]) * (i % 5 + 1)
            expected += [text, blob]
            await c.client.send(text)
            await c.client.send(blob)
        got = await c.wait_messages(len(expected))
        assert got == expected
        if mode == "polling":
            assert c.client.transport() == "polling"
        else:
            assert c.client.transport() == "websocket"
        sid = c.client.sid
        await c.client.disconnect()
        seen = wait_for(server.url, lambda s: reason_of(s, sid))
        assert reason_of(seen, sid) in (["client disconnect"], ["transport close"])

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_server_disconnect_reaches_client_with_reason(server: Any, mode: str) -> None:
    async def scenario() -> None:
        c = Collector()
        await c.client.connect(server.url, transports=TRANSPORTS[mode])
        if mode == "upgrade":
            await c.client.send("ping-before")
            await c.wait_messages(1)
        sid = c.client.sid
        await c.client.send("close-me")
        await asyncio.wait_for(c.disconnected.wait(), 5)
        seen = wait_for(server.url, lambda s: reason_of(s, sid))
        assert reason_of(seen, sid) == ["server disconnect"]

    asyncio.run(scenario())


def test_polling_client_disconnect_reason(server: Any) -> None:
    """A CLOSE packet posted by the client ends the session as a client disconnect.

    Raw HTTP, because python-engineio's client may exit its write loop before
    its CLOSE packet leaves (it checks its state before sending).
    """
    with httpx.Client(base_url=server.url, timeout=5) as http:
        sid = json.loads(http.get("/engine.io/?EIO=4&transport=polling").text[1:])["sid"]
        r = http.post(f"/engine.io/?EIO=4&transport=polling&sid={sid}", content=b"1")
        assert (r.status_code, r.text) == (200, "ok")
        seen = wait_for(server.url, lambda s: reason_of(s, sid))
        assert reason_of(seen, sid) == ["client disconnect"]
        r = http.get(f"/engine.io/?EIO=4&transport=polling&sid={sid}")
        assert r.status_code == 400


def test_session_and_environ_reach_handlers(server: Any) -> None:
    async def scenario() -> None:
        c = Collector()
        await c.client.connect(server.url, transports=["websocket"])
        await c.client.send("whoami")
        (reply,) = await c.wait_messages(1)
        if isinstance(reply, str):
            reply = json.loads(reply)
        assert reply["sid"] == c.client.sid
        assert reply["transport"] == "websocket"
        assert reply["remote"] == "127.0.0.1"
        assert reply["scheme"] == "http"
        await c.client.disconnect()

    asyncio.run(scenario())


def test_rejected_connect_gets_401(server: Any) -> None:
    r = httpx.get(server.url + "/engine.io/?EIO=4&transport=polling&reject=1", timeout=5)
    assert r.status_code == 401
    assert r.json() == "Unauthorized"
    r = httpx.get(server.url + "/engine.io/?EIO=4&transport=polling&refuse=1", timeout=5)
    assert r.status_code == 401
    assert r.json() == {"why": "refused by test"}

    async def client_side() -> None:
        c = Collector()
        # python-engineio's client closes its HTTP session before reading the 401 body, so
        # on servers that write the body separately (hypercorn) it fails with RuntimeError
        with pytest.raises((engineio.exceptions.ConnectionError, RuntimeError)):
            await c.client.connect(server.url + "?reject=1", transports=["polling"])

    asyncio.run(client_side())


def test_handler_error_keeps_session(server: Any) -> None:
    async def scenario() -> None:
        c = Collector()
        await c.client.connect(server.url, transports=["websocket"])
        await c.client.send("boom")
        await c.client.send("still here")
        assert await c.wait_messages(1) == ["still here"]
        await c.client.disconnect()

    asyncio.run(scenario())


def test_ping_timeout_with_subsecond_interval(server: Any) -> None:
    """A polling client that never answers pings is closed after interval + timeout."""
    with httpx.Client(base_url=server.url, timeout=5) as http:
        r = http.get("/engine.io/?EIO=4&transport=polling")
        handshake = json.loads(r.text[1:])
        assert handshake["pingInterval"] == round(PING_INTERVAL * 1000)
        assert handshake["pingTimeout"] == round(PING_TIMEOUT * 1000)
        sid = handshake["sid"]
        started = time.monotonic()
        r = http.get(f"/engine.io/?EIO=4&transport=polling&sid={sid}")
        assert r.text == "2"  # the ping, after about one interval
        assert time.monotonic() - started >= PING_INTERVAL * 0.8
        seen = wait_for(server.url, lambda s: reason_of(s, sid), timeout=PING_INTERVAL + PING_TIMEOUT + 3)
        assert reason_of(seen, sid) == ["ping timeout"]
        assert time.monotonic() - started >= PING_INTERVAL + PING_TIMEOUT * 0.8
        r = http.get(f"/engine.io/?EIO=4&transport=polling&sid={sid}")
        assert r.status_code == 400


def test_python_client_keeps_session_alive_across_pings(server: Any) -> None:
    async def scenario() -> None:
        c = Collector()
        await c.client.connect(server.url, transports=["websocket"])
        sid = c.client.sid
        await asyncio.sleep(3 * PING_INTERVAL)  # the test is about time passing: three heartbeats
        await c.client.send("after pings")
        assert await c.wait_messages(1) == ["after pings"]
        assert reason_of(events(server.url), sid) == []
        await c.client.disconnect()

    asyncio.run(scenario())


def test_disconnect_all(server: Any) -> None:
    async def scenario() -> None:
        clients = [Collector() for _ in range(3)]
        modes = ["polling", "websocket", "upgrade"]
        for c, mode in zip(clients, modes):
            await c.client.connect(server.url, transports=TRANSPORTS[mode])
        sids = [c.client.sid for c in clients]
        await clients[1].client.send("close-all")
        for c in clients:
            await asyncio.wait_for(c.disconnected.wait(), 5)
        seen = wait_for(server.url, lambda s: all(reason_of(s, sid) for sid in sids))
        for sid in sids:
            assert reason_of(seen, sid) == ["server disconnect"]

    asyncio.run(scenario())


@pytest.mark.parametrize("server_name", SERVERS)
def test_shutdown_with_live_sessions(server_name: str) -> None:
    """server.shutdown() closes every live session, each with a reason, and the clients hear it."""
    with running_server("apps.full_app:app", server_name) as srv:

        async def scenario() -> None:
            clients = [Collector() for _ in range(3)]
            for c, mode in zip(clients, ["polling", "websocket", "upgrade"]):
                await c.client.connect(srv.url, transports=TRANSPORTS[mode])
            sids = [c.client.sid for c in clients]
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(srv.url + "/control/shutdown")
                assert r.status_code == 200
            for c in clients:
                await asyncio.wait_for(c.disconnected.wait(), 5)
            seen = events(srv.url)
            for sid in sids:
                assert reason_of(seen, sid) == ["server disconnect"]
            assert seen["open"] == 0

        asyncio.run(scenario())
