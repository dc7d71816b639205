"""Going on, as an asyncio task, with a coroutine that was stepped once by hand.

:meth:`~._backend.AsyncioBackend.spawn_eager` and
:meth:`~._backend.AsyncioBackend.run_detached` run a coroutine up to its first
suspension where they are called; only one that suspends gets a task, whose
coroutine is a :class:`_Resume` around it.
"""

from __future__ import annotations

from collections.abc import Coroutine as _abc_Coroutine
from typing import Any, Callable, Coroutine

__all__ = ["_Resume"]

_TAKEN: Any = object()  # a _Resume whose task has taken the first wait


class _Resume:
    """Continue, as an asyncio task's coroutine, a coroutine that was stepped once by hand.

    ``first`` is what its first step yielded (the future it waits on, or ``None``
    for a bare yield); the task's first step gets it back, and every later step
    is passed on: a value with ``send``, a cancellation with ``throw``. It is the
    task's coroutine itself (asyncio takes any ``collections.abc.Coroutine``),
    one object where a coroutine delegating to it would add two. With
    ``failed``, an ``Exception`` of the coroutine is handed to ``failed(key)``
    and the task ends normally; without, the task ends with it.
    """

    __slots__ = ("coro", "first", "failed", "key")

    def __init__(
        self,
        coro: Coroutine[Any, Any, object],
        first: object,
        failed: Callable[[str], object] | None = None,
        key: str = "",
    ) -> None:
        self.coro = coro
        self.first = first
        self.failed = failed
        self.key = key

    def run(self) -> _Resume:
        """Itself, for ``create_task(resume.run())``."""
        return self

    def send(self, value: object) -> object:
        first = self.first
        if first is not _TAKEN:
            self.first = _TAKEN
            return first
        try:
            return self.coro.send(value)
        except StopIteration:
            raise
        except Exception:
            if self.failed is None:
                raise
            self.failed(self.key)
            raise StopIteration from None

    def throw(self, kind: Any, value: Any = None, tb: Any = None) -> object:
        self.first = _TAKEN
        try:
            if value is None and tb is None:
                return self.coro.throw(kind)
            return self.coro.throw(kind, value, tb)
        except StopIteration:
            raise
        except Exception:
            if self.failed is None:
                raise
            self.failed(self.key)
            raise StopIteration from None

    def close(self) -> None:
        self.first = _TAKEN
        self.coro.close()

    def __await__(self) -> _Resume:
        return self

    def __iter__(self) -> _Resume:
        return self

    def __next__(self) -> object:
        return self.send(None)


# asyncio accepts a task's coroutine if it is a collections.abc.Coroutine
_abc_Coroutine.register(_Resume)
