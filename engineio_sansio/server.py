"""The server core: one object holding every session, fed requests, frames and time.

Nothing here does I/O or reads a clock. A runtime feeds in requests, bodies,
websocket frames and the time ``now`` (monotonic seconds); it reads back
return values and the events in :attr:`Server.events`, and it calls
:meth:`Server.handle_timer` when :meth:`Server.next_deadline` comes.

The work is split by job: :mod:`.routing` (requests and the handshake),
:mod:`.polling`, :mod:`.websocket` (and the upgrade), :mod:`.closing`; this
module holds the timers and what the application does (send, close).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable, Iterable

from ._names import (
    CLOSE_TYPE as _CLOSE_TYPE,
)
from ._names import (
    CLOSED as _CLOSED,
)
from ._names import (
    CLOSING as _CLOSING,
)
from ._names import (
    MESSAGE as _MESSAGE,
)
from ._names import (
    NOOP_TYPE as _NOOP_TYPE,
)
from ._names import (
    OPEN as _OPEN,
)
from ._names import (
    PING as _PING,
)
from ._names import (
    PING_TYPE as _PING_TYPE,
)
from ._names import (
    PONG_TYPE as _PONG_TYPE,
)
from ._names import (
    UPGRADING as _UPGRADING,
)
from ._names import (
    WEBSOCKET as _WEBSOCKET,
)
from .closing import ClosingMixin
from .config import ServerConfig
from .events import Event, TransportWritable
from .packet import Data, Packet
from .polling import UPGRADE_POLL_GRACE, PollingMixin
from .routing import Route, RouteKind, RoutingMixin, default_sid
from .session import INF, CloseReason, Session
from .websocket import WS_CLOSE_NORMAL, WS_CLOSE_POLICY, WS_CLOSE_PROTOCOL, WS_CLOSE_TOO_BIG, WebSocketMixin

__all__ = [
    "UPGRADE_POLL_GRACE",
    "WS_CLOSE_NORMAL",
    "WS_CLOSE_POLICY",
    "WS_CLOSE_PROTOCOL",
    "WS_CLOSE_TOO_BIG",
    "Route",
    "RouteKind",
    "Server",
]


class Server(RoutingMixin, PollingMixin, WebSocketMixin, ClosingMixin):
    """The Engine.IO server core; one per server, holding every session.

    ``sid_generator`` may be injected (tests, or a runtime that wants its own
    ids); ids must be unique, and the core retries on a collision.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        sid_generator: Callable[[], str] = default_sid,
    ) -> None:
        self.config = config or ServerConfig()
        self.sid_generator = sid_generator
        self.sessions: dict[str, Session] = {}
        self.events: list[Event] = []
        self._heap: list[tuple[float, int, Session]] = []
        self._seq = itertools.count()
        self._ping_interval = self.config.ping_interval
        self._pong_wait = self.config.ping_timeout
        self._max_size = self.config.max_http_buffer_size
        self._quarter_size = self._max_size // 4  # a str this long is within the limit in UTF-8
        self._last_now = 0.0
        self._polling_enabled = "polling" in self.config.transports
        self._websocket_enabled = "websocket" in self.config.transports

    # --- events and time ---------------------------------------------------

    def take_events(self) -> list[Event]:
        """Return and clear the pending events, oldest first."""
        events = self.events
        self.events = []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` should next be called (``None``: no timer needed).

        The value may be early (a deadline that moved later); calling
        :meth:`handle_timer` early is harmless.
        """
        heap = self._heap
        while heap and heap[0][2].heap_deadline != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        """Run everything due at ``now``: pings, ping timeouts, upgrade and close timeouts."""
        self._last_now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, session = heapq.heappop(heap)
            if session.heap_deadline != deadline:
                continue  # superseded entry
            session.heap_deadline = INF
            self._run_due(session, now)
            self._schedule(session)

    def _schedule(self, session: Session) -> None:
        d = session.deadline()
        if d < session.heap_deadline:
            session.heap_deadline = d
            heapq.heappush(self._heap, (d, next(self._seq), session))

    def _run_due(self, session: Session, now: float) -> None:
        state = session.state
        if state is _CLOSED:
            return
        if state is _CLOSING:
            if session.close_deadline <= now:
                self._finish(session)
            return
        if session.pong_deadline <= now:
            if self.config.monitor_clients:
                self._close(session, CloseReason.PING_TIMEOUT, now)
                return
            session.pong_deadline = INF  # not monitoring: never time out; the next pong restarts pings
        if session.upgrade_deadline <= now:
            self._abort_upgrade(session)
        if session.poll_embargo <= now:
            session.poll_embargo = INF
            if session.probe is not None and session.probe.probed:
                session.noop_pending = True
            if session.poll_held and (session.outbox or session.noop_pending):
                self.events.append(TransportWritable(session))
        if session.next_ping <= now:
            session.next_ping = INF
            session.pong_deadline = now + self._pong_wait
            self._queue(session, _PING)

    # --- application side --------------------------------------------------

    def send(self, session: Session, data: Data) -> bool:
        """Queue a message; False when the session no longer takes packets.

        After a True, the runtime flushes the transport (see :meth:`take_frames`
        and :meth:`poll`); no event is raised for it.
        """
        if session.state is _CLOSED or session.state is _CLOSING:
            return False
        if type(data) is str and not data.isascii():
            _check_text(data)
        return self._queue(session, Packet(_MESSAGE, data), event=False)

    def direct_frame(self, session: Session, data: Data) -> Data | None:
        """The frame for a message that may skip the queue, or None.

        A message skips the queue when the session is open on a websocket and
        nothing is queued before it; the runtime then writes the frame itself
        (it must not have a write in progress on that websocket). Otherwise the
        runtime calls :meth:`send` instead. The frame is a ``str`` for text data
        and ``bytes`` for binary data.
        """
        if session.state is _OPEN and session.transport is _WEBSOCKET and not session.outbox:
            if type(data) is str:
                if not data.isascii():
                    _check_text(data)
                # A text message's frame, framed here rather than by the codec to save a
                # call per message: the protocol frames text the same way in v3 and v4.
                return "4" + data
            return session.codec.encode_message_frame(data)
        return None

    def send_packet(self, session: Session, packet: Packet) -> bool:
        """Queue any packet (a message, or a control packet an upper layer needs)."""
        if session.state is _CLOSED or session.state is _CLOSING:
            return False
        if type(packet.data) is str and not packet.data.isascii():
            _check_text(packet.data)
        return self._queue(session, packet, event=False)

    def close(self, session: Session, now: float) -> None:
        """The application closes the session (reason: server disconnect).

        Queued packets are still delivered, then the CLOSE packet.
        """
        self._close(session, CloseReason.SERVER_DISCONNECT, now)

    def _queue(self, session: Session, packet: Packet, *, event: bool = True) -> bool:
        data = packet.data
        if data is not None:
            session.queued_bytes += len(data)
            if session.queued_bytes > self.config.max_queued_bytes:
                session.outbox.clear()
                session.queued_bytes = 0
                self._close(session, CloseReason.TRANSPORT_ERROR, None)
                return False
        session.outbox.append(packet)
        if event:
            self.events.append(TransportWritable(session))
        return True

    def _control(self, session: Session, packet: Packet, now: float) -> bool:
        """Handle a non-message packet from the client; False if it has no place here."""
        t = packet.type
        if t is _PONG_TYPE:
            if session.next_ping == INF and (session.state is _OPEN or session.state is _UPGRADING):
                # a ping is outstanding: the next one is due an interval from now
                session.pong_deadline = INF
                session.next_ping = now + self._ping_interval
                self._schedule(session)
            return True
        if t is _CLOSE_TYPE:
            self._close(session, CloseReason.CLIENT_DISCONNECT, now)
            return True
        if t is _PING_TYPE:
            # v4 clients do not ping; answer rather than fail, so a lenient client still works.
            if not session.closed:
                self._queue(session, Packet(_PONG_TYPE, packet.data))
            return True
        if t is _NOOP_TYPE:
            return True
        return False  # OPEN or UPGRADE from a client

    def session_ids(self) -> Iterable[str]:
        """The ids of sessions the application can address (open or upgrading)."""
        return [sid for sid, s in self.sessions.items() if not s.closed]


def _check_text(text: str) -> None:
    """Refuse, at the sender, text with no UTF-8 form (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("message text has no UTF-8 form (it holds a lone surrogate)") from None
