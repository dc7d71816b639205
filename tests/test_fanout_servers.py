"""python-socketio broadcasts through real servers while one client stops reading.

granian's websocket ``send()`` returns a future that completes once granian has
written the frame; engineio_asgi goes on with each recipient's write from that
future's callback, with no task per recipient (``engineio_asgi._writes``). Here a
client stops reading until its socket buffers are full and its messages wait in
its session's queue: the others must still get every message, in order, without a
task per delivery; when it reads again it gets every message in order; when it
drops its connection instead, only its session ends; and the server stops cleanly
while its write is still out. Raw websocket clients (``websockets``) on
127.0.0.1; the app is ``tests/apps/fanout_app.py``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from typing import Any, Iterator
from urllib.parse import urlparse

import httpx
import pytest
import websockets
from servers import running_server

APP = "apps.fanout_app:app"
SIZE = 64 * 1024  # bytes of text per message
ROUND = 20  # emits per round
MAX_ROUNDS = 40  # bound on the rounds it takes the slow client's socket buffers to fill

# (uvicorn's send() does not wait for the socket: its transport buffers whatever is sent)
pytestmark = pytest.mark.parametrize("server", ["granian"])


@pytest.fixture
def srv(server: str) -> Iterator[Any]:
    with running_server(APP, server) as running:
        yield running


class Client:
    """A Socket.IO client on a raw websocket that records the ``news`` it reads."""

    def __init__(self, ws: Any, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self.news: list[int] = []
        self.got = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, read: bool = True, **kwargs: Any) -> Client:
        ws = await websockets.connect(url, max_size=None, **kwargs)
        assert (await ws.recv()).startswith("0{")  # Engine.IO OPEN
        await ws.send("40")
        connected = await ws.recv()
        assert connected.startswith("40{"), connected
        client = cls(ws, json.loads(connected[2:])["sid"])
        if read:
            client.start_reading()
        return client

    def start_reading(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame == "2":
                await self.ws.send("3")
            elif isinstance(frame, str) and frame.startswith('42["news",'):
                n, text = json.loads(frame[2:])[1]
                assert len(text) == SIZE
                self.news.append(n)
                self.got.set()

    async def until(self, count: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while len(self.news) < count:
                self.got.clear()
                await self.got.wait()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.ws.close()


async def slow_client(url: str) -> Client:
    """A client whose socket takes little and which reads nothing after the handshake."""
    parts = urlparse(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    # max_queue=1: websockets stops reading the socket once one frame waits unread
    return await Client.connect(url, read=False, sock=sock, max_queue=1)


def fanout(n: int) -> str:
    """The event that makes the server emit ``news`` number ``n`` to every client."""
    return '42["fanout",' + json.dumps({"n": n, "size": SIZE}) + "]"


async def state(http: httpx.AsyncClient, base: str) -> dict[str, Any]:
    return (await http.get(base + "/control/state")).json()  # type: ignore[no-any-return]


async def back_up(http: httpx.AsyncClient, base: str, fast: list[Client], sender: Client, n: int = 0) -> int:
    """Emit rounds (numbered from ``n``) until the slow client's messages wait in its
    session's queue; returns the number of the next emit.

    Each round ends when every fast client has all of it: a client that stops
    reading holds up no other.
    """
    for _ in range(MAX_ROUNDS):
        for _ in range(ROUND):
            await sender.ws.send(fanout(n))
            n += 1
        for c in fast:
            await c.until(n)
        if (await state(http, base))["queued_bytes"] > 0:
            return n
    raise AssertionError(f"the slow client's messages never waited in its queue after {n} emits")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_that_stops_reading_holds_up_no_other_and_loses_nothing(srv: Any) -> None:
    url = srv.ws_url + "/socket.io/?EIO=4&transport=websocket"
    async with httpx.AsyncClient(timeout=10) as http:
        fast = [await Client.connect(url) for _ in range(6)]
        slow = await slow_client(url)
        before = await state(http, srv.url)
        n = await back_up(http, srv.url, fast, fast[0])
        # one more round while the slow client's backlog waits: the others get it all, in order
        for _ in range(ROUND):
            await fast[0].ws.send(fanout(n))
            n += 1
        for c in fast:
            await c.until(n)
            assert c.news == list(range(n))
        after = await state(http, srv.url)
        assert after["queued_bytes"] > 0 and after["emits_running"] >= 1, after
        # a task per emit (python-socketio's handler's), one per control request (one
        # per round, and this one), and none per delivery: n emits reached 7 clients each
        tasks = after["tasks"] - before["tasks"]
        assert tasks <= n + n // ROUND + 2, f"{tasks} tasks for {n} emits, {7 * n} deliveries"
        # the slow client reads again: every message, in order, and every emit returns
        slow.start_reading()
        await slow.until(n, timeout=60)
        assert slow.news == list(range(n))
        deadline = time.monotonic() + 10
        while (await state(http, srv.url))["emits_running"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (await state(http, srv.url))["emits_running"] == 0
        for c in [*fast, slow]:
            await c.close()
    assert "Traceback" not in srv.stderr_text()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_gone_mid_broadcast_ends_only_its_session_and_the_server_stops_cleanly(
    srv: Any,
) -> None:
    url = srv.ws_url + "/socket.io/?EIO=4&transport=websocket"
    async with httpx.AsyncClient(timeout=10) as http:
        fast = [await Client.connect(url) for _ in range(4)]
        gone = await slow_client(url)
        n = await back_up(http, srv.url, fast, fast[0])
        gone.ws.transport.abort()  # its connection drops with its write out and its queue full
        deadline = time.monotonic() + 15
        seen = await state(http, srv.url)
        while (seen["emits_running"] or not seen["disconnects"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            seen = await state(http, srv.url)
        assert [sid for sid, _ in seen["disconnects"]] == [gone.sid], seen
        assert seen["disconnects"][0][1] in ("transport close", "transport error"), seen
        assert seen["emits_running"] == 0 and seen["queued_bytes"] == 0, seen
        # the others go on
        await fast[0].ws.send(fanout(n))
        for c in fast:
            await c.until(n + 1)
            assert c.news == list(range(n + 1))
        # the server stops while another client's write is out: promptly, and cleanly
        stuck = await slow_client(url)
        await back_up(http, srv.url, fast, fast[0], n + 1)
        srv._proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        while srv.is_alive() and time.monotonic() - started < 10:
            await asyncio.sleep(0.05)
        assert not srv.is_alive(), "the server did not stop within 10 s of SIGTERM"
        for c in [*fast, stuck]:
            c.ws.transport.abort()
    log = srv.stderr_text()
    assert "Traceback" not in log and "background task failed" not in log, log[-3000:]
