"""What the server has done, counted as it happens: plain integers, read as a snapshot.

A :class:`Stats` object belongs to one :class:`~engineio_sansio.Server`, given to it
at construction (``Server(config, stats=my_stats)``) or made by it. The core adds
to its counters on the paths it runs anyway (an integer increment, no lookup by
name per message); nothing is computed until :meth:`Stats.snapshot` is called,
which also counts the gauges (sessions by transport, held polls, queued bytes)
from the sessions the server holds at that moment, in one pass.

Sizes are what travels: the HTTP body of a poll (after compression), the length
of a websocket frame (characters for a text frame, the same number as bytes when
the text is ASCII).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import LocalProtocolError
from .session import CloseReason, SessionState, Transport

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Stats", "StatsSnapshot"]

_OPEN = SessionState.OPEN
_UPGRADING = SessionState.UPGRADING
_OPENING = SessionState.OPENING
_CLOSING = SessionState.CLOSING
_WEBSOCKET = Transport.WEBSOCKET
_POLLING = Transport.POLLING


@dataclass(frozen=True)
class StatsSnapshot:
    """The counters and gauges of a server at one moment.

    Counters (``*_total`` in Prometheus terms) only grow for the life of the
    server; gauges (``sessions``, ``sessions_opening``, ``sessions_closing``,
    ``polls_held``, ``queued_bytes``, the timer's lag) are counted at snapshot time.
    Keys of transports are ``"polling"`` and ``"websocket"``; ``sessions`` also has
    ``"webtransport"``, whose messages and bytes are counted under ``"websocket"``
    (a WebTransport stream carries a session the way a websocket does).
    """

    sessions: dict[str, int]
    """Open sessions (accepted by the application, not closing), by the transport carrying them."""
    sessions_opening: int
    """Sessions whose handshake waits for the application's decision."""
    sessions_closing: int
    """Sessions closed for the application whose CLOSE packet waits for a poll."""
    polls_held: int
    """Long-polling GETs held open, waiting for something to answer with."""
    queued_bytes: int
    """Message bytes queued for clients, not handed to a transport yet."""
    handshakes: dict[tuple[str, int], int]
    """Handshakes the protocol accepted, by (transport, Engine.IO protocol version)."""
    rejected: int
    """Handshakes the application refused (its connect handler said no)."""
    refused: dict[int, int]
    """Requests answered with a protocol error, by Engine.IO error code
    (0 unknown transport, 1 unknown sid, 2 bad handshake method, 3 bad request,
    4 forbidden origin, 5 unsupported protocol version)."""
    too_large: int
    """POST bodies refused with 413 (over ``max_http_buffer_size``)."""
    upgrades: int
    """Sessions upgraded from polling to websocket."""
    upgrade_failures: int
    """Upgrades that did not complete (probe closed, timed out, wrong packet, session closed)."""
    messages_received: dict[str, int]
    """Messages from clients handed to the application, by transport."""
    messages_sent: dict[str, int]
    """Messages the application sent, by the transport the session was on."""
    bytes_received: dict[str, int]
    """Bytes of POST bodies and websocket frames read, by transport."""
    bytes_sent: dict[str, int]
    """Bytes of poll responses and websocket frames written, by transport."""
    closed: dict[str, int]
    """Sessions ended, by reason (python-engineio's reason strings)."""
    ping_round_trips: int
    """Pongs received in answer to a ping."""
    ping_round_trip_seconds: float
    """The sum of their round trips, from the ping's queueing to the pong's arrival."""
    timer_wakeups: int
    """Wake-ups of the runtime's timer driver (0 when the runtime does not record them)."""
    timer_lag_seconds: float
    """How late the timer driver's last wake-up ran past its target: a blocked event loop shows here."""
    timer_lag_max_seconds: float
    """The latest wake-up of the last minute or so (see the runtime)."""


class Stats:
    """The counters one server keeps; read them with :meth:`snapshot`.

    The core writes every attribute except ``timer_*``, which the runtime's
    timer driver sets (the core has no clock of its own to be late by).
    """

    __slots__ = (
        "_sessions",
        "handshakes",
        "rejected",
        "refused",
        "too_large",
        "upgrades",
        "upgrade_failures",
        "polling_messages_in",
        "polling_messages_out",
        "polling_bytes_in",
        "polling_bytes_out",
        "ws_messages_in",
        "ws_messages_out",
        "ws_bytes_in",
        "ws_bytes_out",
        "closed",
        "ping_round_trips",
        "ping_round_trip_seconds",
        "timer_wakeups",
        "timer_lag",
        "timer_lag_max",
    )

    def __init__(self) -> None:
        self._sessions: dict[str, Session] | None = None
        self.handshakes: dict[tuple[Transport, int], int] = {}
        self.rejected = 0
        self.refused: dict[int, int] = {}
        self.too_large = 0
        self.upgrades = 0
        self.upgrade_failures = 0
        self.polling_messages_in = 0
        self.polling_messages_out = 0
        self.polling_bytes_in = 0
        self.polling_bytes_out = 0
        self.ws_messages_in = 0
        self.ws_messages_out = 0
        self.ws_bytes_in = 0
        self.ws_bytes_out = 0
        self.closed: dict[CloseReason, int] = {}
        self.ping_round_trips = 0
        self.ping_round_trip_seconds = 0.0
        self.timer_wakeups = 0
        self.timer_lag = 0.0
        self.timer_lag_max = 0.0

    def _bind(self, sessions: dict[str, Session]) -> None:
        """Called by the server that owns these counters (one server per ``Stats``)."""
        if self._sessions is not None and self._sessions is not sessions:
            raise LocalProtocolError("this Stats object belongs to another Server already")
        self._sessions = sessions

    def refuse(self, code: int) -> None:
        """A request was answered with the protocol error ``code``."""
        refused = self.refused
        refused[code] = refused.get(code, 0) + 1

    def snapshot(self) -> StatsSnapshot:
        """The counters now, with the gauges counted over the server's sessions."""
        polling = websocket = webtransport = opening = closing = held = queued = 0
        for session in (self._sessions or {}).values():
            state = session.state
            if state is _OPEN or state is _UPGRADING:
                if session.transport is _WEBSOCKET:
                    websocket += 1
                elif session.transport is _POLLING:
                    polling += 1
                else:
                    webtransport += 1
            elif state is _OPENING:
                opening += 1
            elif state is _CLOSING:
                closing += 1
            if session.poll is not None:
                held += 1
            queued += session.queued_bytes
        return StatsSnapshot(
            sessions={"polling": polling, "websocket": websocket, "webtransport": webtransport},
            sessions_opening=opening,
            sessions_closing=closing,
            polls_held=held,
            queued_bytes=queued,
            handshakes={(t.value, v): n for (t, v), n in self.handshakes.items()},
            rejected=self.rejected,
            refused=dict(self.refused),
            too_large=self.too_large,
            upgrades=self.upgrades,
            upgrade_failures=self.upgrade_failures,
            messages_received={"polling": self.polling_messages_in, "websocket": self.ws_messages_in},
            messages_sent={"polling": self.polling_messages_out, "websocket": self.ws_messages_out},
            bytes_received={"polling": self.polling_bytes_in, "websocket": self.ws_bytes_in},
            bytes_sent={"polling": self.polling_bytes_out, "websocket": self.ws_bytes_out},
            closed={r.value: n for r, n in self.closed.items()},
            ping_round_trips=self.ping_round_trips,
            ping_round_trip_seconds=self.ping_round_trip_seconds,
            timer_wakeups=self.timer_wakeups,
            timer_lag_seconds=self.timer_lag,
            timer_lag_max_seconds=self.timer_lag_max,
        )
