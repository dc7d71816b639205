"""Coroutine message handlers with ``async_handlers=True``, in-process, on asyncio and trio.

python-engineio runs each such handler as a task of its own. What a handler can
observe of that must hold however the server runs it (started in place and only
given a task once it waits): handlers of one session start in arrival order, one
that waits does not hold up the next message, one that fails is logged with its
sid even after it waited, each sees its own copy of the context, and on asyncio
``shutdown()`` cancels the ones still waiting. The in-process websocket's ``send`` always
waits (as granian's does), so these handlers all take the task path.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_websocket

import engineio_asgi

pytestmark = pytest.mark.anyio

LOGGER = "test.async_handlers"
seen_var: contextvars.ContextVar[str] = contextvars.ContextVar("seen_var", default="unset")


def make() -> tuple[engineio_asgi.AsyncServer, engineio_asgi.ASGIApp]:
    eio = engineio_asgi.AsyncServer(logger=logging.getLogger(LOGGER), async_handlers=True)
    return eio, engineio_asgi.ASGIApp(eio)


async def open_ws(tg: Any, app: Any) -> tuple[Any, str]:
    ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
    opened = await ws.receive()
    assert isinstance(opened, str) and opened[0] == "0"
    return ws, json.loads(opened[1:])["sid"]


async def test_a_waiting_handler_holds_up_nothing_and_handlers_start_in_arrival_order() -> None:
    eio, app = make()
    started: list[str] = []
    go = anyio.Event()

    @eio.on("message")
    async def message(sid: str, data: str) -> None:
        started.append(data)
        if data == "wait":
            await go.wait()  # released only by a later message of the same session
        elif data == "go":
            go.set()
        await eio.send(sid, "done " + data)

    async with anyio.create_task_group() as tg:
        ws, _sid = await open_ws(tg, app)
        for text in ("wait", "a", "go", "b"):
            await ws.send_text("4" + text)
        answers = [await ws.receive() for _ in range(4)]
        await ws.disconnect(1000)
    assert started == ["wait", "a", "go", "b"]
    assert sorted(answers) == sorted("4done " + t for t in ("wait", "a", "go", "b"))  # type: ignore[type-var]
    assert answers[-1] != "4done wait" or answers.index("4done go") < 3  # "wait" ended after "go" began


async def test_a_handler_failing_after_it_waited_is_logged_with_its_sid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eio, app = make()

    @eio.on("message")
    async def message(sid: str, data: str) -> None:
        await anyio.sleep(0)  # fails in its task, not in the first step
        if data == "boom":
            raise RuntimeError("late failure requested by the test")
        await eio.send(sid, data)

    caplog.set_level(logging.ERROR, LOGGER)
    async with anyio.create_task_group() as tg:
        ws, sid = await open_ws(tg, app)
        await ws.send_text("4boom")
        await ws.send_text("4still here")
        assert await ws.receive() == "4still here"
        # and over polling (the other way a message reaches a handler)
        r = await http(app, "GET", query="EIO=4&transport=polling")
        psid = json.loads(r.text[1:])["sid"]
        q = f"EIO=4&transport=polling&sid={psid}"
        await http(app, "POST", query=q, body=b"4boom\x1e4polled")
        assert (await http(app, "GET", query=q)).text == "4polled"
        await ws.disconnect(1000)
    failures = [r for r in caplog.records if "message handler error" in r.getMessage()]
    assert [f"sid {s} " in r.getMessage() for r, s in zip(failures, (sid, psid), strict=True)] == [True, True]
    assert all(r.exc_info and "late failure" in str(r.exc_info[1]) for r in failures)


async def test_each_handler_sees_its_own_context() -> None:
    eio, app = make()
    second_set = anyio.Event()
    seen: dict[str, str] = {}

    @eio.on("message")
    async def message(sid: str, data: str) -> None:
        seen[data + " at start"] = seen_var.get()
        seen_var.set(data)
        if data == "first":
            await second_set.wait()  # the second handler has set the variable meanwhile
        else:
            second_set.set()
            await anyio.sleep(0)
        seen[data + " at end"] = seen_var.get()
        await eio.send(sid, data)

    async with anyio.create_task_group() as tg:
        ws, _sid = await open_ws(tg, app)
        for text in ("first", "second", "third"):
            await ws.send_text("4" + text)
        assert sorted([await ws.receive() for _ in range(3)]) == ["4first", "4second", "4third"]  # type: ignore[type-var]
        await ws.disconnect(1000)
    assert seen == {
        "first at start": "unset",
        "second at start": "unset",
        "third at start": "unset",  # what the earlier ones set stayed theirs
        "first at end": "first",
        "second at end": "second",
        "third at end": "third",
    }
    assert seen_var.get() == "unset"


async def test_shutdown_cancels_the_handlers_still_waiting(anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("on trio a handler is a system task: it ends with the trio run, not at shutdown()")
    eio, app = make()
    waiting = anyio.Event()
    ended: list[str] = []

    @eio.on("message")
    async def message(sid: str, data: str) -> None:
        try:
            waiting.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            ended.append("cancelled")
            raise

    async with anyio.create_task_group() as tg:
        ws, _sid = await open_ws(tg, app)
        await ws.send_text("4hang")
        with anyio.fail_after(5):
            await waiting.wait()
        with anyio.fail_after(10):
            await eio.shutdown()
        tg.cancel_scope.cancel()
    assert ended == ["cancelled"]
