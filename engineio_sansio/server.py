"""The server core: one object holding every session, fed requests, frames and time.

Nothing here does I/O or reads a clock. A runtime tells the core what happened
(a request, part of a body, a websocket frame, a connection gone, a write done
or failed, the application's decisions, the time ``now``); each of these
methods returns the events it caused, which the runtime performs in order. It
calls :meth:`Server.handle_timer` when :meth:`Server.next_deadline` comes.

The work is split by job: :mod:`.routing` (requests and the handshake),
:mod:`.polling`, :mod:`.websocket` (and the upgrade), :mod:`.webtransport`,
:mod:`.closing`; this
module holds the timers and the application's sending.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, Sequence

from ._names import (
    CLOSE_TYPE,
    CLOSED,
    CLOSING,
    MESSAGE,
    NOOP_TYPE,
    OPEN,
    PING,
    PING_TYPE,
    POLLING,
    PONG_TYPE,
    WEBSOCKET,
)
from .closing import ClosingMixin
from .config import ServerConfig
from .events import Event, SendFrames
from .machine import Heartbeat, Input, Upgrade
from .packet import SHARED_FRAME_MIN, Data, Packet, shared_text_frame
from .polling import UPGRADE_POLL_GRACE, PollingMixin
from .routing import UNAUTHORIZED_BODY, RoutingMixin, default_sid, open_packet_parts
from .session import CloseReason, PendingRequest, Session, WebSocket
from .stats import Stats
from .websocket import (
    CLIENT_CLOSE_GRACE,
    WS_CLOSE_NORMAL,
    WS_CLOSE_POLICY,
    WS_CLOSE_PROTOCOL,
    WS_CLOSE_TOO_BIG,
    WebSocketMixin,
)
from .webtransport import StreamEntry, WebTransportMixin

__all__ = [
    "CLIENT_CLOSE_GRACE",
    "UNAUTHORIZED_BODY",
    "UPGRADE_POLL_GRACE",
    "WS_CLOSE_NORMAL",
    "WS_CLOSE_POLICY",
    "WS_CLOSE_PROTOCOL",
    "WS_CLOSE_TOO_BIG",
    "Server",
]


class Server(RoutingMixin, PollingMixin, WebSocketMixin, WebTransportMixin, ClosingMixin):
    """The Engine.IO server core; one per server, holding every session.

    ``sid_generator`` makes session ids (tests, or a runtime with ids of its
    own); ids must be unique, and the core retries on a collision. ``stats``
    receives the server's counters (a :class:`~engineio_sansio.Stats`): keep a
    reference to it and call its ``snapshot()`` to read them; one is made when
    not given.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        sid_generator: Callable[[], str] = default_sid,
        stats: Stats | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self._sid_generator = sid_generator
        self._sessions: dict[str, Session] = {}
        self._stats = stats if stats is not None else Stats()
        self._stats._bind(self._sessions)
        self._events: list[Event] = []
        self._requests: dict[int, PendingRequest] = {}
        self._sockets: dict[int, WebSocket] = {}
        self._streams: dict[int, StreamEntry] = {}
        self._answered: dict[int, Session] = {}
        self._next_rid = 0
        # The timer: a heap of keys, each naming one session's entry in _due. A key is
        # the deadline, or a few ulps after it when another entry has that time: no
        # tuple per entry, which would be one more allocation per session counted
        # towards the collector's next young collection (floats and this dict of
        # floats and strs are not tracked).
        self._heap: list[float] = []
        self._due: dict[float, str] = {}
        self._clash_at = self._clash_key = -1.0  # the last deadline found taken, and the key it got
        self._ping_interval = self.config.ping_interval
        self._pong_wait = self.config.ping_timeout
        # v3: the client pings; the session ends this long after its last ping
        self._v3_ping_deadline = self.config.ping_interval + self.config.ping_interval_grace + self._pong_wait
        self._max_size = self.config.max_http_buffer_size
        self._quarter_size = self._max_size // 4  # a str this long is within the limit in UTF-8
        self._last_now = 0.0
        self._polling_enabled = "polling" in self.config.transports
        self._websocket_enabled = "websocket" in self.config.transports
        self._webtransport_enabled = "webtransport" in self.config.transports
        self._upgrades = self.config.upgrades_offered
        self._open_parts = open_packet_parts(self.config)  # indexed by "not a polling handshake"

    # --- events and time ---------------------------------------------------

    def _take(self) -> Sequence[Event]:
        """Return and clear the events the current input caused, oldest first (an
        empty tuple when none): every input method ends with it."""
        events = self._events
        if not events:
            return ()
        self._events = []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` should next be called (``None``: no timer needed).

        The value may be early (a deadline that moved later); calling
        :meth:`handle_timer` early is harmless.
        """
        heap = self._heap
        due = self._due
        sessions = self._sessions
        while heap:
            key = heap[0]
            session = sessions.get(due[key])
            if session is not None and session.heap_key == key and session.heap_deadline is not None:
                return session.heap_deadline
            heapq.heappop(heap)  # superseded, or its session is gone
            del due[key]
        return None

    def handle_timer(self, now: float) -> Sequence[Event]:
        """Run everything due at ``now``: pings, ping timeouts, upgrade and close timeouts."""
        self._last_now = now
        heap = self._heap
        due = self._due
        sessions = self._sessions
        while heap:
            key = heap[0]
            session = sessions.get(due[key])
            if session is not None and session.heap_key == key:
                at = session.heap_deadline
                if at is not None:
                    if at > now:  # (its key may be a few ulps after it: compared by the time)
                        break
                    heapq.heappop(heap)
                    del due[key]
                    session.heap_deadline = None
                    self._run_due(session, now)
                    self._schedule(session)
                    continue
            heapq.heappop(heap)  # superseded, or its session is gone
            del due[key]
        return self._take()

    def _schedule(self, session: Session) -> None:
        d = session.deadline()
        if d is not None and (session.heap_deadline is None or d < session.heap_deadline):
            session.heap_deadline = d
            due = self._due
            key = d if d not in due else self._free_key(d)
            session.heap_key = key
            due[key] = session.sid  # (by its id: a dict of floats and strs is not tracked)
            heapq.heappush(self._heap, key)

    def _free_key(self, deadline: float) -> float:
        """The first key after ``deadline`` that names no entry (entries of one time, as a
        batch of pings, go an ulp apart in the order they came, the next from the last)."""
        key = self._clash_key if self._clash_at == deadline else deadline
        due = self._due
        while key in due:
            key = math.nextafter(key, math.inf)
        self._clash_at = deadline
        self._clash_key = key
        return key

    def _run_due(self, session: Session, now: float) -> None:
        """Act on the deadlines of the session's states that have passed at ``now``."""
        state = session.state
        if state is CLOSED:
            return
        if state is CLOSING:
            at = session.close_at
            if at is not None and at <= now:
                self._finish(session, Input.CLOSE_TIMEOUT)
            return
        heartbeat = session.heartbeat_machine
        at = session.heartbeat_at
        if at is not None and at <= now and heartbeat.allows(session.heartbeat, Input.PING_TIMEOUT):
            if self.config.monitor_clients:
                self._close(session, CloseReason.PING_TIMEOUT, now)
                return
            heartbeat.step(session, Input.PING_TIMEOUT_IGNORED)  # the next pong restarts pings
        at = session.upgrade_at
        if at is not None and at <= now:
            self._abort_upgrade(session, Input.UPGRADE_TIMEOUT)
        at = session.poll_embargo
        if at is not None and at <= now:
            session.poll_embargo = None
            if session.upgrade is Upgrade.PROBE_ANSWERED:
                session.noop_pending = True
            self._answer_poll(session)
        at = session.heartbeat_at
        if at is not None and at <= now and session.heartbeat is Heartbeat.PING_SCHEDULED:
            heartbeat.step(session, Input.PING_DUE, now + self._pong_wait)
            self._queue(session, PING)

    # --- connections ---------------------------------------------------------

    def connection_lost(self, rid: int, now: float) -> Sequence[Event]:
        """Request ``rid``'s client went away: before its answer (a held GET, a POST
        whose body was not complete, a handshake), or its websocket closed."""
        self._connection_lost(rid, now)
        return self._take()

    def _connection_lost(self, rid: int, now: float) -> None:
        self._last_now = now
        rec = self._requests.get(rid)
        if rec is not None:
            self._request_gone(rec)
            return
        ws = self._sockets.pop(rid, None)
        if ws is None:
            if self._streams.pop(rid, None) is None:
                self._check_rid(rid)
            return  # answered, or reported already (or a WebTransport stream that never began)
        if ws.stream:
            del self._streams[rid]
        ws.busy = False
        self._websocket_closed(ws, now)
        session = ws.session
        if session.state is CLOSED and session.ws is ws:
            # the session and its websocket point at each other: both are done, so
            # break the cycle rather than leave it to the garbage collector
            session.ws = None

    def send_failed(self, rid: int, now: float) -> Sequence[Event]:
        """Writing to request ``rid`` failed (a response, or a websocket's frames).

        A websocket is then gone (reason ``transport close`` for its session).
        A poll answered with packets takes them with it: its session closes
        with ``transport error``, so the application is told rather than the
        packets being lost silently.
        """
        self._last_now = now
        if rid in self._sockets:
            self._connection_lost(rid, now)
            return self._take()
        session = self._answered.pop(rid, None)
        if session is None:
            self._check_rid(rid)
            return ()
        session.answered_rid = -1
        self._close(session, CloseReason.TRANSPORT_ERROR, now)
        return self._take()

    # --- the application's side ---------------------------------------------

    def send(self, sid: str, data: Data) -> Sequence[Event] | None:
        """Send a message to session ``sid``: the events say what to write, and where
        (none when it waits for a poll). None when the session no longer takes
        messages (unknown, or closing). A message that overflows the session's
        queue (``max_queued_bytes``) closes it with ``transport error``."""
        session = self._sessions.get(sid)
        if session is None:
            return None
        if session.state is OPEN and session.transport is WEBSOCKET and not session.outbox:
            ws: WebSocket = session.ws  # type: ignore[assignment]
            if not ws.busy:
                # straight to an idle websocket, past the queue
                if type(data) is str:
                    if not data.isascii():
                        _check_text(data)
                    # framed here rather than by the codec, to save a call per
                    # message: the protocol frames text the same way in v3 and v4
                    # (long text once per broadcast: the same object to many sessions)
                    frame: Data = "4" + data if len(data) < SHARED_FRAME_MIN else shared_text_frame(data)
                else:
                    frame = session.codec.encode_message_frame(data)
                ws.busy = True
                stats = self._stats
                stats.ws_messages_out += 1
                stats.ws_bytes_out += len(frame)
                # (tuple.__new__ skips the NamedTuple's Python-level __new__: once per message)
                return (_new_event(SendFrames, (ws.rid, (frame,))),)
        if session.state is CLOSED or session.state is CLOSING:
            return None
        if type(data) is str and not data.isascii():
            _check_text(data)
        if session.transport is WEBSOCKET:
            self._stats.ws_messages_out += 1
        else:
            self._stats.polling_messages_out += 1
        self._queue(session, Packet(MESSAGE, data))
        return self._take()

    def _queue(self, session: Session, packet: Packet) -> bool:
        data = packet.data
        if data is not None:
            session.queued_bytes += len(data)
            if session.queued_bytes > self.config.max_queued_bytes:
                session.outbox = ()
                session.queued_bytes = 0
                self._close(session, CloseReason.TRANSPORT_ERROR, None)
                return False
        outbox = session.outbox  # (Session.queue, inline: once per queued message)
        if outbox:
            outbox.append(packet)  # type: ignore[union-attr]
        else:
            session.outbox = [packet]
        self._wake(session)
        return True

    def _wake(self, session: Session) -> None:
        """The session has something to send: its websocket writes it, or its held poll takes it."""
        if session.transport is not POLLING:
            ws = session.ws
            if ws is not None:
                self._write(ws)
        elif session.poll is not None:
            self._answer_poll(session)

    def _control(self, session: Session, packet: Packet, now: float) -> bool:
        """Handle a non-message packet from the client; False if it has no place here."""
        t = packet.type
        if session.codec.version == 3:
            return self._control_v3(session, packet, now)
        if t is PONG_TYPE:
            heartbeat = session.heartbeat_machine
            if heartbeat.allows(session.heartbeat, Input.PONG):  # a ping is outstanding (else ignored)
                at = session.heartbeat_at  # the pong's deadline (None: late, clients not monitored)
                if at is not None:
                    stats = self._stats
                    stats.ping_round_trips += 1
                    stats.ping_round_trip_seconds += now - (at - self._pong_wait)
                heartbeat.step(session, Input.PONG, now + self._ping_interval)  # the next ping is due then
                self._schedule(session)
            return True
        if t is CLOSE_TYPE:
            self._close(session, CloseReason.CLIENT_DISCONNECT, now)
            return True
        if t is PING_TYPE:
            # v4 clients do not ping; answer rather than fail, so a lenient client still works.
            if not session.closed:
                self._queue(session, Packet(PONG_TYPE, packet.data))
            return True
        return t is NOOP_TYPE  # OPEN or UPGRADE from a client have no place here

    def _control_v3(self, session: Session, packet: Packet, now: float) -> bool:
        """:meth:`_control` for a v3 client: it pings, the server answers; a pong has no place."""
        t = packet.type
        if t is PING_TYPE:
            if not session.closed:
                heartbeat = session.heartbeat_machine
                if self.config.monitor_clients and heartbeat.allows(session.heartbeat, Input.CLIENT_PING):
                    heartbeat.step(session, Input.CLIENT_PING, now + self._v3_ping_deadline)
                    self._schedule(session)
                self._queue(session, Packet(PONG_TYPE, packet.data))
            return True
        if t is CLOSE_TYPE:
            self._close(session, CloseReason.CLIENT_DISCONNECT, now)
            return True
        return t is NOOP_TYPE


_new_event = tuple.__new__


def _check_text(text: str) -> None:
    """Refuse, at the sender, text with no UTF-8 form (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("message text has no UTF-8 form (it holds a lone surrogate)") from None
