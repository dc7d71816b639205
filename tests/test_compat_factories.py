"""``create_queue``/``create_event``/``get_queue_empty_exception`` work where python-engineio's do.

python-engineio returns ``asyncio.Queue``, ``asyncio.Event`` and ``asyncio.QueueEmpty``
whether or not a loop runs, so ported applications make them at import time. Under a
running trio loop the trio-compatible objects come back, as before.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

import engineio_asgi
from engineio_asgi import _backend

# as a ported application does it: at import time, no loop running
_server = engineio_asgi.AsyncServer()
_module_queue = _server.create_queue()
_module_event = _server.create_event()
_module_empty = _server.get_queue_empty_exception()


def test_module_level_objects_are_asyncio_ones() -> None:
    assert type(_module_queue) is asyncio.Queue
    assert type(_module_event) is asyncio.Event
    assert _module_empty is asyncio.QueueEmpty


def test_objects_made_outside_a_loop_work_inside_asyncio() -> None:
    eio = engineio_asgi.AsyncServer()
    queue = eio.create_queue(maxsize=2)
    event = eio.create_event()
    empty = eio.get_queue_empty_exception()
    assert isinstance(queue, asyncio.Queue) and queue.maxsize == 2
    assert isinstance(event, asyncio.Event)

    async def main() -> list[int]:
        with pytest.raises(empty):
            queue.get_nowait()

        async def producer() -> None:
            await queue.put(1)
            await queue.put(2)
            event.set()

        task = eio.start_background_task(producer)
        await asyncio.wait_for(event.wait(), 5)
        await task
        return [queue.get_nowait(), queue.get_nowait()]

    assert asyncio.run(main()) == [1, 2]


def test_objects_made_outside_a_loop_do_not_tie_the_server_to_asyncio() -> None:
    import trio

    eio = engineio_asgi.AsyncServer()
    eio.create_queue()
    eio.create_event()
    eio.get_queue_empty_exception()

    async def main() -> str:
        done = eio.create_event()  # made under trio: trio's kind
        assert isinstance(done, _backend.ResettableEvent)

        async def job() -> None:
            done.set()

        eio.start_background_task(job)
        with trio.fail_after(5):
            await done.wait()
        await eio.shutdown()
        return "ran"

    assert trio.run(main) == "ran"


def test_start_background_task_outside_a_loop_says_what_is_needed() -> None:
    eio = engineio_asgi.AsyncServer()

    async def job() -> None: ...

    with pytest.raises(RuntimeError, match="running event loop") as info:
        eio.start_background_task(job)
    message = str(info.value)
    assert "start_background_task" in message
    assert "handler" in message and "startup" in message


@pytest.mark.anyio
async def test_inside_a_loop_each_backend_gets_its_own_objects(anyio_backend: str) -> None:
    eio = engineio_asgi.AsyncServer()
    queue = eio.create_queue()
    event = eio.create_event()
    empty = eio.get_queue_empty_exception()
    if anyio_backend == "asyncio":
        assert isinstance(queue, asyncio.Queue) and isinstance(event, asyncio.Event)
        assert empty is asyncio.QueueEmpty
    else:
        assert isinstance(queue, _backend.Queue) and isinstance(event, _backend.ResettableEvent)
        assert empty is _backend.QueueEmpty
    with pytest.raises(empty):
        queue.get_nowait()
    await queue.put("x")
    event.set()
    with anyio.fail_after(1):
        await event.wait()
        assert await queue.get() == "x"
