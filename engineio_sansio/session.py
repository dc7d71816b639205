"""Per-session state: the state machine, the outgoing queue, heartbeat deadlines."""

from __future__ import annotations

import enum
from typing import Any

from .errors import LocalProtocolError
from .packet import Codec, Packet

__all__ = [
    "CloseReason",
    "IllegalTransition",
    "Session",
    "SessionState",
    "Transport",
    "WebSocket",
]

INF = float("inf")


class CloseReason(str, enum.Enum):
    """Why a session ended; the values are python-engineio's reason strings, byte for byte."""

    SERVER_DISCONNECT = "server disconnect"
    CLIENT_DISCONNECT = "client disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"

    def __str__(self) -> str:
        return self.value


class Transport(str, enum.Enum):
    """The two transports, valued as they appear in the ``transport`` query parameter."""

    POLLING = "polling"
    WEBSOCKET = "websocket"

    def __str__(self) -> str:
        return self.value


class SessionState(enum.Enum):
    """Where a session is in its life."""

    OPENING = "opening"
    """The protocol accepted the handshake; the application has not decided yet."""
    OPEN = "open"
    UPGRADING = "upgrading"
    """A probe websocket is attached; polling still carries the session."""
    CLOSING = "closing"
    """Closed for the application; a CLOSE packet waits for a poll to carry it."""
    CLOSED = "closed"


S = SessionState
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.OPENING: frozenset({S.OPEN, S.CLOSED}),
    S.OPEN: frozenset({S.UPGRADING, S.CLOSING, S.CLOSED}),
    S.UPGRADING: frozenset({S.OPEN, S.CLOSING, S.CLOSED}),
    S.CLOSING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}
"""Every legal transition, in one table."""


class IllegalTransition(LocalProtocolError):
    """A bug in the caller or the core: a transition the table does not allow."""


class WebSocket:
    """One websocket connection as the core sees it.

    ``upgraded`` is False while it is only a probe for a polling session, and
    True once it carries the session. ``runtime`` is free for the embedding
    runtime to hang its connection object on.
    """

    __slots__ = ("session", "upgraded", "closed", "probed", "runtime")

    def __init__(self, session: Session, upgraded: bool) -> None:
        self.session = session
        self.upgraded = upgraded
        self.closed = False
        self.probed = False
        self.runtime: Any = None

    def __repr__(self) -> str:
        role = "transport" if self.upgraded else "probe"
        return f"<WebSocket {role} of {self.session.sid}{' closed' if self.closed else ''}>"


class Session:
    """One Engine.IO session.

    The runtime reads ``sid``, ``transport``, ``state`` and ``reason``, and may
    use ``runtime`` for its own per-session object; everything else is the
    core's to change through :class:`~engineio_sansio.server.Server`.
    """

    __slots__ = (
        "sid",
        "codec",
        "state",
        "transport",
        "outbox",
        "queued_bytes",
        "poll_held",
        "poll_embargo",
        "post_active",
        "noop_pending",
        "ws",
        "probe",
        "next_ping",
        "pong_deadline",
        "upgrade_deadline",
        "close_deadline",
        "heap_deadline",
        "reason",
        "runtime",
    )

    def __init__(self, sid: str, codec: Codec, transport: Transport) -> None:
        self.sid = sid
        self.codec = codec
        self.state = SessionState.OPENING
        self.transport = transport
        self.outbox: list[Packet] = []  # small, and far lighter than a deque per session
        self.queued_bytes = 0
        self.poll_held = False
        # A GET that arrives during an upgrade is not answered before this time (see
        # Server.poll); INF when no such GET is held.
        self.poll_embargo = INF
        self.post_active = False
        self.noop_pending = False
        self.ws: WebSocket | None = None
        self.probe: WebSocket | None = None
        self.next_ping = INF
        self.pong_deadline = INF
        self.upgrade_deadline = INF
        self.close_deadline = INF
        self.heap_deadline = INF
        self.reason: CloseReason | None = None
        self.runtime: Any = None

    @property
    def closed(self) -> bool:
        """True once the application has been (or is being) told the session ended."""
        return self.state is SessionState.CLOSED or self.state is SessionState.CLOSING

    @property
    def version(self) -> int:
        """The Engine.IO protocol version this session speaks."""
        return self.codec.version

    def set_state(self, new: SessionState) -> None:
        """Move to ``new``; raise :class:`IllegalTransition` if the table forbids it."""
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"session {self.sid}: {self.state.value} -> {new.value}")
        self.state = new

    def deadline(self) -> float:
        """The earliest time this session needs the clock."""
        return min(
            self.next_ping, self.pong_deadline, self.upgrade_deadline, self.close_deadline, self.poll_embargo
        )

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.state.value} {self.transport.value}>"
