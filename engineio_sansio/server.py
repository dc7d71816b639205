"""The server core: routing, handshake, transports, upgrades, heartbeats, close.

Nothing here does I/O or reads a clock. A runtime feeds in requests, bodies,
websocket frames and the time ``now`` (monotonic seconds); it reads back
return values and the events in :attr:`Server.events`, and it calls
:meth:`Server.handle_timer` when :meth:`Server.next_deadline` comes.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import json
import secrets
from typing import Callable, Iterable

from .config import ServerConfig
from .errors import ErrorCode, ProtocolError
from .events import (
    CloseWebSocket,
    Event,
    MessageReceived,
    SendFrames,
    SessionClosed,
    TransportWritable,
)
from .http import (
    TEXT_PLAIN,
    Headers,
    Request,
    Response,
    compress_body,
    cookie_header,
    cors_headers,
    error_response,
)
from .packet import CODECS, Codec, Data, Packet, PacketType
from .session import INF, CloseReason, Session, SessionState, Transport, WebSocket

__all__ = ["WS_CLOSE_NORMAL", "WS_CLOSE_POLICY", "WS_CLOSE_TOO_BIG", "Route", "RouteKind", "Server"]

WS_CLOSE_NORMAL = 1000
WS_CLOSE_PROTOCOL = 1002
WS_CLOSE_POLICY = 1008
WS_CLOSE_TOO_BIG = 1009
UPGRADE_POLL_GRACE = 0.1
"""How long a GET that arrives during an upgrade waits before it is answered.

A client that sends ``5`` on its probe and then a GET has left polling, but the
two travel on different connections and the GET can be read first. Holding it
this long lets the probe's frames, already in the server's hands, be read
before the GET is answered (with 400 once the upgrade is complete). A client
whose GET crossed ``3probe`` on the wire gets its NOOP this much later; Node's
engine.io answers such a GET at its 100 ms upgrade check as well.
"""

_OK_BODY = b"ok"
_OK_HEADERS: Headers = [(b"content-type", b"text/html")]
_PING = Packet(PacketType.PING)
_PONG = Packet(PacketType.PONG)
_CLOSE = Packet(PacketType.CLOSE)
_NOOP = Packet(PacketType.NOOP)
# Enum members the hot paths compare against, as module globals: on Python 3.10 and
# 3.11 reading a member through its class goes through EnumType.__getattr__, several
# times the cost of reading a global.
_MESSAGE = PacketType.MESSAGE
_PING_TYPE = PacketType.PING
_PONG_TYPE = PacketType.PONG
_OPEN_TYPE = PacketType.OPEN
_CLOSE_TYPE = PacketType.CLOSE
_NOOP_TYPE = PacketType.NOOP
_UPGRADE_TYPE = PacketType.UPGRADE
_OPENING = SessionState.OPENING
_OPEN = SessionState.OPEN
_UPGRADING = SessionState.UPGRADING
_CLOSING = SessionState.CLOSING
_CLOSED = SessionState.CLOSED
_WEBSOCKET = Transport.WEBSOCKET
_POLLING = Transport.POLLING
_AFTER_TYPE = slice(1, None)  # frame[_AFTER_TYPE] is frame[1:] without building a slice each time
CODECS_BY_PARAM: dict[str, Codec] = {str(v): c for v, c in CODECS.items()}
"""Codecs by the exact text of the ``EIO`` parameter (``"04"`` is not version 4)."""


class RouteKind(enum.Enum):
    """What a valid request asks for."""

    HANDSHAKE = "handshake"
    POLL = "poll"
    POST = "post"
    UPGRADE = "upgrade"
    PREFLIGHT = "preflight"
    IGNORE = "ignore"
    """A websocket for a session already upgrading or upgraded: accept it, then
    close it at once with ``WS_CLOSE_NORMAL``; the session is not touched."""


_R_HANDSHAKE = RouteKind.HANDSHAKE
_R_POLL = RouteKind.POLL
_R_POST = RouteKind.POST
_R_UPGRADE = RouteKind.UPGRADE
_R_PREFLIGHT = RouteKind.PREFLIGHT
_R_IGNORE = RouteKind.IGNORE


class Route:
    """A request the core accepted for routing: its kind, transport, session and CORS headers."""

    __slots__ = ("kind", "transport", "session", "codec", "cors")

    def __init__(
        self,
        kind: RouteKind,
        transport: Transport,
        session: Session | None,
        codec: Codec,
        cors: Headers,
    ) -> None:
        self.kind = kind
        self.transport = transport
        self.session = session
        self.codec = codec
        self.cors = cors

    def __repr__(self) -> str:
        return f"Route({self.kind.value}, {self.transport.value}, {self.session!r})"


def default_sid() -> str:
    """An unguessable session id: 120 random bits, URL-safe."""
    return secrets.token_urlsafe(15)


class Server:
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

    # --- routing -----------------------------------------------------------

    def route(self, request: Request, now: float, *, websocket: bool = False) -> Route | Response:
        """Check a request against the protocol and say what it is.

        Returns a :class:`Route`, or the error :class:`Response` to send (for a
        websocket request: the denial to send, or to close before accepting).
        """
        self._last_now = now
        cors = cors_headers(self.config, request)
        if cors is None:
            # the reason goes in the body (as Node's server does), so a browser's
            # network panel says why; the client sent this origin, it learns nothing new
            reason = f"origin {request.headers.get('origin', '')[:200]!r} not allowed"
            return error_response(ProtocolError(ErrorCode.FORBIDDEN, reason, 403), message=reason)
        try:
            return self._route(request, now, websocket, cors)
        except ProtocolError as exc:
            return error_response(exc, cors)

    def _route(self, request: Request, now: float, websocket: bool, cors: Headers) -> Route:
        query = request.query
        if request.method == "OPTIONS" and not websocket:
            return Route(_R_PREFLIGHT, _POLLING, None, CODECS[4], cors)
        codec = CODECS_BY_PARAM.get(query.get("EIO"))  # type: ignore[arg-type]
        if codec is None:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "unsupported EIO")
        name = query.get("transport")
        if name == "polling":
            transport = _POLLING
            enabled = self._polling_enabled
        elif name == "websocket":
            transport = _WEBSOCKET
            enabled = self._websocket_enabled
        else:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT)
        if not enabled:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT, "transport disabled")
        if websocket != (transport is _WEBSOCKET):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "transport does not match the request")
        sid = query.get("sid")
        if sid is None:
            if not websocket and request.method != "GET":
                raise ProtocolError(ErrorCode.BAD_HANDSHAKE_METHOD)
            return Route(_R_HANDSHAKE, transport, None, codec, cors)
        session = self.sessions.get(sid)
        if session is not None and session.heap_deadline <= now:
            self._run_due(session, now)  # a deadline the timer has not reached yet
            self._schedule(session)
        if session is None or session.state is _OPENING or session.state is _CLOSED:
            raise ProtocolError(ErrorCode.UNKNOWN_SID)
        if session.codec is not codec:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "protocol version changed")
        if websocket:
            if session.transport is _WEBSOCKET or session.state is _UPGRADING:
                # Node's engine.io accepts and closes such a websocket; a refused
                # handshake would read as an error to the client, not as a close
                return Route(_R_IGNORE, transport, session, codec, cors)
            if session.state is not _OPEN or not self.config.allow_upgrades:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "upgrade not possible")
            return Route(_R_UPGRADE, transport, session, codec, cors)
        if session.transport is not _POLLING:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "session is not on polling")
        if request.method == "GET":
            return Route(_R_POLL, transport, session, codec, cors)
        if request.method == "POST":
            if session.state is _CLOSING:
                raise ProtocolError(ErrorCode.UNKNOWN_SID)
            return Route(_R_POST, transport, session, codec, cors)
        raise ProtocolError(ErrorCode.BAD_REQUEST, "method not allowed")

    def preflight_response(self, route: Route) -> Response:
        """The answer to a CORS preflight (``OPTIONS``)."""
        return Response(204, list(route.cors))

    # --- handshake ---------------------------------------------------------

    def open_session(self, route: Route, now: float) -> Session:
        """Create a session for a handshake route, with its OPEN packet queued.

        The route now points at the session: once accepted, a polling
        handshake is answered by :meth:`poll` on the same route, a websocket
        one by :meth:`take_frames`.

        The session is in ``OPENING`` until :meth:`accept` or :meth:`reject`:
        the application may already queue messages (they follow the OPEN packet).
        """
        sid = self.sid_generator()
        for _ in range(8):
            if sid not in self.sessions:
                break
            sid = self.sid_generator()
        else:
            raise RuntimeError("the session id generator keeps repeating ids")
        session = Session(sid, route.codec, route.transport)
        cfg = self.config
        upgrades = cfg.upgrades_offered if route.transport is _POLLING else []
        handshake = {
            "sid": sid,
            "upgrades": upgrades,
            # the grace period is advertised, so clients wait that much longer for a ping
            "pingInterval": round((cfg.ping_interval + cfg.ping_interval_grace) * 1000),
            "pingTimeout": round(cfg.ping_timeout * 1000),
            "maxPayload": cfg.max_http_buffer_size,
        }
        session.outbox.append(Packet(_OPEN_TYPE, json.dumps(handshake, separators=(",", ":"))))
        if route.transport is _WEBSOCKET:
            session.ws = WebSocket(session, upgraded=True)
        self.sessions[sid] = session
        route.session = session
        return session

    def accept(self, session: Session, now: float) -> None:
        """The application accepted the session: start its heartbeat."""
        session.set_state(_OPEN)
        session.next_ping = now + self._ping_interval
        self._schedule(session)

    def reject(self, session: Session, route: Route, body: bytes | None = None) -> Response:
        """The application refused the session: drop it and answer 401 with ``body``.

        Also fine on a session the application already closed from its
        connect handler.
        """
        if session.state is not _CLOSED:
            session.set_state(_CLOSED)
        session.outbox.clear()
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
        headers: Headers = [(b"content-type", b"application/json")]
        headers.extend(route.cors)
        return Response(401, headers, body if body is not None else b"")

    def handshake_headers(self, session: Session) -> Headers:
        """Headers the handshake response carries besides CORS (the session cookie)."""
        cookie = cookie_header(self.config.cookie, session.sid)
        return [cookie] if cookie else []

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

    # --- long polling ------------------------------------------------------

    def poll(self, route: Route, request: Request, now: float | None = None) -> Response | None:
        """A GET: the response now if packets are ready, else ``None`` (hold the poll).

        A held poll is answered through :meth:`poll_response` once
        :meth:`poll_ready` says so after a :class:`TransportWritable` or
        :class:`SessionClosed` for the session, or dropped with
        :meth:`poll_abandoned` if the client leaves. A second concurrent GET
        closes the session and gets a 400. A GET that arrives while the
        session is upgrading is always held, for at least
        ``UPGRADE_POLL_GRACE``; if the upgrade completes meanwhile it is
        answered 400, as any GET after the upgrade is.
        """
        session = route.session
        assert session is not None
        if session.poll_held:
            self._close(session, CloseReason.TRANSPORT_ERROR, None)
            return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "concurrent poll"), route.cors)
        if session.state is _CLOSED:
            return error_response(ProtocolError(ErrorCode.UNKNOWN_SID), route.cors)
        if session.state is _UPGRADING:
            session.poll_held = True
            session.poll_embargo = (self._last_now if now is None else now) + UPGRADE_POLL_GRACE
            self._schedule(session)
            return None
        if session.outbox or session.noop_pending:
            return self._payload_response(session, route, request)
        session.poll_held = True
        return None

    def poll_ready(self, session: Session) -> bool:
        """Whether a held poll has something to answer with now."""
        if session.state is _CLOSED:
            return True
        if session.poll_embargo != INF and session.transport is _POLLING:
            return False
        return bool(session.outbox) or session.noop_pending

    def poll_response(self, route: Route, request: Request) -> Response:
        """Answer a held poll with whatever is queued (or a NOOP, or nothing left)."""
        session = route.session
        assert session is not None
        session.poll_held = False
        if session.poll_embargo != INF:
            session.poll_embargo = INF
            if session.transport is not _POLLING:
                # sent after the client's 5 (see UPGRADE_POLL_GRACE): the session left polling
                session.noop_pending = False
                return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "session upgraded"), route.cors)
        if session.transport is not _POLLING or (session.probe is not None and session.probe.probed):
            # upgraded, or the probe answered (the client is leaving polling): the poll
            # ends with a NOOP; packets wait for the websocket, or the next poll if the
            # upgrade fails
            session.noop_pending = False
            headers: Headers = [TEXT_PLAIN]
            headers.extend(route.cors)
            return Response(200, headers, session.codec.encode_payload([_NOOP]))
        return self._payload_response(session, route, request)

    def poll_abandoned(self, session: Session) -> None:
        """The client of a held poll went away; nothing was taken from the queue."""
        session.poll_held = False
        session.poll_embargo = INF

    def _payload_response(self, session: Session, route: Route, request: Request) -> Response:
        outbox = session.outbox
        limit = self.config.max_poll_packets
        if len(outbox) <= limit:
            packets = outbox
            session.outbox = []
            session.queued_bytes = 0
        else:
            packets = outbox[:limit]
            del outbox[:limit]
            session.queued_bytes = sum(len(p.data) for p in outbox if p.data is not None)
        session.noop_pending = False
        if not packets:
            packets.append(_NOOP)
        headers: Headers = [TEXT_PLAIN]
        headers.extend(route.cors)
        if packets[0].type is _OPEN_TYPE:
            headers.extend(self.handshake_headers(session))
        body = session.codec.encode_payload(packets)
        body = compress_body(self.config, request, body, headers)
        if session.state is _CLOSING and packets[-1].type is _CLOSE_TYPE:
            self._finish(session)
        return Response(200, headers, body)

    def begin_post(self, route: Route) -> Response | None:
        """Call before reading a POST body: a 400 if another POST is under way."""
        session = route.session
        assert session is not None
        if session.post_active:
            self._close(session, CloseReason.TRANSPORT_ERROR, None)
            return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "concurrent post"), route.cors)
        session.post_active = True
        return None

    def post_too_large(self, route: Route) -> Response:
        """The body grew past ``max_http_buffer_size`` while being read: 413, session kept."""
        session = route.session
        assert session is not None
        session.post_active = False
        headers: Headers = [(b"content-type", b"application/json")]
        headers.extend(route.cors)
        return Response(413, headers, b'{"code":3,"message":"Payload too large"}')

    def post_abandoned(self, route: Route) -> None:
        """The client left before its POST body was complete: nothing is delivered."""
        if route.session is not None:
            route.session.post_active = False

    def post_cut_short(self, route: Route) -> Response:
        """The session closed while its POST body was still arriving.

        The runtime stops reading the body (a client trickling one byte at a
        time must not hold a connection open once its session is gone) and
        answers this: 400, session unknown, as a late POST would get.
        """
        if route.session is not None:
            route.session.post_active = False
        return error_response(ProtocolError(ErrorCode.UNKNOWN_SID), route.cors)

    def post(self, route: Route, body: bytes, now: float) -> Response:
        """A whole POST body: decode it, act on each packet, answer ``ok``.

        Messages become :class:`MessageReceived` events, in order. A malformed
        body closes the session (transport error) and gets a 400.
        """
        session = route.session
        assert session is not None
        session.post_active = False
        if len(body) > self._max_size:
            return self.post_too_large(route)
        if session.state is _CLOSED or session.state is _CLOSING:
            return error_response(ProtocolError(ErrorCode.UNKNOWN_SID), route.cors)
        try:
            packets = session.codec.decode_payload(body)
        except ProtocolError as exc:
            self._close(session, CloseReason.TRANSPORT_ERROR, now)
            return error_response(exc, route.cors)
        events = self.events
        for packet in packets:
            t = packet.type
            if t is _MESSAGE:
                events.append(MessageReceived(session, packet.data))  # type: ignore[arg-type]
            elif not self._control(session, packet, now):
                self._close(session, CloseReason.TRANSPORT_ERROR, now)
                return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "bad packet"), route.cors)
            if session.closed:
                break
        headers: Headers = list(_OK_HEADERS)
        headers.extend(route.cors)
        return Response(200, headers, _OK_BODY)

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

    # --- websocket ---------------------------------------------------------

    def attach_probe(self, route: Route, now: float) -> WebSocket:
        """An upgrade websocket arrived for a polling session: it becomes the probe."""
        session = route.session
        assert session is not None and route.kind is _R_UPGRADE
        session.set_state(_UPGRADING)
        ws = WebSocket(session, upgraded=False)
        session.probe = ws
        session.upgrade_deadline = now + self.config.upgrade_timeout
        self._schedule(session)
        return ws

    def take_frames(self, session: Session) -> list[Data]:
        """Everything queued for a websocket transport, encoded as frames, in order."""
        outbox = session.outbox
        if not outbox:
            return []
        encode = session.codec.encode_frame
        frames = [encode(p) for p in outbox]
        outbox.clear()
        session.queued_bytes = 0
        if session.state is _CLOSING and frames[-1] == "1":
            # the CLOSE packet has been handed out: the websocket goes next
            self._finish(session)
        return frames

    def receive_frame(self, ws: WebSocket, frame: Data, now: float) -> Data | None:
        """One frame from a websocket: returns message data to deliver, or None.

        Everything else the frame causes is in :attr:`events`.
        """
        session = ws.session
        if (
            type(frame) is str
            and frame
            and frame[0] == "4"
            and ws.upgraded
            and not ws.closed
            and session.state is _OPEN
            and len(frame) <= self._quarter_size
        ):
            return frame[_AFTER_TYPE]  # the common case: a text message on an open websocket
        if ws.closed or session.state is _CLOSED:
            return None
        if _too_big(frame, self._max_size):
            self._ws_fail(ws, WS_CLOSE_TOO_BIG, now)
            return None
        try:
            packet = session.codec.decode_frame(frame)
        except ProtocolError:
            self._ws_fail(ws, WS_CLOSE_PROTOCOL, now)
            return None
        if not ws.upgraded:
            self._probe_frame(ws, packet, now)
            return None
        if packet.type is _MESSAGE:
            if session.state is _CLOSING:
                return None
            return packet.data
        if packet.type is _PING_TYPE and packet.data == "probe":
            self.events.append(SendFrames(ws, ("3probe",)))
            return None
        if not self._control(session, packet, now):
            self._ws_fail(ws, WS_CLOSE_PROTOCOL, now)
        return None

    def _probe_frame(self, ws: WebSocket, packet: Packet, now: float) -> None:
        session = ws.session
        if packet.type is _PING_TYPE and packet.data == "probe" and not ws.probed:
            ws.probed = True
            self.events.append(SendFrames(ws, ("3probe",)))
            if session.poll_held:
                session.noop_pending = True
                self.events.append(TransportWritable(session))
            return
        if packet.type is _UPGRADE_TYPE and ws.probed:
            self._complete_upgrade(ws)
            return
        self._abort_upgrade(session, WS_CLOSE_PROTOCOL)

    def _complete_upgrade(self, ws: WebSocket) -> None:
        session = ws.session
        session.probe = None
        session.upgrade_deadline = INF
        ws.upgraded = True
        session.ws = ws
        session.transport = _WEBSOCKET
        session.set_state(_OPEN)
        if session.poll_held:
            # the poll must end; a NOOP is all it gets, packets now go on the websocket
            session.noop_pending = True
        self.events.append(TransportWritable(session))

    def _abort_upgrade(self, session: Session, code: int = WS_CLOSE_NORMAL) -> None:
        probe = session.probe
        session.upgrade_deadline = INF
        if probe is None:
            return
        session.probe = None
        probe.closed = True
        if session.state is _UPGRADING:
            session.set_state(_OPEN)
        self.events.append(CloseWebSocket(probe, code))

    def websocket_closed(self, ws: WebSocket, now: float) -> None:
        """The peer closed (or the runtime lost) this websocket."""
        if ws.closed:
            return
        session = ws.session
        if not ws.upgraded:
            ws.closed = True
            if session.probe is ws:
                self._abort_upgrade(session)
            return
        ws.closed = True
        if session.state is _CLOSING:
            self._finish(session)
        else:
            self._close(session, CloseReason.TRANSPORT_CLOSE, now)

    def _ws_fail(self, ws: WebSocket, code: int, now: float) -> None:
        if not ws.upgraded:
            self._abort_upgrade(ws.session, code)
            return
        ws.closed = True
        self.events.append(CloseWebSocket(ws, code))
        self._close(ws.session, CloseReason.TRANSPORT_ERROR, now)

    # --- closing -----------------------------------------------------------

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

    def session_ids(self) -> Iterable[str]:
        """The ids of sessions the application can address (open or upgrading)."""
        return [sid for sid, s in self.sessions.items() if not s.closed]


def _check_text(text: str) -> None:
    """Refuse, at the sender, text with no UTF-8 form (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("message text has no UTF-8 form (it holds a lone surrogate)") from None


def _too_big(frame: Data, limit: int) -> bool:
    n = len(frame)
    if n <= limit // 4 or isinstance(frame, (bytes, bytearray)):
        return n > limit
    if n > limit:
        return True
    return len(frame.encode("utf-8", "surrogatepass")) > limit
