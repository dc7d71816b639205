"""Performing the core's events, and the one timer driver that feeds it the time."""

from __future__ import annotations

import math
from typing import Sequence

import anyio

from engineio_sansio import (
    AcceptWebSocket,
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    Data,
    Event,
    MessageReceived,
    RequestRefused,
    Respond,
    SendFrames,
    SessionClosed,
    Upgraded,
)

from ._state import WSConn, wake
from ._writes import WritesMixin

__all__ = ["EventsMixin"]

_LAG_WINDOW = 60.0  # seconds over which the timer driver's largest lag is kept
_LATE_CLOSE_TICK = 0.25  # a websocket's late close happens at most this long after its grace
_REASONS = {r: r.value for r in CloseReason}  # (an Enum's .value is a Python-level call)


class EventsMixin(WritesMixin):
    """Every event the core hands out is performed here, in order."""

    async def _perform(self, events: Sequence[Event]) -> None:
        """Perform ``events`` in order; events they cause are performed as they come."""
        for ev in events:
            kind = type(ev)
            if kind is MessageReceived:
                await self._on_message(ev.sid, ev.data)  # type: ignore[union-attr]
            elif kind is SendFrames:
                await self._write_frames(ev.request_id, ev.frames)  # type: ignore[union-attr]
            elif kind is Respond:
                self._deliver(ev)  # type: ignore[arg-type]
            elif kind is SessionClosed:
                await self._on_closed(ev.sid, _REASONS[ev.reason])  # type: ignore[union-attr]
            elif kind is CloseWebSocket:
                await self._close_websocket(ev)  # type: ignore[arg-type]
            elif kind is AcceptWebSocket:
                await self._accept_websocket(ev)  # type: ignore[arg-type]
            elif kind is ConnectRequest:
                await self._connect(ev)  # type: ignore[arg-type]
            elif kind is Upgraded:
                await self._upgraded(ev)  # type: ignore[arg-type]
            elif kind is RequestRefused:
                self._refused(ev)  # type: ignore[arg-type]

    def _perform_detached(self, events: Sequence[Event]) -> None:
        """Perform events from the timer driver: nothing here may block it."""
        backend = self._backend
        if backend is None:
            return
        for ev in events:
            kind = type(ev)
            if kind is SendFrames:  # a ping, mostly: written without a task, one at a time
                self._pings.write(ev.request_id, ev.frames)  # type: ignore[union-attr]
            elif kind is Respond:
                self._deliver(ev)  # type: ignore[arg-type]
            elif kind is RequestRefused:
                self._refused(ev)  # type: ignore[arg-type]  # while its request is still known
            else:
                backend.spawn_eager(self._perform((ev,)))

    def _deliver(self, ev: Respond) -> None:
        """Hand a response to the task serving its request (it writes it)."""
        pending = self._http.get(ev.request_id)
        if pending is not None:
            pending.response = ev
            wake(pending)
            if pending.sid is not None and ev.status != 200:
                self._sessions.pop(pending.sid, None)  # a handshake refused
            return
        conn = self._ws.get(ev.request_id)
        if conn is not None:  # a websocket handshake refused
            conn.denied = ev
            if conn.sid is not None:
                self._sessions.pop(conn.sid, None)

    async def _upgraded(self, ev: Upgraded) -> None:
        rt = self._sessions.get(ev.sid)
        conn = self._ws.get(ev.request_id)
        if rt is not None:
            # a WebTransport session reaches the server as a websocket-shaped connection
            webtransport = conn is not None and conn.scope.get("type") == "webtransport"
            rt.transport = "webtransport" if webtransport else "websocket"
        for listener in self._upgrade_listeners:
            listener(ev.sid)
        if conn is not None:
            conn.sid = ev.sid
            conn.carrier = True
        await self._on_upgraded(ev.sid)

    # --- websockets ------------------------------------------------------------

    async def _accept_websocket(self, ev: AcceptWebSocket) -> None:
        conn = self._ws.get(ev.request_id)
        if conn is None:
            return
        conn.accepted = True
        headers = ev.headers
        if self._header_hooks:
            headers = list(headers)
            await self._hook_headers(conn.scope, conn.receive, conn.send, headers)
        try:
            if headers:
                await conn.send({"type": "websocket.accept", "headers": headers})
            else:
                await conn.send({"type": "websocket.accept"})
        except Exception as exc:  # the client is gone already
            self.logger.info("websocket accept failed (%s)", exc)
            await self._sent(conn.rid, failed=True)

    async def _write_frames(self, rid: int, frames: tuple[Data, ...]) -> None:
        conn = self._ws.get(rid)
        if conn is None:
            return  # reported gone: the core no longer waits for it
        if conn.close_sent:  # closed (or its server stopped it): nothing can be written
            await self._sent(rid, failed=True)
            return
        send = conn.send
        try:
            for frame in frames:
                if type(frame) is str:
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except Exception as exc:  # the peer is gone: the core reports it as a close
            self.logger.info("sid %s: websocket write failed (%s)", conn.sid, exc)
            conn.close_sent = True
            await self._sent(rid, failed=True)
            return
        await self._sent(rid, failed=False)

    async def _sent(self, rid: int, *, failed: bool) -> None:
        core = self._core
        events = core.send_failed(rid, self._clock()) if failed else core.frames_sent(rid)
        if events:
            await self._perform(events)

    async def _close_websocket(self, ev: CloseWebSocket) -> None:
        conn = self._ws.get(ev.request_id)
        if conn is None or conn.close_code is not None:
            return
        if ev.grace and conn.reader is not None and not conn.stopping:
            # After a CLOSE packet either way, an Engine.IO client closes the websocket
            # itself. Closing it from here at the same moment races its close frame,
            # which hypercorn on trio does not survive (the worker process dies of
            # BusyResourceError, taking every other connection with it), so the
            # client gets a moment to do it first.
            # The timer driver closes it at the end of the grace period, unless its
            # reader has ended by then (no task, event or cancel scope per websocket).
            if not conn.close_later:
                conn.close_later = True
                # on a tick, so that the closes of many websockets share a wake-up of
                # the driver (most are forgotten before it: their clients close them)
                at = math.ceil((self._clock() + ev.grace) / _LATE_CLOSE_TICK) * _LATE_CLOSE_TICK
                self._late_closes[conn] = (at, ev.code)
                if at < self._late_tick:
                    self._late_tick = at  # kept when the websocket goes before it: no wake-up each
                    self._timer_changed()
            return
        conn.close_code = ev.code
        await self._send_close(conn)

    def _close_late(self, now: float) -> None:
        """Close the websockets whose client did not close them within the grace period."""
        late = self._late_closes
        while late:
            conn = next(iter(late))
            deadline, code = late[conn]
            if deadline > now:
                self._late_tick = deadline  # (the grace is the same for every websocket: the rest come later)
                return
            del late[conn]
            if conn.reader is not None and conn.close_code is None:
                conn.close_code = code
                if conn.in_receive:  # the reader sends the close (see _send_close)
                    wake(conn)
        self._late_tick = math.inf

    async def _send_close(self, conn: WSConn) -> None:
        if conn.reader is not None:
            # The reader sends it: granian will not send a close while another task
            # waits in receive(). A reader busy in a handler sees close_code when it
            # comes back; one waiting for a frame is woken.
            if conn.in_receive:
                wake(conn)
            return
        if conn.close_sent:
            return
        conn.close_sent = True
        try:
            await conn.send({"type": "websocket.close", "code": conn.close_code or 1000})
        except Exception:
            pass  # already gone: nothing left to tell it

    # --- the timer driver ------------------------------------------------------

    def _timer_changed(self) -> None:
        """Make sure the timer driver runs and will wake by the core's next deadline."""
        deadline = self._next_wake()
        # the driver wakes at its deadline plus the slack: a deadline it waits for
        # already (the usual case, a new session's is later) needs no wake-up
        if deadline is None or deadline + self._timer_slack >= self._timer_target:
            return
        if self._timer_task is None:
            if self._backend is None or self._closing:
                return
            self._timer_task = self._backend.spawn(self._timer_loop)
        elif self._timer_wake is not None:
            self._timer_wake.set()

    def _timer_late(self, lag: float, now: float) -> None:
        """Record how late a wake-up ran: the sign of an event loop blocked by something."""
        stats = self._stats
        stats.timer_wakeups += 1
        stats.timer_lag = lag
        if now - self._lag_window >= _LAG_WINDOW:
            self._lag_window = now
            stats.timer_lag_max = lag
        elif lag > stats.timer_lag_max:
            stats.timer_lag_max = lag

    async def _timer_loop(self) -> None:
        core = self._core
        clock = self._clock
        while True:
            deadline = self._next_wake()
            wake = self._timer_wake = anyio.Event()
            if deadline is None:
                self._timer_target = float("inf")
                await wake.wait()
                continue
            # wake a little late rather than early, so neighbouring deadlines share one wake-up
            self._timer_target = deadline + self._timer_slack
            delay = self._timer_target - clock()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await wake.wait()
            target = self._timer_target
            self._timer_target = float("inf")
            now = clock()
            if now >= target:  # woken by the deadline (not early, by a nearer one)
                self._timer_late(now - target, now)
            events = core.handle_timer(now)
            if events:
                self._perform_detached(events)
            # (not kept while the loop sleeps: a batch of pings' events would live until
            # the next deadline and be moved up a generation by any collection meanwhile)
            del events
            self._pings.check(now)
            if self._late_tick <= now:
                self._close_late(now)

    def _next_wake(self) -> float | None:
        """The timer driver's next deadline: the core's, the tick of websockets' late closes,
        or when a ping write out stops holding up the ones queued behind it."""
        deadline = self._core.next_deadline()
        tick = min(self._late_tick, self._pings.hold_until())
        if tick != math.inf and (deadline is None or tick < deadline):
            return tick
        return deadline
