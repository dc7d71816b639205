"""The objects python-engineio's API hands out, where asyncio's own cannot be used.

python-engineio promises asyncio objects (``start_background_task`` returns an
``asyncio.Task``, ``create_queue`` an ``asyncio.Queue``, ``create_event`` an
``asyncio.Event``). On asyncio, and when no loop runs yet, that is what an
application gets; on trio it gets these, with the same methods.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generator, Generic, TypeVar

import anyio

if TYPE_CHECKING:
    import asyncio  # imported when asyncio runs, not by importing this package

__all__ = ["NO_LOOP", "NoLoop", "Queue", "QueueEmpty", "QueueFull", "ResettableEvent", "TrioTask"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class TrioTask(Generic[T_co]):
    """A trio stand-in for ``asyncio.Task``: ``cancel()``, ``done()``, ``result()``, awaitable.

    The trio backend runs it and fills it in; ``result()`` is ``None`` until the
    task finished, and stays ``None`` if it was cancelled.
    """

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._result: T_co | None = None
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

    def result(self) -> T_co | None:
        """The return value, or the exception it raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def __await__(self) -> Generator[Any, Any, T_co | None]:
        return self._wait().__await__()

    async def _wait(self) -> T_co | None:
        await self._finished.wait()
        return self.result()


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


class Queue(Generic[T]):
    """A FIFO queue with asyncio.Queue's methods, on any anyio backend."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
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

    def put_nowait(self, item: T) -> None:
        """Queue ``item`` or raise :class:`QueueFull`."""
        if self.full():
            raise QueueFull()
        self._items.append(item)
        self._unfinished += 1
        if self._all_done.is_set():
            self._all_done = anyio.Event()
        self._notify()

    async def put(self, item: T) -> None:
        """Queue ``item``, waiting for room in a bounded queue."""
        while self.full():
            await self._changed.wait()
        self.put_nowait(item)

    def get_nowait(self) -> T:
        """Take the oldest item or raise :class:`QueueEmpty`."""
        if not self._items:
            raise QueueEmpty()
        item = self._items.popleft()
        self._notify()
        return item

    async def get(self) -> T:
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

    # the arguments go to asyncio untouched, so a bad one fails as it does on python-engineio
    def create_event(self, *args: Any, **kwargs: Any) -> asyncio.Event:
        """An ``asyncio.Event``."""
        import asyncio

        return asyncio.Event(*args, **kwargs)

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[object]:
        """An ``asyncio.Queue``."""
        import asyncio

        return asyncio.Queue(*args, **kwargs)

    def queue_empty_exception(self) -> type[Exception]:
        """``asyncio.QueueEmpty``."""
        import asyncio

        return asyncio.QueueEmpty


NO_LOOP = NoLoop()
