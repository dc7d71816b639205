"""Every request's way in, and the handshake: what a request asks for, how a session begins."""

from __future__ import annotations

import enum
import json
import secrets

from ._names import CLOSED, CLOSING, OPEN, OPEN_TYPE, OPENING, POLLING, UPGRADING, WEBSOCKET
from ._state import CoreState
from .config import ServerConfig
from .cookie import cookie_header
from .errors import ErrorCode, LocalProtocolError, ProtocolError
from .events import AcceptWebSocket, CloseWebSocket, ConnectRequest, Respond
from .http import cors_headers, error_response
from .message import Headers, Request
from .packet import CODECS, Codec, Packet
from .session import CloseReason, PendingRequest, Session, Transport, WebSocket

__all__ = [
    "CODECS_BY_PARAM",
    "UNAUTHORIZED_BODY",
    "WS_CLOSE_NORMAL",
    "RoutingMixin",
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


_R_HANDSHAKE = _Kind.HANDSHAKE
_R_POLL = _Kind.POLL
_R_POST = _Kind.POST
_R_UPGRADE = _Kind.UPGRADE
_R_PREFLIGHT = _Kind.PREFLIGHT
_R_IGNORE = _Kind.IGNORE


def default_sid() -> str:
    """An unguessable session id: 120 random bits, URL-safe."""
    return secrets.token_urlsafe(15)


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

    def receive_request(self, request: Request, now: float, *, websocket: bool = False) -> int:
        """A request arrived (``websocket``: a websocket handshake); returns its id.

        What to do with it comes as events: a :class:`~engineio_sansio.Respond`
        (an error, a preflight, a poll answered at once), a
        :class:`~engineio_sansio.ConnectRequest` (a new session: the application
        decides), an :class:`~engineio_sansio.AcceptWebSocket`, or nothing yet: a
        GET held until there is something to send, a POST waiting for its body
        (feed every request's body to :meth:`receive_body`).
        """
        rid = self._next_rid
        self._next_rid = rid + 1
        self._last_now = now
        cors = cors_headers(self.config, request)
        if cors is None:
            # the reason goes in the body (as Node's server does), so a browser's
            # network panel says why; the client sent this origin, it learns nothing new
            reason = f"origin {request.headers.get('origin', '')[:200]!r} not allowed"
            response = error_response(ProtocolError(ErrorCode.FORBIDDEN, reason, 403), message=reason)
            self._events.append(Respond(rid, response.status, response.headers, response.body))
            return rid
        try:
            kind, session, codec, transport = self._route(request, now, websocket)
        except ProtocolError as exc:
            response = error_response(exc, cors)
            self._events.append(Respond(rid, response.status, response.headers, response.body))
            return rid
        if kind is _R_POLL:
            self._poll(PendingRequest(rid, session, request, cors))  # type: ignore[arg-type]
        elif kind is _R_POST:
            self._begin_post(PendingRequest(rid, session, request, cors))  # type: ignore[arg-type]
        elif kind is _R_HANDSHAKE:
            self._open_session(rid, request, cors, codec, transport)
        elif kind is _R_UPGRADE:
            self._attach_probe(rid, session, now)  # type: ignore[arg-type]
        elif kind is _R_PREFLIGHT:
            self._events.append(Respond(rid, 204, list(cors), b""))
        else:  # Node's engine.io accepts and closes it: a refusal reads as an error, not a close
            self._events.append(AcceptWebSocket(rid, []))
            self._events.append(CloseWebSocket(rid, WS_CLOSE_NORMAL, 0.0))
        return rid

    def _route(
        self, request: Request, now: float, websocket: bool
    ) -> tuple[_Kind, Session | None, Codec, Transport]:
        query = request.query
        if request.method == "OPTIONS" and not websocket:
            return _R_PREFLIGHT, None, CODECS[4], POLLING
        codec = CODECS_BY_PARAM.get(query.get("EIO"))  # type: ignore[arg-type]
        if codec is None:
            raise ProtocolError(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "unsupported EIO")
        name = query.get("transport")
        if name == "polling":
            transport = POLLING
            enabled = self._polling_enabled
        elif name == "websocket":
            transport = WEBSOCKET
            enabled = self._websocket_enabled
        else:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT)
        if not enabled:
            raise ProtocolError(ErrorCode.UNKNOWN_TRANSPORT, "transport disabled")
        if websocket != (transport is WEBSOCKET):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "transport does not match the request")
        sid = query.get("sid")
        if sid is None:
            if not websocket and request.method != "GET":
                raise ProtocolError(ErrorCode.BAD_HANDSHAKE_METHOD)
            return _R_HANDSHAKE, None, codec, transport
        session = self._sessions.get(sid)
        if session is not None and session.heap_deadline <= now:
            self._run_due(session, now)  # a deadline the timer has not reached yet
            self._schedule(session)
        if session is None or session.state is OPENING or session.state is CLOSED:
            raise ProtocolError(ErrorCode.UNKNOWN_SID)
        if session.codec is not codec:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "protocol version changed")
        if websocket:
            if session.transport is WEBSOCKET or session.state is UPGRADING:
                return _R_IGNORE, session, codec, transport
            if session.state is not OPEN or not self.config.allow_upgrades:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "upgrade not possible")
            return _R_UPGRADE, session, codec, transport
        if session.transport is not POLLING:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "session is not on polling")
        if request.method == "GET":
            return _R_POLL, session, codec, transport
        if request.method == "POST":
            if session.state is CLOSING:
                raise ProtocolError(ErrorCode.UNKNOWN_SID)
            return _R_POST, session, codec, transport
        raise ProtocolError(ErrorCode.BAD_REQUEST, "method not allowed")

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
        before, after = self._open_parts[transport is WEBSOCKET]
        plain = sid.isascii() and sid.isprintable() and '"' not in sid and "\\" not in sid
        quoted = '"' + sid + '"' if plain else json.dumps(sid)  # JSON text of the id
        session.outbox.append(Packet(OPEN_TYPE, before + quoted + after))
        if transport is WEBSOCKET:
            ws = session.ws = WebSocket(session, rid, upgraded=True)
            ws.busy = True  # nothing is written before the handshake is accepted
            self._sockets[rid] = ws
        else:
            rec = session.handshake = PendingRequest(rid, session, request, cors)
            self._requests[rid] = rec
        self._sessions[sid] = session
        self._events.append(ConnectRequest(sid, rid, transport))

    def accept(self, sid: str, now: float) -> None:
        """The application accepts session ``sid``: its handshake is answered, heartbeats start.

        A no-op for a session that is gone already (closed by the application
        from its connect handler).
        """
        session = self._sessions.get(sid)
        if session is None or session.state is CLOSED:
            return
        if session.state is not OPENING:
            raise LocalProtocolError(f"accept({sid!r}): the session is {session.state.value}, not opening")
        self._last_now = now
        session.set_state(OPEN)
        session.next_ping = now + self._ping_interval
        self._schedule(session)
        if session.handshake_lost:  # the client left while the application decided
            self._close(session, CloseReason.TRANSPORT_CLOSE, now)
            return
        ws = session.ws
        if ws is not None:
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

    def reject(self, sid: str, body: bytes | None = None) -> None:
        """The application refuses session ``sid``: its handshake gets a 401 with ``body``
        (JSON; :data:`UNAUTHORIZED_BODY` when None) and the session is forgotten.
        A no-op for a session that is gone already."""
        session = self._sessions.get(sid)
        if session is None or session.state is CLOSED:
            return
        if session.state is not OPENING:
            raise LocalProtocolError(f"reject({sid!r}): the session is {session.state.value}, not opening")
        self._refuse_handshake(session, body)

    def _refuse_handshake(self, session: Session, body: bytes | None) -> None:
        ws = session.ws
        rec = session.handshake
        session.set_state(CLOSED)
        session.outbox.clear()
        session.handshake = None
        self._sessions.pop(session.sid, None)
        if session.handshake_lost:
            return
        headers: Headers = [(b"content-type", b"application/json")]
        if ws is not None:
            rid = ws.rid
            ws.closed = ws.done = True
            del self._sockets[rid]  # the request is done: a later connection_lost is ignored
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
