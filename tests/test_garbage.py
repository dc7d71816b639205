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
from asgi_harness import http, start_websocket

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
