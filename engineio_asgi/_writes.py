"""Websocket writes that go on without a task each: a broadcast's, and the timer driver's pings.

A write nobody waits for in line (the ping the timer driver hands out, each
recipient's packets of a python-socketio emit) calls the connection's ASGI
``send()`` and lets the backend run what that returns to its end
(:meth:`~._backend.Backend.run_detached`). Where ``send()`` completes at once
(uvicorn, mostly) the next frame goes at once; where it returns a future that
completes later (granian, always) a :class:`_Write` keeps where the write stands
and the future's done callback goes on with it: no task is made. When its frames are out the core is told
(``frames_sent``), and what it hands out next for the same websocket (the
messages queued meanwhile) is written the same way; a failed write is
``send_failed``, as for a write awaited in line. Each websocket has at most one
write out at a time (the core's), so a slow client's messages wait in its queue
and hold up no other.

The timer driver's writes (its pings) go out one at a time (:class:`Pings`): the
next once the last has ended, as a heartbeat that awaits each ping does. When
many sessions were opened together their pings fall due together, and on
granian a batch of them written at once (each ``send()`` a future that completes
later, from granian's own threads) held up the messages of other clients that
arrived meanwhile: p99 1.6-1.7 times that of a heartbeat awaiting each ping at 5,000-10,000
held sessions (docs/benchmarks.md, "granian: pings one at a time").
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable, Sequence

from engineio_sansio import Data, Event, SendFrames

from ._backend import CANCELLED, Outcome
from ._state import RuntimeState, WSConn

__all__ = ["Broadcast", "Pings", "WritesMixin"]

# A ping write out longer than this no longer holds up the ones due after it: they all
# go at once, as writes that nobody waits for (a client that stopped reading)
PING_HOLD = 0.01


class _Group:
    """Writes that someone follows to their end: told when each that waits begins and ends."""

    __slots__ = ()

    def started(self, write: _Write) -> None:
        raise NotImplementedError

    def ended(self) -> None:
        raise NotImplementedError


class Broadcast(_Group):
    """The writes one broadcast started: :meth:`wait` returns once each has ended."""

    __slots__ = ("count", "event", "logger")

    def __init__(self, logger: object) -> None:
        self.count = 0  # writes (and sends of another kind) not ended yet
        self.event: object = None  # the backend's event, made only if someone waits
        self.logger = logger

    def started(self, write: _Write) -> None:
        self.count += 1

    def ended(self) -> None:
        """One of its writes has ended, however."""
        self.count -= 1
        if self.count == 0 and self.event is not None:
            self.event.set()  # type: ignore[attr-defined]

    async def wait(self) -> None:
        """Return once every write has ended."""
        if self.count:
            await self.event.wait()  # type: ignore[attr-defined]

    def __call__(self, outcome: Outcome) -> None:
        """A send of another kind (a polling session's) has ended."""
        if outcome is not None and outcome is not CANCELLED:
            self.logger.error("send failed", exc_info=outcome)  # type: ignore[attr-defined]
        self.ended()


def _write(
    server: WritesMixin,
    conn: WSConn,
    rid: int,
    frames: tuple[Data, ...],
    batch: _Group | None,
    resumed: _Write | None = None,
    start: int = 0,
    in_task: bool = True,
) -> None:
    """Write ``frames`` (from index ``start``) to websocket ``rid``, as far as ``send()``
    completes at once; the rest goes on from a :class:`_Write` once the ``send()`` that
    waits has ended (``resumed``: the one that goes on now, kept for the next wait).
    ``in_task``: whether the caller runs in a task (a write that goes on does so from a
    done callback)."""
    backend = server._backend
    run_detached = backend.run_detached  # type: ignore[union-attr]
    in_task = in_task and resumed is None
    i = start
    while True:
        count = len(frames)
        while i < count:
            frame = frames[i]
            i += 1
            try:
                if type(frame) is str:
                    outcome = run_detached(conn.send({"type": "websocket.send", "text": frame}), in_task)
                else:
                    outcome = run_detached(conn.send({"type": "websocket.send", "bytes": frame}), in_task)
            except Exception as exc:  # send() itself raised
                outcome = exc
            if outcome is None:
                continue
            if outcome is CANCELLED:  # as a cancelled task: nothing more
                if resumed is not None:
                    resumed.end()
                return
            if isinstance(outcome, BaseException):
                if resumed is not None:
                    resumed.end()
                _failed(server, conn, rid, outcome)
                return
            # it waits: the rest goes on once it has ended
            if resumed is None:
                resumed = _Write(server, conn, rid, frames, i, batch)
            else:
                resumed.frames = frames
                resumed.next = i
            backend.watch(outcome, resumed)  # type: ignore[union-attr]
            return
        # the frames are out: the core is told, and gives what was queued meanwhile
        events = server._core.frames_sent(rid)
        if events:
            ev = events[0]
            if len(events) == 1 and type(ev) is SendFrames and ev.request_id == rid and not conn.close_sent:
                frames = ev.frames  # this write goes on with them
                i = 0
                continue
            server._perform_later(events)
        if resumed is not None:
            resumed.end()
        return


def _failed(server: WritesMixin, conn: WSConn, rid: int, exc: BaseException) -> None:
    """A write failed: the peer is gone, which the core reports as a close."""
    server.logger.info("sid %s: websocket write failed (%s)", conn.sid, exc)
    conn.close_sent = True
    events = server._core.send_failed(rid, server._clock())
    if events:
        server._perform_later(events)


class _Write:
    """A websocket write whose ``send()`` waits: it goes on when the backend calls it."""

    __slots__ = ("server", "conn", "rid", "frames", "next", "batch")

    def __init__(
        self,
        server: WritesMixin,
        conn: WSConn,
        rid: int,
        frames: tuple[Data, ...],
        position: int,
        batch: _Group | None,
    ) -> None:
        self.server = server
        self.conn = conn
        self.rid = rid
        self.frames = frames
        self.next = position  # the index of the next frame to hand to send()
        self.batch = batch
        if batch is not None:
            batch.started(self)

    def __call__(self, outcome: Outcome) -> None:
        """The backend: the last frame's ``send()`` has ended."""
        if outcome is None:
            _write(self.server, self.conn, self.rid, self.frames, None, self, self.next)
        elif outcome is CANCELLED:  # the server is stopping: as a cancelled task, nothing more
            self.end()
        else:
            self.end()
            _failed(self.server, self.conn, self.rid, outcome)

    def end(self) -> None:
        batch = self.batch
        if batch is not None:
            self.batch = None
            batch.ended()


class Pings(_Group):
    """The timer driver's writes, one out at a time, the others queued in due order.

    The next starts once the one out has ended (at once where ``send()`` completes
    at once, as uvicorn's mostly does: then all go in one call, as before). A write
    out longer than :data:`PING_HOLD` holds up no more: the driver (which wakes by
    :meth:`hold_until`) lets the queued ones go at once, as it does when the server
    is closing.
    """

    __slots__ = ("server", "queue", "current", "since")

    def __init__(self, server: WritesMixin) -> None:
        self.server = server
        self.queue: deque[tuple[int, tuple[Data, ...]]] = deque()
        self.current: _Write | None = None  # the write out, if its send() waits
        self.since = 0.0  # when it began waiting

    def write(self, rid: int, frames: tuple[Data, ...]) -> None:
        """A ``SendFrames`` of the timer driver's (called in its task)."""
        if self.current is None and not self.queue:
            self.server._start_write(rid, frames, self)
        else:
            self.queue.append((rid, frames))

    def started(self, write: _Write) -> None:
        self.current = write
        self.since = self.server._clock()

    def ended(self) -> None:
        """The write out has ended, however: the next goes (from a done callback)."""
        self.current = None
        queue = self.queue
        server = self.server
        if server._closing:
            self.release(False)
            return
        while queue and self.current is None:
            rid, frames = queue.popleft()
            server._start_write(rid, frames, self, False)

    def hold_until(self) -> float:
        """When the write out stops holding up the queued ones (``inf``: none waits)."""
        return self.since + PING_HOLD if self.current is not None and self.queue else math.inf

    def check(self, now: float) -> None:
        """The driver's wake-up: a write out too long goes on alone, the queued ones at once."""
        if now >= self.hold_until():
            self.release(True)

    def release(self, in_task: bool) -> None:
        """Start every queued write now, none waiting for another."""
        current = self.current
        if current is not None:
            current.batch = None  # it goes on alone
            self.current = None
        queue = self.queue
        while queue:
            rid, frames = queue.popleft()
            self.server._start_write(rid, frames, None, in_task)


class WritesMixin(RuntimeState):
    """Writes that go on by themselves: the timer driver's, and broadcasts."""

    _pings: Pings  # the timer driver's writes

    def _start_write(
        self, rid: int, frames: tuple[Data, ...], batch: _Group | None = None, in_task: bool = True
    ) -> None:
        """Write a ``SendFrames``' frames to websocket ``rid`` without waiting for it here."""
        conn = self._ws.get(rid)
        if conn is None:
            return  # reported gone: the core no longer waits for it
        if conn.close_sent:  # closed (or its server stopped it): nothing can be written
            events = self._core.send_failed(rid, self._clock())
            if events:
                self._perform_later(events)
            return
        _write(self, conn, rid, frames, batch, in_task=in_task)

    def _perform_later(self, events: Sequence[Event]) -> None:
        """Perform events that a write's end caused, in a task (they may run handlers)."""
        backend = self._backend
        if backend is not None:
            backend.spawn(self._perform, events)

    def _broadcast(self, sids: Iterable[str], items: list[Data]) -> Broadcast | None:
        """Send ``items`` (messages) to each session of ``sids``, none waiting for another.

        Returns ``None`` if every send has ended already, else the
        :class:`Broadcast` to wait for. Each session gets its items in order, and
        a session that cannot take them at once (a websocket still writing,
        polling) queues them, as ``send()`` does.
        """
        core = self._core
        sockets = self._ws
        backend = self._backend
        batch = Broadcast(self.logger)
        for sid in sids:
            for data in items:
                try:
                    events = core.send(sid, data)
                except Exception:
                    self.logger.exception("sid %s: send failed", sid)
                    continue
                if events is None:
                    why = "session is closing" if sid in self._sessions else "no such session"
                    self.logger.warning("cannot send to sid %s: %s", sid, why)
                    continue
                if not events:
                    continue  # queued
                ev = events[0]
                if len(events) == 1 and type(ev) is SendFrames:  # an idle websocket's (the usual)
                    rid = ev.request_id
                    conn = sockets.get(rid)
                    if conn is not None and not conn.close_sent:
                        _write(self, conn, rid, ev.frames, batch)
                        continue
                outcome = backend.run_detached(self._perform(events))  # type: ignore[union-attr]
                if outcome is None or outcome is CANCELLED:
                    continue
                if isinstance(outcome, BaseException):
                    self.logger.error("sid %s: send failed", sid, exc_info=outcome)
                    continue
                batch.count += 1
                backend.watch(outcome, batch)  # type: ignore[union-attr]
        if batch.count == 0:
            return None
        batch.event = backend.create_event()  # type: ignore[union-attr]
        return batch
