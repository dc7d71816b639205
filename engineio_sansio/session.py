"""Per-session state: the state machine, the outgoing queue, heartbeat deadlines."""

from __future__ import annotations

import enum

from .errors import LocalProtocolError
from .message import Headers, Request
from .packet import Codec, Data, Packet

__all__ = [
    "CloseReason",
    "IllegalTransition",
    "PendingRequest",
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
    """The transports, valued as they appear in the ``transport`` query parameter."""

    POLLING = "polling"
    WEBSOCKET = "websocket"
    WEBTRANSPORT = "webtransport"

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

    # Members are singletons compared by identity: hash them as objects. (Enum's own
    # __hash__ is a Python-level call on 3.11, and every state change makes two.)
    __hash__ = object.__hash__


S = SessionState
_OPENING = S.OPENING  # (a global read is cheaper than an Enum class attribute on 3.10/3.11)
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
    """One websocket connection as the core sees it, named by the id of its request.

    A WebTransport stream is one too, with ``stream`` True: the same packets,
    framed for the stream (see :mod:`.framing`) when they are handed out.

    ``upgraded`` is False while it is only a probe for a polling session, and
    True once it carries the session. ``busy`` is True while frames handed out
    in a ``SendFrames`` are being written; ``pending`` holds frames that go out
    next, outside the session's queue (the probe answer). ``close_code`` is set
    once the core has decided to close it; ``done`` once ``CloseWebSocket`` is out.
    """

    __slots__ = (
        "session",
        "rid",
        "upgraded",
        "closed",
        "probed",
        "busy",
        "pending",
        "close_code",
        "close_grace",
        "close_packet_seen",
        "done",
        "stream",
        "codec",
    )

    def __init__(self, session: Session, rid: int, upgraded: bool, stream: bool = False) -> None:
        self.session = session
        self.rid = rid
        self.upgraded = upgraded
        self.closed = False
        self.probed = False
        self.busy = False
        self.pending: list[Data] = []
        self.close_code: int | None = None
        self.close_grace = 0.0
        self.close_packet_seen = False  # a CLOSE packet went either way: the client closes too
        self.done = False
        self.stream = stream  # a WebTransport stream: frames go out framed, as bytes
        self.codec: Codec | None = None  # a probe's: what the session speaks once upgraded

    def __repr__(self) -> str:
        role = "transport" if self.upgraded else "probe"
        return f"<WebSocket {self.rid} {role} of {self.session.sid}{' closed' if self.closed else ''}>"


class PendingRequest:
    """An HTTP request the core has not answered yet: a held GET, a POST whose body
    is arriving, or a handshake waiting for the application's decision."""

    __slots__ = ("rid", "session", "request", "cors", "parts", "size")

    def __init__(self, rid: int, session: Session, request: Request, cors: Headers) -> None:
        self.rid = rid
        self.session = session
        self.request = request
        self.cors = cors
        self.parts: list[bytes] = []
        self.size = 0


class Session:
    """One Engine.IO session: its state, its queue and its deadlines (the core's own)."""

    __slots__ = (
        "sid",
        "codec",
        "state",
        "transport",
        "outbox",
        "queued_bytes",
        "handshake",
        "handshake_lost",
        "poll",
        "poll_embargo",
        "post",
        "answered_rid",
        "noop_pending",
        "ws",
        "probe",
        "next_ping",
        "pong_deadline",
        "upgrade_deadline",
        "close_deadline",
        "heap_deadline",
        "reason",
    )

    def __init__(self, sid: str, codec: Codec, transport: Transport) -> None:
        self.sid = sid
        self.codec = codec
        self.state = _OPENING
        self.transport = transport
        self.outbox: list[Packet] = []  # small, and far lighter than a deque per session
        self.queued_bytes = 0
        self.handshake: PendingRequest | None = None  # a polling handshake waiting for accept()
        self.handshake_lost = False  # the client left before the application decided
        self.poll: PendingRequest | None = None  # the held GET
        # A GET that arrives during an upgrade is not answered before this time (see
        # polling.UPGRADE_POLL_GRACE); INF when no such GET is held.
        self.poll_embargo = INF
        self.post: PendingRequest | None = None  # the POST whose body is arriving
        self.answered_rid = -1  # the last poll answered with packets (for send_failed)
        self.noop_pending = False
        self.ws: WebSocket | None = None
        self.probe: WebSocket | None = None
        self.next_ping = INF
        self.pong_deadline = INF
        self.upgrade_deadline = INF
        self.close_deadline = INF
        self.heap_deadline = INF
        self.reason: CloseReason | None = None

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
