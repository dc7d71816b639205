"""The little that differs between asyncio and trio, chosen per running loop.

python-engineio's API promises asyncio objects on asyncio (``start_background_task``
returns an ``asyncio.Task``, ``create_queue`` an ``asyncio.Queue``); on trio
the same calls return objects with the same methods. Everything else in the
package is plain anyio.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine, Generator

import anyio
import sniffio

__all__ = ["NO_LOOP", "Backend", "NoLoop", "get_backend"]


class Backend:
    """What the server needs from the event loop it runs on."""

    name = "base"

    def __init__(self) -> None:
        self.tasks: set[Any] = set()

    def clock(self) -> Callable[[], float]:
        """A cheap zero-argument monotonic clock of this loop."""
        return anyio.current_time

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Start ``fn(*args)`` as a task the server owns; return its handle."""
        raise NotImplementedError

    def spawn_eager(self, coro: Coroutine[Any, Any, Any], chain: Any = None) -> Any:
        """Start ``coro`` concurrently, after every coroutine started before it on ``chain``.

        Handlers of one session start in arrival order and each runs up to its
        first suspension before the next starts, as they would inline. Returns
        the new chain value (keep it per session). On asyncio this runs the
        coroutine right now and only makes a task if it suspends, so a handler
        that does not block costs no task at all.
        """
        raise NotImplementedError

    async def cancel_all(self, timeout: float = 5.0) -> None:
        """Cancel every task this backend started and wait (bounded) for them."""
        raise NotImplementedError

    def waker(self) -> Any:
        """A context manager around a wait that another task may interrupt with ``wake()``.

        The interrupted wait ends the ``with`` block quietly; lighter than an
        anyio cancel scope, which matters at one per open websocket.
        """
        raise NotImplementedError

    def create_event(self) -> Any:
        """An event with ``set``, ``clear``, ``is_set`` and ``wait``."""
        raise NotImplementedError

    def create_queue(self, maxsize: int = 0) -> Any:
        """A queue with asyncio.Queue's methods."""
        raise NotImplementedError

    def queue_empty_exception(self) -> type[Exception]:
        """What ``get_nowait`` raises on an empty queue from :meth:`create_queue`."""
        raise NotImplementedError


class AsyncioBackend(Backend):
    """asyncio: real ``asyncio`` tasks, events and queues, as python-engineio documents."""

    name = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        import asyncio

        self._asyncio = asyncio
        self._loop = asyncio.get_running_loop()

    def clock(self) -> Callable[[], float]:
        return self._loop.time

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        task: Any = self._loop.create_task(fn(*args))  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def spawn_eager(self, coro: Coroutine[Any, Any, Any], chain: Any = None) -> Any:
        ctx = contextvars.copy_context()
        try:
            first = ctx.run(coro.send, None)
        except StopIteration:
            return None
        except BaseException as exc:
            logging.getLogger("engineio_asgi").error("handler failed", exc_info=exc)
            return None
        # it suspended: the rest runs as a task in the same context
        task: Any = self._loop.create_task(_Resume(coro, first).run(), context=ctx)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return None

    def _done(self, task: Any) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger("engineio_asgi").error("background task failed", exc_info=task.exception())

    async def cancel_all(self, timeout: float = 5.0) -> None:
        current = self._asyncio.current_task()
        tasks = [t for t in self.tasks if t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            with anyio.move_on_after(timeout):
                await self._asyncio.gather(*tasks, return_exceptions=True)

    def waker(self) -> Any:
        return _AsyncioWaker(self._asyncio, self._loop)

    def create_event(self) -> Any:
        return self._asyncio.Event()

    def create_queue(self, maxsize: int = 0) -> Any:
        return self._asyncio.Queue(maxsize)

    def queue_empty_exception(self) -> type[Exception]:
        return self._asyncio.QueueEmpty


class _AsyncioWaker:
    __slots__ = ("_asyncio", "_loop", "task", "woken")

    def __init__(self, asyncio_module: Any, loop: Any) -> None:
        self._asyncio = asyncio_module
        self._loop = loop
        self.task: Any = None
        self.woken = False

    def __enter__(self) -> _AsyncioWaker:
        self.task = self._asyncio.current_task(self._loop)
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        task, self.task = self.task, None
        if kind is not None and issubclass(kind, self._asyncio.CancelledError) and self.woken:
            # ours, unless someone else cancelled the task too
            return task.uncancel() == 0  # type: ignore[no-any-return]
        return False

    def wake(self) -> None:
        if self.task is not None and not self.woken:
            self.woken = True
            self.task.cancel()


class _TrioWaker:
    __slots__ = ("scope",)

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    def __enter__(self) -> _TrioWaker:
        self.scope.__enter__()
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return self.scope.__exit__(kind, exc, tb)  # type: ignore[no-any-return]

    def wake(self) -> None:
        self.scope.cancel()

    @property
    def woken(self) -> bool:
        return self.scope.cancel_called  # type: ignore[no-any-return]


class _Resume:
    """Continue, inside an asyncio task, a coroutine that was stepped once by hand.

    ``first`` is what its first step yielded (the future it waits on). asyncio
    resumes a coroutine with ``send(None)`` once that future is done, which is
    what delegating with ``yield from`` does; a cancellation thrown at the
    first wait is forwarded into the coroutine.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    async def run(self) -> Any:
        return await self

    def __await__(self) -> Generator[Any, Any, Any]:
        pending = self.first
        self.first = None
        coro = self.coro
        while True:
            try:
                value = yield pending
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = coro.send(value)
            except StopIteration as stop:
                return stop.value


class TrioTask:
    """A trio stand-in for ``asyncio.Task``: ``cancel()``, ``done()``, ``result()``, awaitable."""

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._cancelled = False

    def cancel(self) -> bool:
        """Request cancellation; True if the task had not finished."""
        if self._finished.is_set():
            return False
        self._scope.cancel()
        return True

    def done(self) -> bool:
        """Whether the task has finished, however."""
        return self._finished.is_set()

    def cancelled(self) -> bool:
        """Whether the task ended by cancellation."""
        return self._cancelled

    def result(self) -> Any:
        """The return value, or the exception it raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        await self._finished.wait()
        return self.result()


class TrioBackend(Backend):
    """trio: system tasks owned by the server, anyio events, an asyncio-like queue."""

    name = "trio"

    def __init__(self) -> None:
        super().__init__()
        import trio

        self._trio = trio

    def clock(self) -> Callable[[], float]:
        return self._trio.current_time  # type: ignore[no-any-return]

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        handle = TrioTask()
        self.tasks.add(handle)

        async def runner() -> None:
            try:
                with handle._scope:
                    handle._result = await fn(*args)
                if handle._scope.cancel_called:
                    handle._cancelled = True
            except Exception as exc:  # a system task must never raise
                handle._error = exc
                logging.getLogger("engineio_asgi").error("background task failed", exc_info=exc)
            finally:
                self.tasks.discard(handle)
                handle._finished.set()

        self._trio.lowlevel.spawn_system_task(runner)
        return handle

    def spawn_eager(self, coro: Coroutine[Any, Any, Any], chain: Any = None) -> Any:
        # trio parks *the current task* when a coroutine blocks, so a coroutine
        # cannot be started here and finished elsewhere: it gets its own task.
        # trio also runs new tasks in random order, so each waits for the one
        # before it to have started (and reached its first checkpoint).
        started = self._trio.Event()
        self._trio.lowlevel.spawn_system_task(
            _run_in_turn, chain, started, coro, context=contextvars.copy_context()
        )
        return started

    async def cancel_all(self, timeout: float = 5.0) -> None:
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        with anyio.move_on_after(timeout):
            for t in tasks:
                await t._finished.wait()

    def waker(self) -> Any:
        return _TrioWaker(self._trio.CancelScope())

    def create_event(self) -> Any:
        return ResettableEvent()

    def create_queue(self, maxsize: int = 0) -> Any:
        return Queue(maxsize)

    def queue_empty_exception(self) -> type[Exception]:
        return QueueEmpty


async def _run_in_turn(previous: Any, started: Any, coro: Coroutine[Any, Any, Any]) -> None:
    try:
        if previous is not None and not previous.is_set():
            await previous.wait()
        started.set()
        await coro
    except Exception as exc:
        logging.getLogger("engineio_asgi").error("handler failed", exc_info=exc)


class ResettableEvent:
    """An event with ``clear()``, as asyncio's has, on any anyio backend."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def clear(self) -> None:
        """Unset the flag (waiters that already woke are not affected)."""
        if self._event.is_set():
            self._event = anyio.Event()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self) -> bool:
        """Wait until the flag is set."""
        await self._event.wait()
        return True


class QueueEmpty(Exception):
    """Raised by :meth:`Queue.get_nowait` on an empty queue."""


class QueueFull(Exception):
    """Raised by :meth:`Queue.put_nowait` on a full queue."""


class Queue:
    """A FIFO queue with asyncio.Queue's methods, on any anyio backend."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque[Any] = deque()
        self._changed = anyio.Event()
        self._unfinished = 0
        self._all_done = anyio.Event()
        self._all_done.set()

    def qsize(self) -> int:
        """How many items are queued."""
        return len(self._items)

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self._items

    def full(self) -> bool:
        """Whether a bounded queue is at its bound."""
        return 0 < self.maxsize <= len(self._items)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` or raise :class:`QueueFull`."""
        if self.full():
            raise QueueFull()
        self._items.append(item)
        self._unfinished += 1
        if self._all_done.is_set():
            self._all_done = anyio.Event()
        self._notify()

    async def put(self, item: Any) -> None:
        """Queue ``item``, waiting for room in a bounded queue."""
        while self.full():
            await self._changed.wait()
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        """Take the oldest item or raise :class:`QueueEmpty`."""
        if not self._items:
            raise QueueEmpty()
        item = self._items.popleft()
        self._notify()
        return item

    async def get(self) -> Any:
        """Take the oldest item, waiting for one."""
        while not self._items:
            await self._changed.wait()
        return self.get_nowait()

    def task_done(self) -> None:
        """Mark one taken item as processed."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._all_done.set()

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        await self._all_done.wait()


class NoLoop:
    """The factories when no loop runs (import time): python-engineio's asyncio objects.

    They bind to a loop at first use (Python 3.10+), so a queue or event made at
    module level works once an asyncio server runs; under trio, make them from a
    handler or a startup hook instead.
    """

    name = "none"

    def create_event(self, *args: Any, **kwargs: Any) -> Any:
        """An ``asyncio.Event``."""
        import asyncio

        return asyncio.Event(*args, **kwargs)

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        """An ``asyncio.Queue``."""
        import asyncio

        return asyncio.Queue(*args, **kwargs)

    def queue_empty_exception(self) -> type[Exception]:
        """``asyncio.QueueEmpty``."""
        import asyncio

        return asyncio.QueueEmpty


NO_LOOP = NoLoop()

_BACKENDS: dict[str, type[Backend]] = {"asyncio": AsyncioBackend, "trio": TrioBackend}


def get_backend() -> Backend:
    """A backend for the loop running now."""
    name = sniffio.current_async_library()
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise RuntimeError(f"unsupported async library {name!r}") from None


INF = math.inf
