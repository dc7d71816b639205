"""Every request's way in, and the handshake: what a request asks for, how a session begins."""

from __future__ import annotations

import enum
import json
from binascii import b2a_base64
from collections.abc import Sequence
from os import urandom

from ._names import CLOSED, CLOSING, OPEN, OPEN_TYPE, OPENING, POLLING, UPGRADING, WEBSOCKET, WEBTRANSPORT
from ._state import CoreState
from .config import ServerConfig
from .cookie import cookie_header
from .errors import ErrorCode, LocalProtocolError, ProtocolError
from .events import AcceptWebSocket, CloseWebSocket, ConnectRequest, Event, Respond
from .http import _NO_HEADERS, cors_headers
from .machine import SESSION, Input
from .message import Headers, Request
from .packet import CODECS, Codec, Packet
from .session import CloseReason, PendingRequest, Session, Transport, WebSocket
from .v3 import V3

__all__ = [
    "CODECS_BY_PARAM",
    "UNAUTHORIZED_BODY",
    "WS_CLOSE_NORMAL",
    "RoutingMixin",
    "asks_for_session",
    "default_sid",
    "open_packet_parts",
]

WS_CLOSE_NORMAL = 1000
UNAUTHORIZED_BODY = b'"Unauthorized"'
"""The 401 body when the application refuses a connection without saying why (JSON)."""
CODECS_BY_PARAM: dict[str, Codec] = {str(v): c for v, c in CODECS.items()}
"""Codecs by the exact text of the ``EIO`` parameter (``"04"`` is not version 4)."""


class _Kind(enum.Enum):
    """What a valid request asks for."""

    HANDSHAKE = "handshake"
    POLL = "poll"
    POST = "post"
    UPGRADE = "upgrade"
    PREFLIGHT = "preflight"
    IGNORE = "ignore"  # a websocket for a session already upgrading or upgraded
    STREAM = "stream"  # a WebTransport session: its first packet says what it is for


_R_HANDSHAKE = _Kind.HANDSHAKE
_R_POLL = _Kind.POLL
_R_POST = _Kind.POST
_R_UPGRADE = _Kind.UPGRADE
_R_PREFLIGHT = _Kind.PREFLIGHT
_R_IGNORE = _Kind.IGNORE
_R_STREAM = _Kind.STREAM


_new_tuple = tuple.__new__  # a NamedTuple made without its Python-level __new__ (once per handshake)
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def default_sid() -> str:
    """An unguessable session id: 120 random bits, URL-safe (as ``secrets.token_urlsafe(15)``:
    15 bytes from the system's generator, in base64 with ``-`` and ``_``, 20 characters)."""
    return b2a_base64(urandom(15), newline=False).translate(_URLSAFE).decode("ascii")


def asks_for_session(request: Request, websocket: bool) -> bool:
    """Whether ``request`` would open a session (no ``sid``) or upgrade one (a websocket
    with one): the requests an application may refuse with ``receive_request(refuse=...)``.

    Decided from the request alone, before the core's checks (which may still refuse
    it); a preflight, a poll and a POST never ask.
    """
    if websocket:
        return True
    return request.method != "OPTIONS" and "sid" not in request.query


def open_packet_parts(cfg: ServerConfig) -> tuple[tuple[str, str], tuple[str, str]]:
    """The OPEN packet's JSON before and after the session id, for polling and websocket
    handshakes: the same for every session, so it is written once."""

    def parts(upgrades: list[str]) -> tuple[str, str]:
        handshake = {
            "sid": "\0",
            "upgrades": upgrades,
            # the grace period is advertised, so clients wait that much longer for a ping
            "pingInterval": round((cfg.ping_interval + cfg.ping_interval_grace) * 1000),
            "pingTimeout": round(cfg.ping_timeout * 1000),
            "maxPayload": cfg.max_http_buffer_size,
        }
        before, _, after = json.dumps(handshake, separators=(",", ":")).partition('"\\u0000"')
        return before, after

    return parts(cfg.upgrades_offered), parts([])


class RoutingMixin(CoreState):
    """Every request's way in, and the handshake (open, accept, reject)."""

    def receive_request(
        self,
        request: Request,
        now: float,
        *,
        websocket: bool = False,
        webtransport: bool = False,
        refuse: str | None = None,
    ) -> tuple[int, Sequence[Event]]:
        """A request arrived (``websocket``: a websocket handshake; ``webtransport``: a
        WebTransport session's extended CONNECT); returns its id and the events it caused.

        What to do with it comes as events: a :class:`~engineio_sansio.Respond`
        (an error, a preflight, a poll answered at once; an error comes after a
        :class:`~engineio_sansio.RequestRefused` saying why), a
        :class:`~engineio_sansio.ConnectRequest` (a new session: the application
        decides), an :class:`~engineio_sansio.AcceptWebSocket`, or nothing yet: a
        GET held until there is something to send, a POST waiting for its body
        (feed every request's body to :meth:`receive_body`).

        A WebTransport session accepted with ``AcceptWebSocket`` is then carried
        by the first bidirectional stream the client opens: feed its bytes to
        :meth:`receive_body` as they come (``more=False`` when the client ends
        it). Its first packet says whether it opens a session or upgrades one.

        ``refuse`` is the application's refusal of a request that
        :func:`~engineio_sansio.asks_for_session` (python-engineio's
        ``allow_request`` said no), with its message (``""`` for none): a request
        that passes every other check and would open or upgrade a session is
        answered 403 ``{"code": 4, "message": ...}`` instead; other requests
        are unaffected.
        """
        rid = self._next_rid
        self._next_rid = rid + 1
        self._last_now = now
        # (a request without an Origin, most of them, has no CORS headers to compute)
        cors = _NO_HEADERS if request.headers.get("origin") is None else cors_headers(self.config, request)
        if cors is None:
            # the reason goes in the body (as Node's server does), so a browser's
            # network panel says why; the client sent this origin, it learns nothing new
            origin = request.headers.get("origin", "")
            reason = f"origin {origin[:200]!r} not allowed"
            error = ProtocolError(
                ErrorCode.FORBIDDEN, reason, 403, name="ORIGIN_NOT_ALLOWED", origin=origin, message=reason
            )
            self._refuse(rid, error, None)
            return rid, self._take()
        try:
            if webtransport:
                kind, session, codec, transport = self._route_stream(request)
            else:
                kind, session, codec, transport = self._route(request, now, websocket)
        except ProtocolError as exc:
            self._refuse(rid, exc, cors)
            return rid, self._take()
        if kind is _R_POLL:
            self._poll(PendingRequest(rid, session, request, cors))  # type: ignore[arg-type]
        elif kind is _R_POST:
            self._begin_post(PendingRequest(rid, session, request, cors))  # type: ignore[arg-type]
        elif kind is _R_HANDSHAKE:
            if refuse is None:
                self._open_session(rid, request, cors, codec, transport)
            else:
                self._forbid(rid, refuse, cors)
        elif kind is _R_UPGRADE:
            if refuse is None:
                self._attach_probe(rid, session, now, codec)  # type: ignore[arg-type]
            else:
                self._forbid(rid, refuse, cors)
        elif kind is _R_PREFLIGHT:
            self._events.append(Respond(rid, 204, list(cors), b""))
        elif kind is _R_STREAM:
            if refuse is None:
                self._open_stream(rid, request, cors)
            else:
                self._forbid(rid, refuse, cors)
        else:  # Node's engine.io accepts and closes it: a refusal reads as an error, not a close
            self._events.append(AcceptWebSocket(rid, []))
            self._events.append(CloseWebSocket(rid, WS_CLOSE_NORMAL, 0.0))
        return rid, self._take()

    def _forbid(self, rid: int, message: str, cors: Headers) -> None:
        """The application refused request ``rid`` (Node's ``allowRequest`` context: the message)."""
        context = {"message": message} if message else {}
        self._refuse(
            rid, ProtocolError(ErrorCode.FORBIDDEN, "refused by the application", 403, **context), cors
        )

    def _route(
        self, request: Request, now: float, websocket: bool
    ) -> tuple[_Kind, Session | None, Codec, Transport]:
        query = request.query
        if request.method == "OPTIONS" and not websocket:
            return _R_PREFLIGHT, None, CODECS[4], POLLING
        codec = CODECS_BY_PARAM.get(query.get("EIO"))  # type: ignore[arg-type]
        if codec is None:
            # as in Node's engine.io, anything but EIO=4 (a missing EIO too) is v3 when it is allowed
            if not self.config.allow_eio3:
                raise ProtocolError(
                    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "unsupported EIO", protocol=query.get("EIO")
                )
            codec = V3
        name = query.get("transport")
        if name == "polling":
            transport = POLLING
            enabled = self._polling_enabled
        elif name == "websocket":
            transport = WEBSOCKET
            enabled = self._websocket_enabled
        else:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT, transport=name)
        if not enabled:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT, "transport disabled", transport=name)
        if websocket != (transport is WEBSOCKET):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "transport does not match the request",
                name="TRANSPORT_MISMATCH",
                transport=name,
            )
        sid = query.get("sid")
        if sid is None:
            if not websocket and request.method != "GET":
                raise ProtocolError(ErrorCode.BAD_HANDSHAKE_METHOD, method=request.method)
            if codec is V3:
                codec = V3.for_request(query, websocket)
            return _R_HANDSHAKE, None, codec, transport
        session = self._sessions.get(sid)
        if session is not None and session.heap_deadline is not None and session.heap_deadline <= now:
            self._run_due(session, now)  # a deadline the timer has not reached yet
            self._schedule(session)
        if session is None or session.state is OPENING or session.state is CLOSED:
            raise ProtocolError(ErrorCode.UNKNOWN_SID, sid=sid)
        if session.codec is not codec and session.codec.version != codec.version:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "protocol version changed",
                name="PROTOCOL_MISMATCH",
                protocol=query.get("EIO"),
            )
        if websocket:
            if session.transport is not POLLING or session.state is UPGRADING:
                return _R_IGNORE, session, codec, transport
            if session.state is not OPEN or not self.config.allow_upgrades:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "upgrade not possible", name="UPGRADE_NOT_POSSIBLE", sid=sid
                )
            if codec is V3:
                codec = V3.for_request(query, websocket)
            return _R_UPGRADE, session, codec, transport
        if session.transport is not POLLING:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "session is not on polling",
                name="TRANSPORT_MISMATCH",
                transport=name,
                previousTransport="websocket",
            )
        if request.method == "GET":
            return _R_POLL, session, codec, transport
        if request.method == "POST":
            if session.state is CLOSING:
                raise ProtocolError(ErrorCode.UNKNOWN_SID, sid=sid)
            return _R_POST, session, codec, transport
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "method not allowed", name="METHOD_NOT_ALLOWED", method=request.method
        )

    def _route_stream(self, request: Request) -> tuple[_Kind, Session | None, Codec, Transport]:
        """A WebTransport CONNECT: Engine.IO v4 with the transport enabled (no session yet).

        engine.io-client sends no query on this request (the stream's first packet
        says the rest), so ``EIO`` and ``transport`` are checked only when present.
        """
        query = request.query
        codec = CODECS_BY_PARAM.get(query.get("EIO", "4"))
        if codec is None or codec.version != 4:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "unsupported EIO")
        if query.get("transport", "webtransport") != "webtransport":
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT)
        if not self._webtransport_enabled:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT, "transport disabled")
        return _R_STREAM, None, codec, WEBTRANSPORT

    def _open_session(
        self, rid: int, request: Request, cors: Headers, codec: Codec, transport: Transport
    ) -> None:
        """Create a session with its OPEN packet queued, and ask the application.

        The session is ``OPENING`` until :meth:`accept` or :meth:`reject`; the
        application may already send messages (they follow the OPEN packet).
        """
        sid = self._sid_generator()
        for _ in range(8):
            if sid not in self._sessions:
                break
            sid = self._sid_generator()
        else:
            raise RuntimeError("the session id generator keeps repeating ids")
        session = Session(sid, codec, transport)
        if codec.version == 4:
            before, after = self._open_parts[transport is not POLLING]
            plain = sid.isascii() and sid.isprintable() and '"' not in sid and "\\" not in sid
            quoted = '"' + sid + '"' if plain else json.dumps(sid)  # JSON text of the id
            opening = before + quoted + after
        else:
            cfg = self.config
            handshake = {
                "sid": sid,
                "upgrades": self._upgrades if transport is POLLING else [],
                # v3 clients ping every pingInterval themselves; the grace goes to the server's deadline
                "pingInterval": round(cfg.ping_interval * 1000),
                "pingTimeout": round(cfg.ping_timeout * 1000),
            }
            opening = json.dumps(handshake, separators=(",", ":"))
        session.outbox = [_new_tuple(Packet, (OPEN_TYPE, opening))]
        if transport is not POLLING:
            ws = session.ws = WebSocket(session, rid, upgraded=True, stream=transport is WEBTRANSPORT)
            ws.busy = True  # nothing is written before the handshake is accepted
            self._sockets[rid] = ws
        else:
            rec = session.handshake = PendingRequest(rid, session, request, cors)
            self._requests[rid] = rec
        self._sessions[sid] = session
        handshakes = self._stats.handshakes
        key = (transport, codec.version)
        handshakes[key] = handshakes.get(key, 0) + 1
        self._events.append(_new_tuple(ConnectRequest, (sid, rid, transport)))

    def accept(self, sid: str, now: float) -> Sequence[Event]:
        """The application accepts session ``sid``: its handshake is answered, heartbeats start.

        A no-op for a session that is gone already (closed by the application
        from its connect handler).
        """
        self._accept(sid, now)
        return self._take()

    def _accept(self, sid: str, now: float) -> None:
        session = self._sessions.get(sid)
        if session is None or session.state is CLOSED:
            return
        SESSION.step(session, Input.ACCEPT)  # (the session must be opening)
        self._last_now = now
        # v4: the first ping is due an interval from now; v3: the client pings, and its
        # first ping is due an interval (and the grace) from now
        first = self._v3_ping_deadline if session.codec.version == 3 else self._ping_interval
        session.heartbeat_machine.step(session, Input.ACCEPT, now + first)
        self._schedule(session)
        if session.handshake_lost:  # the client left while the application decided
            self._close(session, CloseReason.TRANSPORT_CLOSE, now)
            return
        ws = session.ws
        if ws is not None:
            if not ws.stream:  # a WebTransport session was accepted with its CONNECT
                self._events.append(AcceptWebSocket(ws.rid, self._handshake_headers(session)))
            ws.busy = False
            self._write(ws)
            return
        rec = session.handshake
        if rec is None:
            raise LocalProtocolError(f"accept({sid!r}): the session has no handshake request")
        session.handshake = None
        del self._requests[rec.rid]
        self._respond_payload(rec)

    def reject(self, sid: str, body: bytes | None = None) -> Sequence[Event]:
        """The application refuses session ``sid``: its handshake gets a 401 with ``body``
        (JSON; :data:`UNAUTHORIZED_BODY` when None) and the session is forgotten.
        A no-op for a session that is gone already."""
        session = self._sessions.get(sid)
        if session is None or session.state is CLOSED:
            return ()
        self._refuse_handshake(session, body, Input.REJECT)  # (the session must be opening)
        return self._take()

    def _refuse_handshake(self, session: Session, body: bytes | None, cause: Input) -> None:
        ws = session.ws
        rec = session.handshake
        SESSION.step(session, cause)
        self._stats.rejected += 1
        session.outbox = ()
        session.handshake = None
        self._sessions.pop(session.sid, None)
        if session.handshake_lost:
            return
        headers: Headers = [(b"content-type", b"application/json")]
        if ws is not None:
            rid = ws.rid
            ws.closed = ws.done = True
            del self._sockets[rid]  # the request is done: a later connection_lost is ignored
            self._streams.pop(rid, None)
        elif rec is not None:
            rid = rec.rid
            headers.extend(rec.cors)
            del self._requests[rid]
        else:
            return
        self._events.append(Respond(rid, 401, headers, body if body is not None else UNAUTHORIZED_BODY))

    def _handshake_headers(self, session: Session) -> Headers:
        """Headers the handshake response carries besides CORS (the session cookie)."""
        cookie = cookie_header(self.config.cookie, session.sid)
        return [cookie] if cookie else []
