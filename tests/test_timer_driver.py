"""The server's one timer driver, in-process on asyncio and trio: what wakes it, and the
websockets it closes when their client does not after a CLOSE packet."""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_http, start_websocket

import engineio_asgi
from engineio_sansio import CLIENT_CLOSE_GRACE

pytestmark = pytest.mark.anyio

POLLING = "EIO=4&transport=polling"


def make() -> tuple[engineio_asgi.AsyncServer, engineio_asgi.ASGIApp, list[float]]:
    """A server whose core counts the timer driver's calls of ``handle_timer``."""
    eio = engineio_asgi.AsyncServer()
    core = eio._core
    runs: list[float] = []
    handle_timer = core.handle_timer

    def counted(now: float) -> None:
        runs.append(now)
        handle_timer(now)

    core.handle_timer = counted  # type: ignore[method-assign]
    return eio, engineio_asgi.ASGIApp(eio), runs


async def open_session(app: Any) -> str:
    r = await http(app, "GET", query=POLLING)
    assert r.status == 200, r.body
    return json.loads(r.text[1:])["sid"]  # type: ignore[no-any-return]


async def test_handshakes_do_not_wake_the_timer_driver(anyio_backend: str) -> None:
    # Each new session's first deadline (its first ping) is later than the one the
    # driver already waits for: opening sessions must not wake it (it once woke for
    # every handshake, a loop turn with an event and a cancel scope each time).
    eio, app, runs = make()
    held = await open_session(app)  # its ping is the driver's deadline
    for _ in range(3):
        await anyio.sleep(0)  # the driver starts and settles on that deadline
    before = len(runs)
    for _ in range(20):
        sid = await open_session(app)
        r = await http(app, "POST", query=f"{POLLING}&sid={sid}", body=b"1")
        assert r.status == 200
        for _ in range(3):
            await anyio.sleep(0)  # let a woken driver run
    assert len(runs) == before, f"the timer driver ran {len(runs) - before} times for 20 handshakes"
    assert eio.transport(held) == "polling"
    await eio.shutdown()


async def test_a_nearer_deadline_still_wakes_the_driver(anyio_backend: str) -> None:
    # the other side of the test above: a deadline before the one it waits for wakes it
    eio, app, runs = make()
    await open_session(app)
    for _ in range(3):
        await anyio.sleep(0)
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive() or "")[:1] == "0"
        await ws.send_text("1")  # CLOSE: the server closes the websocket within the grace
        with anyio.fail_after(CLIENT_CLOSE_GRACE + 3):
            assert await ws.receive(timeout=CLIENT_CLOSE_GRACE + 3) is None
        assert ws.closed is not None and ws.closed["code"] == 1000
        await ws.finished.wait()
    assert runs, "the driver never ran for the websocket's close"
    assert not eio._late_closes
    await eio.shutdown()


async def test_late_close_forgotten_when_the_client_closes_first(anyio_backend: str) -> None:
    eio, app, _ = make()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive() or "")[:1] == "0"
        await ws.send_text("1")
        await ws.disconnect(1000)  # the client closes at once, as engine.io-client does
        with anyio.fail_after(5):
            await ws.finished.wait()
        assert not eio._late_closes  # nothing left waiting for the grace to end
        assert ws.closed is None  # the server did not close it too
    await eio.shutdown()


async def test_shutdown_closes_a_websocket_whose_client_does_not(anyio_backend: str) -> None:
    eio, app, _ = make()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive() or "")[:1] == "0"
        with anyio.fail_after(5):
            await eio.shutdown()  # CLOSE packet, then at most a second for the client
        assert await ws.receive() == "1"
        assert await ws.receive() is None and ws.closed is not None
        with anyio.fail_after(5):
            await ws.finished.wait()
    assert not eio._late_closes


async def test_held_poll_still_answered_after_handshakes(anyio_backend: str) -> None:
    # a held GET and the timer driver's deadline: handshakes between do not disturb it
    eio, app, _ = make()
    sid = await open_session(app)
    async with anyio.create_task_group() as tg:
        poll = await start_http(tg, app, "GET", query=f"{POLLING}&sid={sid}")
        for _ in range(5):
            await open_session(app)
        await eio.send(sid, "hello")
        with anyio.fail_after(5):
            await poll.done.wait()
        assert poll.status == 200 and poll.text == "4hello"
    await eio.shutdown()


async def test_websocket_handshakes_share_the_drivers_wake_ups(anyio_backend: str) -> None:
    # After a CLOSE packet the server waits a moment for the client to close the
    # websocket; clients that do (all of them, here) must not cost a wake-up each.
    eio, app, runs = make()
    await open_session(app)
    for _ in range(3):
        await anyio.sleep(0)
    before = len(runs)
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
            assert (await ws.receive() or "")[:1] == "0"
            await ws.send_text("1")
            await ws.disconnect(1000)
            with anyio.fail_after(5):
                await ws.finished.wait()
            assert ws.closed is None
    # their closes fall on the driver's ticks (a quarter of a second): one wake-up for
    # the first, and at most one per tick the test spans (however slow the machine)
    ticks = math.ceil((anyio.current_time() - started) / 0.25) + 1
    woken = len(runs) - before
    assert woken <= 1 + ticks, f"the timer driver ran {woken} times for 20 websockets ({ticks} ticks)"
    assert not eio._late_closes
    await eio.shutdown()


async def test_pings_are_written_and_answered_on_each_backend(anyio_backend: str) -> None:
    # The driver hands each ping's write to the backend (engineio_asgi._writes; on trio a
    # task of its own awaits it): it goes out, and the core hears it was written, else
    # the next ping would wait behind it forever.
    eio = engineio_asgi.AsyncServer(ping_interval=0.05, ping_timeout=0.3)
    app = engineio_asgi.ASGIApp(eio)
    async with anyio.create_task_group() as tg:
        clients = [await start_websocket(tg, app, "EIO=4&transport=websocket") for _ in range(5)]
        for ws in clients:
            assert (await ws.receive() or "")[:1] == "0"
        for _ in range(3):
            for ws in clients:
                assert await ws.receive() == "2"
                await ws.send_text("3")
        for ws in clients:
            assert await ws.receive() == "2"  # a fourth, not answered: the server stops
        await eio.shutdown()
        for ws in clients:
            await ws.disconnect(1000)
            with anyio.fail_after(5):
                await ws.finished.wait()
    assert sum(eio.stats().sessions.values()) == 0
