"""Closing: why a session ends, who is told, and what the client still gets."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from ._names import CLOSE, CLOSED, CLOSING, OPENING, POLLING
from ._state import CoreState
from .errors import ErrorCode, ProtocolError
from .events import Event, SessionClosed
from .machine import SESSION, Input
from .routing import WS_CLOSE_NORMAL
from .session import CloseReason, Session

__all__ = ["CLOSE_INPUTS", "ClosingMixin"]

CLOSE_INPUTS = {
    CloseReason.SERVER_DISCONNECT: Input.SERVER_CLOSE,
    CloseReason.CLIENT_DISCONNECT: Input.CLOSE_PACKET,
    CloseReason.PING_TIMEOUT: Input.PING_TIMEOUT,
    CloseReason.TRANSPORT_CLOSE: Input.TRANSPORT_LOST,
    CloseReason.TRANSPORT_ERROR: Input.TRANSPORT_ERROR,
}
"""The input each close reason is to the session's machines."""
_new_event = tuple.__new__  # (skips a NamedTuple's Python-level __new__)


class ClosingMixin(CoreState):
    """Ending sessions: the close reasons, the CLOSE packet and its grace period."""

    def close(self, sid: str | None, now: float) -> Sequence[Event]:
        """The application ends session ``sid``, or every session if ``sid`` is None.

        The reason is ``server disconnect``; queued packets are still delivered,
        then the CLOSE packet. A session that is closing already (its CLOSE
        packet waits for a poll) ends at once; one whose handshake waits for the
        application's decision is refused. An unknown ``sid`` is ignored.
        """
        self._last_now = now
        if sid is None:
            sessions = list(self._sessions.values())
        else:
            session = self._sessions.get(sid)
            sessions = [session] if session is not None else []
        for session in sessions:
            if session.state is CLOSING:
                self._finish(session, Input.SERVER_CLOSE)
            else:
                self._close(session, CloseReason.SERVER_DISCONNECT, now)
        return self._take()

    def _close(self, session: Session, reason: CloseReason, now: float | None) -> None:
        state = session.state
        if state is CLOSED or state is CLOSING:
            return
        cause = CLOSE_INPUTS[reason]
        if state is OPENING:  # closed before the application accepted it: a refusal
            self._refuse_handshake(session, None, cause)
            return
        if now is None:
            now = self._last_now
        session.reason = reason
        session.heartbeat_machine.step(session, cause)
        if session.probe is not None:
            self._abort_upgrade(session, Input.UPGRADE_CANCELLED)
        self._events.append(_new_event(SessionClosed, (session.sid, reason)))
        closed = self._stats.closed
        closed[reason] = closed.get(reason, 0) + 1
        tell_client = reason is CloseReason.SERVER_DISCONNECT or reason is CloseReason.PING_TIMEOUT
        if session.transport is not POLLING:
            ws = session.ws
            if tell_client and ws is not None and not ws.closed:
                # queued packets go first, then CLOSE; _write finishes the session
                self._linger(session, now)
                self._write(ws)
                return
            session.outbox = ()
            if ws is not None:
                self._close_socket(ws, WS_CLOSE_NORMAL)
            self._drop(session, cause)
            return
        # polling: a held poll carries the last word; without one, only a server
        # disconnect waits (bounded) for the next poll to deliver its CLOSE.
        if session.poll is not None:
            if tell_client or reason is CloseReason.TRANSPORT_ERROR:
                session.queue(CLOSE)
            else:
                session.outbox = ()
                session.noop_pending = True
            self._drop(session, cause)
        elif reason is CloseReason.SERVER_DISCONNECT:
            self._linger(session, now)
        else:
            self._drop(session, cause)

    def _linger(self, session: Session, now: float) -> None:
        """Closing: the CLOSE packet waits for the transport, at most ``close_timeout``."""
        session.queue(CLOSE)
        SESSION.step(session, Input.CLOSE_QUEUED, now + self.config.close_timeout)
        self._schedule(session)

    def _drop(self, session: Session, cause: Input) -> None:
        """Forget the session; a held poll gets what is queued, a POST being read a 400."""
        SESSION.step(session, cause)
        session.poll_embargo = None
        session.heap_deadline = None  # its timer entries are stale from now on
        sessions = self._sessions
        sessions.pop(session.sid, None)
        self._answered.pop(session.answered_rid, None)
        heap = self._heap
        if len(heap) > 2 * len(sessions) + 64:
            # Stale entries would stay until their deadline, up to a heartbeat later.
            # Dropping them once they outnumber the live ones costs O(1) per closed
            # session, amortised.
            due = self._due = {
                k: sid
                for k, sid in self._due.items()
                if (s := sessions.get(sid)) is not None and s.heap_key == k and s.heap_deadline is not None
            }
            heap[:] = due
            heapq.heapify(heap)
        post = session.post
        if post is not None:
            # a client trickling its body must not hold the connection once the session is gone
            session.post = None
            del self._requests[post.rid]
            self._respond_error(post, ProtocolError(ErrorCode.UNKNOWN_SID, sid=session.sid))
        if session.poll is not None:
            self._answer_poll(session)

    def _finish(self, session: Session, cause: Input = Input.CLOSE_SENT) -> None:
        """A closing session has handed out its CLOSE packet (or ran out of time, or
        its transport closed, or the application closed it again)."""
        if session.state is CLOSED:
            return
        session.outbox = ()
        self._drop(session, cause)
        ws = session.ws
        if ws is not None:
            self._close_socket(ws, WS_CLOSE_NORMAL)
