"""Per-session state: its states and their deadlines (see :mod:`.machine`), its queue, its requests."""

from __future__ import annotations

import enum

from .machine import HEARTBEAT_V3, HEARTBEAT_V4, Heartbeat, IllegalTransition, Machine, SessionState, Upgrade
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

_OPENING = SessionState.OPENING
_OFF = Heartbeat.OFF
_NO_UPGRADE = Upgrade.NONE


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
        self.busy = False
        # (a tuple, () when empty: an empty list would be one more object per connection
        # for the garbage collector to walk, and a new one after every write)
        self.pending: tuple[Data, ...] = ()
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
        "close_at",
        "heartbeat",
        "heartbeat_at",
        "heartbeat_machine",
        "upgrade",
        "upgrade_at",
        "heap_deadline",
        "heap_key",
        "reason",
    )

    def __init__(self, sid: str, codec: Codec, transport: Transport) -> None:
        self.sid = sid
        self.codec = codec
        self.state = _OPENING
        self.transport = transport
        # what waits to be sent: a list while something does, () when empty (an empty
        # list per idle session would be one more object for every full collection to
        # walk, and the usual websocket session's queue is empty but for a moment)
        self.outbox: list[Packet] | tuple[Packet, ...] = ()
        self.queued_bytes = 0
        self.handshake: PendingRequest | None = None  # a polling handshake waiting for accept()
        self.handshake_lost = False  # the client left before the application decided
        self.poll: PendingRequest | None = None  # the held GET
        # A GET that arrives during an upgrade is not answered before this time (see
        # polling.UPGRADE_POLL_GRACE); None when no such GET is held.
        self.poll_embargo: float | None = None
        self.post: PendingRequest | None = None  # the POST whose body is arriving
        self.answered_rid = -1  # the last poll answered with packets (for send_failed)
        # the held (or next) poll owes the client a NOOP: the probe was answered, the
        # upgrade completed, or the session closed under it (a poll's, not a state: see machine.py)
        self.noop_pending = False
        self.ws: WebSocket | None = None
        self.probe: WebSocket | None = None
        # Each machine's state, and the deadline of that state while it has one (None otherwise)
        self.close_at: float | None = None  # CLOSING's: the CLOSE packet's time is up
        self.heartbeat = _OFF
        self.heartbeat_at: float | None = None
        self.heartbeat_machine: Machine[Heartbeat] = HEARTBEAT_V3 if codec.version == 3 else HEARTBEAT_V4
        self.upgrade = _NO_UPGRADE
        self.upgrade_at: float | None = None
        self.heap_deadline: float | None = None  # the time of its live entry in the timer heap
        self.heap_key = 0.0  # that entry's key (the time, or a few ulps after it)
        self.reason: CloseReason | None = None

    def queue(self, packet: Packet) -> None:
        """Add ``packet`` to the outbox."""
        outbox = self.outbox
        if outbox:
            outbox.append(packet)  # type: ignore[union-attr]
        else:
            self.outbox = [packet]

    @property
    def closed(self) -> bool:
        """True once the application has been (or is being) told the session ended."""
        return self.state is SessionState.CLOSED or self.state is SessionState.CLOSING

    @property
    def version(self) -> int:
        """The Engine.IO protocol version this session speaks."""
        return self.codec.version

    def deadline(self) -> float | None:
        """The earliest deadline among the session's current states (None: it has none)."""
        earliest = None
        for at in (self.close_at, self.heartbeat_at, self.upgrade_at, self.poll_embargo):
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        return earliest

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.state.value} {self.transport.value}>"
