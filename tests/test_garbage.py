"""No cyclic garbage per handshake or per message through the ASGI app (in-process).

The collector is off while N polling and websocket sessions open, exchange
messages and close through :mod:`asgi_harness`; the objects in cycles it then
finds must not grow with N (each would be traversed by every full collection
until freed). See tests/core/test_garbage.py for the core alone.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_websocket, websocket_scope

import engineio_asgi
import engineio_sansio

pytestmark = pytest.mark.anyio


async def sessions(app: Any, n: int) -> None:
    for _ in range(n):
        r = await http(app, "GET", query="EIO=4&transport=polling")
        sid = json.loads(r.text[1:])["sid"]
        q = f"EIO=4&transport=polling&sid={sid}"
        await http(app, "POST", query=q, body=b"4hello")
        r = await http(app, "GET", query=q)
        assert r.text == "4hello"
        await http(app, "POST", query=q, body=b"1")
        async with anyio.create_task_group() as tg:
            ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
            await ws.receive()
            for _ in range(5):
                await ws.send_text("4hi")
                assert await ws.receive() == "4hi"
            await ws.send_text("1")
            await ws.disconnect(1000)


async def cycles_found(app: Any, n: int) -> int:
    gc.collect()
    gc.disable()
    try:
        await sessions(app, n)
        return gc.collect()
    finally:
        gc.enable()


async def test_handshakes_and_messages_leave_no_cycles() -> None:
    eio = engineio_asgi.AsyncServer()
    opened: list[str] = []

    @eio.on("connect")
    def connect(sid: str, environ: dict[str, Any]) -> None:
        opened.append(sid)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    app = engineio_asgi.ASGIApp(eio)
    await sessions(app, 3)  # warm up
    few = await cycles_found(app, 5)
    many = await cycles_found(app, 40)
    assert len(opened) == 2 * 48
    assert many <= few, f"{many} objects in cycles after 40 rounds of sessions, {few} after 5"
    assert eio._sessions == {}


async def test_an_open_websocket_keeps_no_event_it_has_handled() -> None:
    """An idle connection's task keeps what it needs, not the events it performed: with
    thousands of idle sessions, every object one keeps is traversed by each full collection."""
    eio = engineio_asgi.AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    app = engineio_asgi.ASGIApp(eio)
    held = 5
    async with anyio.create_task_group() as tg:
        sockets = []
        for _ in range(held):
            ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
            await ws.receive()
            await ws.send_text('4{"a":[1]}')  # a message whose data is parsed into objects
            assert await ws.receive() == '4{"a":[1]}'
            sockets.append(ws)
        gc.collect()
        kept = [
            type(o).__name__
            for o in gc.get_objects()
            if type(o) in (engineio_sansio.ConnectRequest, engineio_sansio.MessageReceived)
        ]
        assert kept == [], f"{len(kept)} events kept by {held} open websockets: {sorted(set(kept))}"
        for ws in sockets:
            await ws.disconnect(1000)


async def _bare_websocket(scope: Any, receive: Any, send: Any) -> None:
    """The least an Engine.IO websocket needs, as a plain ASGI app: accept, OPEN, echo."""
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '0{"sid":"x","upgrades":[],"pingInterval":25000}'})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message["text"]})


async def _tracked_per_held_websocket(app: Any, held: int) -> float:
    """GC-tracked objects per open websocket (each has sent one message and had its echo)."""
    async with anyio.create_task_group() as tg:
        sockets = []
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")  # warm up
        await ws.receive()
        await ws.send_text("4warm")
        await ws.receive()
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(held):
            ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
            await ws.receive()
            await ws.send_text("4hello")
            assert await ws.receive() == "4hello"
            sockets.append(ws)
        await anyio.sleep(0)  # (a handler's task, if any, has ended)
        gc.collect()
        per = (len(gc.get_objects()) - before) / held
        tg.cancel_scope.cancel()
    return per


async def test_a_held_websocket_costs_few_objects_more_than_a_bare_app(anyio_backend: str) -> None:
    """What a full collection walks grows with the sessions held: each idle websocket
    session keeps only a few GC-tracked objects more than the same connection held by a
    plain ASGI app answering it: the core's session and its websocket, the runtime's
    record of the connection (which is the session's record too), and the ASGI app's
    coroutine; on trio also the reader's cancel scope (with its status and two sets) and
    the flag of the last handler's start. No queue while nothing waits, no waker object,
    bound methods, events or per-write lists."""
    eio = engineio_asgi.AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    ours = await _tracked_per_held_websocket(engineio_asgi.ASGIApp(eio), 20)
    bare = await _tracked_per_held_websocket(_bare_websocket, 20)
    most = 4 if anyio_backend == "asyncio" else 9
    assert ours - bare <= most, f"{ours:.1f} GC-tracked objects per held websocket, a bare app {bare:.1f}"
    await eio.shutdown()


async def _tracked_per_handshake_in_flight(app: Any, k: int) -> float:
    """GC-tracked objects per websocket handshake whose accept waits, as uvicorn's does
    until the handshake's response is written (``k`` at once)."""
    release = anyio.Event()
    never = anyio.Event()
    waiting = 0
    all_waiting = anyio.Event()

    async def connection() -> None:
        connected = False

        async def receive() -> dict[str, Any]:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            await never.wait()
            return {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            nonlocal waiting
            if message["type"] == "websocket.accept":
                waiting += 1
                if waiting == k:
                    all_waiting.set()
                await release.wait()

        await app(websocket_scope("/engine.io/"), receive, send)

    async with anyio.create_task_group() as tg:
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(k):
            tg.start_soon(connection)
        with anyio.fail_after(5):
            await all_waiting.wait()
        gc.collect()
        per = (len(gc.get_objects()) - before) / k
        release.set()
        tg.cancel_scope.cancel()
    return per


async def test_a_websocket_handshake_in_flight_costs_few_objects_more_than_a_bare_app() -> None:
    """While the ASGI server's accept waits (with many clients connecting at once, hundreds
    do), a handshake keeps alive what its session will keep (the core's session and
    websocket, the runtime's record) and the ASGI app's coroutine, and nothing else: no
    coroutine of the connect handler's call, no events, event list or iterator over them."""
    eio = engineio_asgi.AsyncServer()

    @eio.on("connect")
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        pass

    app = engineio_asgi.ASGIApp(eio)
    await _tracked_per_handshake_in_flight(app, 5)  # warm up
    await _tracked_per_handshake_in_flight(_bare_websocket, 5)
    ours = await _tracked_per_handshake_in_flight(app, 40)
    bare = await _tracked_per_handshake_in_flight(_bare_websocket, 40)
    assert ours - bare <= 5, f"{ours:.1f} GC-tracked objects per handshake in flight, a bare app {bare:.1f}"
    await eio.shutdown()
