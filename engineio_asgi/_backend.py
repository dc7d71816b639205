"""The little that differs between asyncio and trio, chosen per running loop.

The server reaches the loop only through :class:`Backend`; everything else in
the package is plain anyio. What python-engineio's API hands to applications
on trio (a queue, an event, a task handle) lives in :mod:`.compat`.
"""

from __future__ import annotations

import contextvars
import logging
from types import CoroutineType
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Protocol,
    TypeAlias,
    TypeVar,
    TypeVarTuple,
)

import anyio
import sniffio

from ._resume import _Resume
from .compat import NO_LOOP, NoLoop, Queue, QueueEmpty, ResettableEvent, TrioTask

if TYPE_CHECKING:
    # both imported only once their loop runs: trio is optional, and a trio
    # server need not import asyncio
    import asyncio

    import trio

__all__ = ["CANCELLED", "Backend", "Outcome", "Started", "TaskHandle", "get_backend"]
# moved to .compat; still importable from here
__all__ += ["NO_LOOP", "NoLoop", "Queue", "QueueEmpty", "ResettableEvent"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Ts = TypeVarTuple("Ts")

# A coroutine's yield and send types are its loop's private protocol (futures
# on asyncio, traps on trio); only the result is ours to state.
Coro: TypeAlias = Coroutine[Any, Any, T]

CANCELLED: Any = object()
"""The outcome of an awaitable of :meth:`Backend.run_detached` that was cancelled."""
# How an awaitable of run_detached ended: None (it returned), the Exception it
# raised, or CANCELLED
Outcome: TypeAlias = "BaseException | None"


class TaskHandle(Protocol[T_co]):
    """What :meth:`Backend.spawn` returns: an ``asyncio.Task``, or a :class:`~.compat.TrioTask`."""

    def cancel(self) -> bool:
        """Request cancellation; True if the task had not finished."""
        ...

    def done(self) -> bool:
        """Whether the task has finished, however."""
        ...

    def cancelled(self) -> bool:
        """Whether the task ended by cancellation."""
        ...

    def result(self) -> T_co | None:
        """The return value, or the exception it raised (``None`` from a cancelled trio task)."""
        ...

    def __await__(self) -> Generator[Any, Any, T_co | None]: ...


class Started(Protocol):
    """What :meth:`Backend.spawn_eager` returns: set once the coroutine it started has begun."""

    def is_set(self) -> bool:
        """Whether the coroutine has begun."""
        ...

    async def wait(self) -> object:
        """Wait until it has."""
        ...


class Backend(Protocol):
    """What the server needs from the event loop it runs on."""

    name: str

    @property
    def tasks(self) -> Collection[TaskHandle[object]]:
        """The running tasks :meth:`cancel_all` would cancel."""
        ...

    def clock(self) -> Callable[[], float]:
        """A cheap zero-argument monotonic clock of this loop."""
        ...

    def spawn(self, fn: Callable[[*Ts], Coro[T]], *args: *Ts) -> TaskHandle[T]:
        """Start ``fn(*args)`` as a task the server owns; return its handle."""
        ...

    def spawn_eager(
        self,
        coro: Coro[object],
        chain: Started | None = None,
        failed: Callable[[str], object] | None = None,
        key: str = "",
    ) -> Started | None:
        """Start ``coro`` concurrently, after every coroutine started before it on ``chain``.

        Handlers of one session start in arrival order and each runs up to its
        first suspension before the next starts, as they would inline. Returns
        the new chain value (keep it per session). On asyncio this runs the
        coroutine right now and only makes a task if it suspends, so a handler
        that does not block costs no task at all. An ``Exception`` the coroutine
        raises ends it: ``failed(key)`` is called while it is being handled (in
        the coroutine's context), or without ``failed`` it is logged. So an
        application's handler is started as it is, with no coroutine around it
        that would live as long as it does.
        """
        ...

    def run_detached(self, aw: Awaitable[object], in_task: bool = True) -> object:
        """Let ``aw`` (an ASGI ``send()``'s awaitable) run to its end without waiting for it here.

        ``in_task``: whether the caller runs in a task (not in a callback).

        Returns its outcome if it ended at once: ``None``, or the ``Exception`` it
        raised (:data:`CANCELLED` if it was cancelled). Else returns a pending
        handle for :meth:`watch`, which must be called with it at once. On
        asyncio a coroutine is stepped here and becomes a task only if it
        suspends, and a future of the loop (granian's ``send()`` returns one) is
        its own handle: no task at all. On trio a task of its own awaits it.
        """
        ...

    def watch(self, pending: Any, then: Callable[[Outcome], object]) -> None:
        """Call ``then(outcome)`` once the awaitable of ``pending`` (from :meth:`run_detached`) ends.

        The outcome is ``None``, the ``Exception`` it raised, or :data:`CANCELLED`
        (by :meth:`cancel_all` among others).
        """
        ...

    async def cancel_all(self, timeout: float = 5.0) -> None:
        """Cancel every task this backend started and wait (bounded) for them."""
        ...

    def enter_wakeable(self) -> Any:
        """Begin a wait in ``receive()`` that another task may end, with no object of its own
        (a held poll's, a POST's, a websocket reader's): that task records that it did
        (``woken``) and calls ``cancel()`` on what this returns (the current task on asyncio,
        a cancel scope entered now on trio). After the wait, :meth:`exit_wakeable`."""
        ...

    def exit_wakeable(self, handle: Any, woken: bool, exc: BaseException | None) -> bool:
        """End that wait, however: True if ``exc`` is the wake-up's, to be swallowed."""
        ...

    def create_event(self) -> asyncio.Event | ResettableEvent:
        """An event with ``set``, ``clear``, ``is_set`` and ``wait``."""
        ...

    def create_queue(self, maxsize: int = 0) -> asyncio.Queue[object] | Queue[object]:
        """A queue with asyncio.Queue's methods."""
        ...

    def queue_empty_exception(self) -> type[Exception]:
        """What ``get_nowait`` raises on an empty queue from :meth:`create_queue`."""
        ...


class AsyncioBackend:
    """asyncio: real ``asyncio`` tasks, events and queues, as python-engineio documents."""

    name = "asyncio"

    def __init__(self) -> None:
        import asyncio

        self.tasks: set[asyncio.Task[object]] = set()
        # the wake-ups call through the module: CPython 3.11 specializes a call of a
        # module's function, not one of a function stored on an instance
        self._asyncio: _AsyncioForWakers = asyncio
        self._loop = asyncio.get_running_loop()
        self._done_callback = self._done  # (one bound method, not one per task)
        # run_detached: what to call when each awaitable it watches ends, by its future
        self._then: dict[Any, Callable[[Outcome], object]] = {}
        self._settled_callback = self._settled
        # the context its callbacks run in, one for all (else the loop copies one per callback)
        self._callback_context = contextvars.copy_context()

    def clock(self) -> Callable[[], float]:
        import asyncio
        import time

        if type(self._loop).time is asyncio.BaseEventLoop.time:
            return time.monotonic  # what that method returns, without its Python frame
        return self._loop.time

    def spawn(self, fn: Callable[[*Ts], Coro[T]], *args: *Ts) -> asyncio.Task[T]:
        task = self._loop.create_task(fn(*args))
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def spawn_eager(
        self,
        coro: Coro[object],
        chain: Started | None = None,
        failed: Callable[[str], object] | None = None,
        key: str = "",
    ) -> None:
        # Each coroutine gets its own copy of the context, as each handler does in
        # python-engineio (a task of its own): what one sets, no other sees.
        ctx = contextvars.copy_context()
        try:
            first = ctx.run(coro.send, None)
        except StopIteration:
            return None
        except Exception as exc:
            if failed is None:
                logging.getLogger("engineio_asgi").error("handler failed", exc_info=exc)
            else:
                ctx.run(failed, key)
            return None
        except BaseException as exc:
            logging.getLogger("engineio_asgi").error("handler failed", exc_info=exc)
            return None
        # It suspended: the task goes on with it, in the same context. (The task's
        # coroutine is the _Resume itself; the done callback runs in that context
        # too, else asyncio would copy the current one for it.)
        resume: Coro[object] = _Resume(coro, first, failed, key)  # type: ignore[assignment]
        task = self._loop.create_task(resume, context=ctx)
        self.tasks.add(task)
        task.add_done_callback(self._done_callback, context=ctx)
        return None

    def _done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger("engineio_asgi").error("background task failed", exc_info=task.exception())

    def run_detached(self, aw: Awaitable[object], in_task: bool = True) -> object:
        if type(aw) is CoroutineType:
            if not in_task:
                # called from a callback (a write going on after the last one ended):
                # the coroutine may need a task of its own from its first step
                task = self._loop.create_task(aw, context=contextvars.copy_context())
            else:
                # stepped here, in the caller's context (an ASGI send() does not read
                # it, and a copy per write is what this saves)
                try:
                    first = aw.send(None)
                except StopIteration:
                    return None
                except Exception as exc:
                    return exc
                # It suspended: a task goes on with it (uvicorn's send() waiting for
                # the socket to drain), and is watched like a future.
                resume: Coro[object] = _Resume(aw, first)  # type: ignore[assignment]
                task = self._loop.create_task(resume, context=contextvars.copy_context())
            self.tasks.add(task)
            return task
        if getattr(aw, "_asyncio_future_blocking", None) is not None:
            # a future of the loop (asyncio's protocol): granian's send() returns one
            # that is not done yet, its write under way in granian's own threads
            if aw.done():  # type: ignore[attr-defined]
                return _outcome(aw)
            return aw
        return self.run_detached(_await(aw), in_task)  # an awaitable of another kind: a coroutine awaits it

    def watch(self, pending: Any, then: Callable[[Outcome], object]) -> None:
        self._then[pending] = then
        # (granian's future keeps one done callback: this is it)
        pending.add_done_callback(self._settled_callback, context=self._callback_context)

    def _settled(self, future: Any) -> None:
        then = self._then.pop(future)
        self.tasks.discard(future)
        try:
            then(_outcome(future))
        except Exception as exc:
            logging.getLogger("engineio_asgi").error("background task failed", exc_info=exc)

    async def cancel_all(self, timeout: float = 5.0) -> None:
        import asyncio

        current = asyncio.current_task()
        # the futures run_detached watches (its tasks are among self.tasks): each
        # one's callback is told CANCELLED
        for future in list(self._then):
            future.cancel()
        tasks = [t for t in self.tasks if t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            with anyio.move_on_after(timeout):
                await asyncio.gather(*tasks, return_exceptions=True)

    def enter_wakeable(self) -> asyncio.Task[object] | None:
        return self._asyncio.current_task(self._loop)

    def exit_wakeable(self, handle: Any, woken: bool, exc: BaseException | None) -> bool:
        # (ours, unless someone else cancelled the task too)
        return woken and isinstance(exc, self._asyncio.CancelledError) and handle.uncancel() == 0

    def create_event(self) -> asyncio.Event:
        import asyncio

        return asyncio.Event()

    def create_queue(self, maxsize: int = 0) -> asyncio.Queue[object]:
        import asyncio

        return asyncio.Queue(maxsize)

    def queue_empty_exception(self) -> type[Exception]:
        import asyncio

        return asyncio.QueueEmpty


def _outcome(future: Any) -> Outcome:
    """How a done future of :meth:`AsyncioBackend.run_detached` ended."""
    if future.cancelled():
        return CANCELLED  # type: ignore[no-any-return]
    try:
        future.result()
    except Exception as exc:
        return exc
    return None


async def _await(aw: Awaitable[object]) -> None:
    await aw


class _AsyncioForWakers(Protocol):
    """What the wake-ups use of the asyncio module (imported only when asyncio runs)."""

    @property
    def CancelledError(self) -> type[BaseException]: ...  # noqa: N802 (the module's name for it)

    def current_task(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task[object] | None: ...


class TrioBackend:
    """trio: system tasks owned by the server, anyio events, an asyncio-like queue."""

    name = "trio"

    def __init__(self) -> None:
        import trio

        self.tasks: set[TrioTask[object]] = set()
        self._current_time = trio.current_time
        self._cancel_scope = trio.CancelScope
        self._spawn_system_task = trio.lowlevel.spawn_system_task

    def clock(self) -> Callable[[], float]:
        return self._current_time

    def spawn(self, fn: Callable[[*Ts], Coro[T]], *args: *Ts) -> TrioTask[T]:
        handle: TrioTask[T] = TrioTask()
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

        self._spawn_system_task(runner)
        return handle

    def spawn_eager(
        self,
        coro: Coro[object],
        chain: Started | None = None,
        failed: Callable[[str], object] | None = None,
        key: str = "",
    ) -> _TrioStarted:
        # trio parks *the current task* when a coroutine blocks, so a coroutine
        # cannot be started here and finished elsewhere: it gets its own task.
        # trio also runs new tasks in random order, so each waits for the one
        # before it to have started (and reached its first checkpoint).
        started = _TrioStarted()
        self._spawn_system_task(
            _run_in_turn, chain, started, coro, failed, key, context=contextvars.copy_context()
        )
        return started

    def run_detached(self, aw: Awaitable[object], in_task: bool = True) -> _TrioDetached:
        # trio parks the current task when a coroutine blocks: a task of its own
        # awaits it (as spawn_eager's do)
        pending = _TrioDetached()
        self._spawn_system_task(_await_then, aw, pending, context=contextvars.copy_context())
        return pending

    def watch(self, pending: Any, then: Callable[[Outcome], object]) -> None:
        pending.then = then  # (its task has not started yet: it starts once this task waits)

    async def cancel_all(self, timeout: float = 5.0) -> None:
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        with anyio.move_on_after(timeout):
            for t in tasks:
                await t._finished.wait()

    def enter_wakeable(self) -> trio.CancelScope:
        scope = self._cancel_scope()
        scope.__enter__()
        return scope

    def exit_wakeable(self, handle: Any, woken: bool, exc: BaseException | None) -> bool:
        if exc is None:
            return handle.__exit__(None, None, None)  # type: ignore[no-any-return]
        return handle.__exit__(type(exc), exc, exc.__traceback__)  # type: ignore[no-any-return]

    def create_event(self) -> ResettableEvent:
        return ResettableEvent()

    def create_queue(self, maxsize: int = 0) -> Queue[object]:
        return Queue(maxsize)

    def queue_empty_exception(self) -> type[Exception]:
        return QueueEmpty


class _TrioStarted:
    """Whether a coroutine of :meth:`TrioBackend.spawn_eager` has begun: a flag, and a
    ``trio.Event`` only if someone waits before it is set (the rare case)."""

    __slots__ = ("flag", "event")

    def __init__(self) -> None:
        self.flag = False
        self.event: trio.Event | None = None

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True
        if self.event is not None:
            self.event.set()

    async def wait(self) -> bool:
        if not self.flag:
            if self.event is None:
                import trio

                self.event = trio.Event()
            await self.event.wait()
        return True


async def _run_in_turn(
    previous: Started | None,
    started: _TrioStarted,
    coro: Coro[object],
    failed: Callable[[str], object] | None,
    key: str,
) -> None:
    try:
        if previous is not None and not previous.is_set():
            await previous.wait()
        started.set()
        await coro
    except Exception as exc:
        if failed is None:
            logging.getLogger("engineio_asgi").error("handler failed", exc_info=exc)
        else:
            failed(key)


class _TrioDetached:
    """What :meth:`TrioBackend.run_detached` returns: where :meth:`TrioBackend.watch` puts ``then``."""

    __slots__ = ("then",)

    def __init__(self) -> None:
        self.then: Callable[[Outcome], object] | None = None


async def _await_then(aw: Awaitable[object], pending: _TrioDetached) -> None:
    outcome: Outcome = CANCELLED
    try:
        await aw
        outcome = None
    except Exception as exc:
        outcome = exc
    finally:
        then = pending.then
        if then is not None:
            try:
                then(outcome)
            except Exception as exc:  # a system task must never raise
                logging.getLogger("engineio_asgi").error("background task failed", exc_info=exc)


# typed as Backend: mypy checks that each implementation satisfies the protocol
_BACKENDS: dict[str, Callable[[], Backend]] = {"asyncio": AsyncioBackend, "trio": TrioBackend}


def get_backend() -> Backend:
    """A backend for the loop running now."""
    name = sniffio.current_async_library()
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise RuntimeError(f"unsupported async library {name!r}") from None
