"""Writes without a task each, in-process: a python-socketio broadcast and the timer driver's pings.

The fake websocket here answers ``send()`` as granian does: with a future of the
loop that completes later (the test completes it, or lets the loop do it), never a
coroutine. Each recipient's write then goes on from that future's done callback:
no task per recipient or per ping, a recipient whose write waits or fails holds up
no other, and at shutdown the writes still out are cancelled and nothing more is
done with them. asyncio only: python-socketio needs it, and trio's writes are
tasks (``run_detached`` on trio).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from asgi_harness import websocket_scope

import engineio_asgi
from engineio_asgi.socketio import ASGIApp, AsyncServer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


class FutureClient:
    """A websocket client as fake ASGI calls whose ``send`` returns a loop future, as granian's does.

    With ``hold`` set, each write's future stays pending in ``held`` until the test
    completes it; else the loop completes it on its next turn.
    """

    def __init__(self, app: Any, name: str, path: str = "/socket.io/", hello: str | None = None) -> None:
        self.name = name
        self.frames: list[Any] = []
        self.hold = False
        self.held: list[asyncio.Future[None]] = []
        self.writes: list[asyncio.Future[None]] = []
        self.got = asyncio.Event()
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        scope = websocket_scope(path)
        self.incoming.put_nowait({"type": "websocket.connect"})
        if hello is None:
            hello = '40{"name":"' + name + '"}'
        if hello:
            self.incoming.put_nowait({"type": "websocket.receive", "text": hello})
        self.task = asyncio.create_task(app(scope, self.incoming.get, self.send))

    def send(self, message: dict[str, Any]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        if message["type"] == "websocket.send":
            frame = message.get("text", message.get("bytes"))
            self.frames.append(frame)
            if frame == "2":  # a ping: answered at once
                self.incoming.put_nowait({"type": "websocket.receive", "text": "3"})
            self.got.set()
            self.writes.append(future)
            if self.hold:
                self.held.append(future)
                return future
        self.loop.call_soon(_complete, future)
        return future

    def events(self) -> list[Any]:
        """The frames after the handshake (the OPEN packet and the namespace CONNECT)."""
        return self.frames[2:]

    async def close(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


class TaskBoundClient(FutureClient):
    """A client whose ``send`` is a coroutine that needs a task (``asyncio.timeout``), as some
    ASGI servers' are, and waits while ``gate`` is set up and not set."""

    gate: asyncio.Event | None = None

    def send(self, message: dict[str, Any]) -> Any:  # type: ignore[override]
        return self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        async with asyncio.timeout(5):  # RuntimeError outside a task
            if message["type"] == "websocket.send":
                self.frames.append(message.get("text", message.get("bytes")))
                self.got.set()
                if self.gate is not None:
                    await self.gate.wait()


def _complete(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TaskCount:
    """Counts the tasks the running loop creates while it is installed."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []
        self.loop = asyncio.get_running_loop()

    def __enter__(self) -> TaskCount:
        def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            self.count += 1
            self.names.append(getattr(coro, "__qualname__", type(coro).__name__))
            return asyncio.Task(coro, loop=loop, **kwargs)

        self.loop.set_task_factory(factory)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.set_task_factory(None)


async def start(
    names: list[str], client: type[FutureClient] = FutureClient
) -> tuple[Any, dict[str, FutureClient], dict[str, str], list[Any]]:
    sio = AsyncServer()
    sids: dict[str, str] = {}
    closed: list[Any] = []

    @sio.on("connect")
    async def connect(sid: str, environ: Any, auth: Any) -> None:
        sids[auth["name"]] = sid
        await sio.enter_room(sid, "all")

    @sio.on("disconnect")
    async def disconnect(sid: str, reason: Any = None) -> None:
        closed.append((sid, reason))

    app = ASGIApp(sio)
    clients = {name: client(app, name) for name in names}
    for _ in range(500):
        if len(sids) == len(names) and all(len(c.frames) >= 2 for c in clients.values()):
            break
        await asyncio.sleep(0.01)
    assert len(sids) == len(names)
    return sio, clients, sids, closed


async def test_a_broadcast_makes_no_task_per_recipient_when_send_returns_a_future() -> None:
    sio, clients, _, _ = await start([f"c{i}" for i in range(50)])
    with TaskCount() as tasks:
        async with asyncio.timeout(5):  # (no task, as wait_for would make)
            for n in range(3):
                await sio.emit("news", n, to="all")
    # every recipient has each packet, in order, and no write needed a task
    for c in clients.values():
        assert c.events() == ['42["news",0]', '42["news",1]', '42["news",2]']
    assert tasks.count == 0, tasks.names
    for c in clients.values():
        await c.close()


async def test_a_recipient_whose_write_waits_holds_up_neither_the_others_nor_its_own_order() -> None:
    sio, clients, _, _ = await start(["c0", "c1", "c2"])
    slow = clients["c1"]
    slow.hold = True
    first = asyncio.create_task(sio.emit("news", 1))
    for name in ("c0", "c2"):
        await asyncio.wait_for(_frames(clients[name], 1), 5)
    assert slow.events() == ['42["news",1]']  # handed to send(), which has not completed
    assert not first.done()  # an emit returns once every recipient's write has ended
    # meanwhile its next packets wait in its session's queue; the others get theirs
    second = asyncio.create_task(sio.emit("bin", b"\x02"))
    third = asyncio.create_task(sio.emit("news", 3))
    await asyncio.wait_for(asyncio.gather(second, third), 5)
    for name in ("c0", "c2"):
        assert clients[name].events() == [
            '42["news",1]',
            '451-["bin",{"_placeholder":true,"num":0}]',
            b"\x02",
            '42["news",3]',
        ]
    assert slow.events() == ['42["news",1]']
    slow.hold = False
    slow.held.pop().set_result(None)
    await asyncio.wait_for(first, 5)
    await asyncio.wait_for(_frames(slow, 4), 5)
    assert slow.events() == clients["c0"].events()
    for c in clients.values():
        await c.close()


async def test_a_write_that_goes_on_after_a_wait_runs_send_in_a_task() -> None:
    # a send() that waited (a task went on with it) is followed by the session's queued
    # packets, from that task's done callback: their send() must run in a task too
    sio, clients, _, _ = await start(["c0", "c1"], TaskBoundClient)
    slow = clients["c1"]
    slow.gate = asyncio.Event()  # type: ignore[attr-defined]
    first = asyncio.create_task(sio.emit("news", 1))
    await asyncio.wait_for(_frames(slow, 1), 5)
    await asyncio.wait_for(sio.emit("news", 2), 5)  # queued behind c1's write
    await asyncio.wait_for(sio.emit("news", 3), 5)
    slow.gate.set()  # type: ignore[attr-defined]
    await asyncio.wait_for(first, 5)
    await asyncio.wait_for(_frames(slow, 3), 5)
    assert slow.events() == clients["c0"].events() == ['42["news",1]', '42["news",2]', '42["news",3]']
    for c in clients.values():
        await c.close()


async def test_a_write_failing_mid_broadcast_ends_its_session_and_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sio, clients, sids, closed = await start(["c0", "c1", "c2"])
    broken = clients["c1"]
    broken.hold = True
    emit = asyncio.create_task(sio.emit("news", 1))
    await asyncio.wait_for(_frames(broken, 1), 5)
    queued = asyncio.create_task(sio.emit("news", 2))  # waits in c1's queue behind the write
    await asyncio.wait_for(queued, 5)
    broken.held.pop().set_exception(ConnectionResetError("peer gone"))
    await asyncio.wait_for(emit, 5)
    for _ in range(500):
        if closed:
            break
        await asyncio.sleep(0.01)
    # the session is closed and its handler told why; nothing else is written to it
    assert closed == [(sids["c1"], engineio_asgi.AsyncServer.reason.TRANSPORT_CLOSE)]
    assert broken.events() == ['42["news",1]']
    await sio.emit("news", 3)
    for name in ("c0", "c2"):
        assert clients[name].events() == ['42["news",1]', '42["news",2]', '42["news",3]']
    assert "Traceback" not in caplog.text and "background task failed" not in caplog.text
    for c in clients.values():
        await c.close()


async def test_shutdown_mid_broadcast_cancels_the_writes_still_out(caplog: pytest.LogCaptureFixture) -> None:
    sio, clients, _, _ = await start(["c0", "c1", "c2"])
    caplog.set_level(logging.INFO, logger="engineio_asgi.server")
    for c in clients.values():
        c.hold = True
    emit = sio.start_background_task(sio.emit, "news", 1)
    for c in clients.values():
        await asyncio.wait_for(_frames(c, 1), 5)
    backend = sio.eio._backend
    assert len(backend._then) == 3  # three writes out, watched without a task
    await sio.eio.shutdown()
    # the emit (a task of the server's) and each write still out were cancelled, and nothing
    # was done with them afterwards: no write failure, no error
    assert emit.cancelled()
    for c in clients.values():
        assert c.held[0].cancelled()
    assert backend._then == {}
    assert "write failed" not in caplog.text and "Traceback" not in caplog.text
    for c in clients.values():
        await c.close()


async def test_pings_are_written_without_a_task_each() -> None:
    # (the driver sends the next ping when it wakes for the last one's timeout)
    eio = engineio_asgi.AsyncServer(ping_interval=0.05, ping_timeout=0.3)
    app = engineio_asgi.ASGIApp(eio)
    clients = [FutureClient(app, f"p{i}", path="/engine.io/", hello="") for i in range(20)]
    for _ in range(500):
        if all(c.frames for c in clients):
            break
        await asyncio.sleep(0.01)
    with TaskCount() as tasks:
        async with asyncio.timeout(5):  # (no task, as wait_for would make)
            for c in clients:
                await _frames_of(c, "2", 3)
    pings = sum(c.frames.count("2") for c in clients)
    assert pings >= 60
    # what the timer driver itself spawns (a rare non-ping event) is all there may be
    assert tasks.count <= 2, f"{tasks.count} tasks for {pings} pings: {tasks.names}"
    for c in clients:
        await c.close()
    await eio.shutdown()


async def _frames(client: FutureClient, n: int) -> None:
    while len(client.events()) < n:
        client.got.clear()
        await client.got.wait()


async def _frames_of(client: FutureClient, frame: str, n: int) -> None:
    while client.frames.count(frame) < n:
        client.got.clear()
        await client.got.wait()


class PacedClient(FutureClient):
    """Completes each write's future a moment later (granian's threads take the frame), and
    records how many ping writes of all such clients were out at once (``out``)."""

    out: list[int] = [0, 0]  # [now, most], shared by the clients of a test

    def send(self, message: dict[str, Any]) -> asyncio.Future[None]:
        future = super().send(message)
        if message.get("text") == "2" and not self.hold:
            out = PacedClient.out
            out[0] += 1
            out[1] = max(out[1], out[0])
            future.add_done_callback(lambda _: out.__setitem__(0, out[0] - 1))
        return future


async def test_pings_due_together_are_written_one_at_a_time() -> None:
    # Sessions opened together have their pings due together. Written at once, on
    # granian (whose send() completes later, from its own threads) a batch of them held
    # up the messages of other clients arriving meanwhile; a heartbeat that awaits each
    # ping does not. The driver's writes go one after another: the next once the last
    # has ended.
    PacedClient.out = [0, 0]
    eio = engineio_asgi.AsyncServer(ping_interval=0.05, ping_timeout=0.3)
    app = engineio_asgi.ASGIApp(eio)
    clients = [PacedClient(app, f"p{i}", path="/engine.io/", hello="") for i in range(20)]
    async with asyncio.timeout(5):
        for c in clients:
            await _frames_of(c, "2", 3)
    assert PacedClient.out[1] == 1, f"{PacedClient.out[1]} ping writes were out at once"
    for c in clients:
        await c.close()
    await eio.shutdown()


async def test_a_ping_write_that_waits_long_holds_up_the_other_pings_no_longer() -> None:
    # A client that stops reading: its ping's send() never completes. The pings due
    # after it wait for it at most PING_HOLD, then go.
    eio = engineio_asgi.AsyncServer(ping_interval=0.05, ping_timeout=0.3)
    app = engineio_asgi.ASGIApp(eio)
    stuck = FutureClient(app, "stuck", path="/engine.io/", hello="")
    async with asyncio.timeout(5):
        while not stuck.frames:  # the OPEN packet
            stuck.got.clear()
            await stuck.got.wait()
    stuck.hold = True  # its writes from here on never complete
    clients = [FutureClient(app, f"p{i}", path="/engine.io/", hello="") for i in range(5)]
    async with asyncio.timeout(5):
        await _frames_of(stuck, "2", 1)
        for c in clients:
            await _frames_of(c, "2", 3)
    assert stuck.held and not stuck.held[0].done()
    for c in clients:
        await c.close()
    await eio.shutdown()
    assert not eio._pings.queue and eio._pings.current is None
    await stuck.close()
