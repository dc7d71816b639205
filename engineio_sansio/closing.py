"""Closing: why a session ends, who is told, and what the client still gets."""

from __future__ import annotations

import heapq

from ._names import (
    CLOSE as _CLOSE,
)
from ._names import (
    CLOSED as _CLOSED,
)
from ._names import (
    CLOSING as _CLOSING,
)
from ._names import (
    OPENING as _OPENING,
)
from ._names import (
    WEBSOCKET as _WEBSOCKET,
)
from ._state import CoreState
from .events import CloseWebSocket, SessionClosed, TransportWritable
from .session import INF, CloseReason, Session
from .websocket import WS_CLOSE_NORMAL

__all__ = ["ClosingMixin"]


class ClosingMixin(CoreState):
    """Ending sessions: the close reasons, the CLOSE packet and its grace period."""

    def _close(self, session: Session, reason: CloseReason, now: float | None) -> None:
        state = session.state
        if state is _CLOSED or state is _CLOSING:
            return
        if now is None:
            now = self._last_now
        session.reason = reason
        session.next_ping = session.pong_deadline = INF
        if session.probe is not None:
            self._abort_upgrade(session)
        events = self.events
        if state is not _OPENING:
            events.append(SessionClosed(session, reason))
        tell_client = reason is CloseReason.SERVER_DISCONNECT or reason is CloseReason.PING_TIMEOUT
        if session.transport is _WEBSOCKET:
            ws = session.ws
            if tell_client and ws is not None and not ws.closed and state is not _OPENING:
                # queued packets go first, then CLOSE; take_frames finishes the session
                self._linger(session, now)
                events.append(TransportWritable(session))
                return
            session.outbox.clear()
            if ws is not None and not ws.closed:
                ws.closed = True
                events.append(CloseWebSocket(ws, WS_CLOSE_NORMAL))
            self._drop(session)
            return
        # polling: a held poll carries the last word; without one, only a server
        # disconnect waits (bounded) for the next poll to deliver its CLOSE.
        if session.poll_held:
            if tell_client or reason is CloseReason.TRANSPORT_ERROR:
                session.outbox.append(_CLOSE)
            else:
                session.outbox.clear()
                session.noop_pending = True
            events.append(TransportWritable(session))
            self._drop(session)
        elif reason is CloseReason.SERVER_DISCONNECT and state is not _OPENING:
            self._linger(session, now)
        else:
            self._drop(session)

    def _linger(self, session: Session, now: float) -> None:
        session.outbox.append(_CLOSE)
        session.set_state(_CLOSING)
        session.close_deadline = now + self.config.close_timeout
        self._schedule(session)

    def _drop(self, session: Session) -> None:
        session.set_state(_CLOSED)
        session.upgrade_deadline = session.close_deadline = session.poll_embargo = INF
        session.next_ping = session.pong_deadline = INF
        session.heap_deadline = INF  # its timer entries are stale from now on
        self.sessions.pop(session.sid, None)
        heap = self._heap
        if len(heap) > 2 * len(self.sessions) + 64:
            # Stale entries would keep closed sessions (and whatever the runtime
            # hangs on them: connections, buffers) alive until their deadline,
            # up to a heartbeat later. Dropping them once they outnumber the
            # live ones costs O(1) per closed session, amortised.
            heap[:] = [entry for entry in heap if entry[2].heap_deadline == entry[0]]
            heapq.heapify(heap)

    def _finish(self, session: Session) -> None:
        """A closing session has handed out its CLOSE packet (or ran out of time)."""
        if session.state is _CLOSED:
            return
        session.outbox.clear()
        self._drop(session)
        ws = session.ws
        if ws is not None and not ws.closed:
            ws.closed = True
            self.events.append(CloseWebSocket(ws, WS_CLOSE_NORMAL))
        elif session.poll_held:
            self.events.append(TransportWritable(session))

    def close_all(self, now: float) -> None:
        """Close every session (server shutdown): each gets a SessionClosed event."""
        for session in list(self.sessions.values()):
            if session.state is _OPENING:
                continue
            self._close(session, CloseReason.SERVER_DISCONNECT, now)

    def finish_all(self) -> None:
        """Drop every session still waiting to hand out its CLOSE (the server is going away)."""
        for session in list(self.sessions.values()):
            if session.state is _CLOSING:
                self._finish(session)
