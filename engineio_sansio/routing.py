"""Routing and handshake: what a request asks for, and how a session begins."""

from __future__ import annotations

import enum
import json
import secrets

from ._names import (
    CLOSED as _CLOSED,
)
from ._names import (
    CLOSING as _CLOSING,
)
from ._names import (
    OPEN as _OPEN,
)
from ._names import (
    OPEN_TYPE as _OPEN_TYPE,
)
from ._names import (
    OPENING as _OPENING,
)
from ._names import (
    POLLING as _POLLING,
)
from ._names import (
    UPGRADING as _UPGRADING,
)
from ._names import (
    WEBSOCKET as _WEBSOCKET,
)
from ._state import CoreState
from .cookie import cookie_header
from .errors import ErrorCode, ProtocolError
from .http import cors_headers, error_response
from .message import Headers, Request, Response
from .packet import CODECS, Codec, Packet
from .session import Session, Transport, WebSocket

__all__ = ["CODECS_BY_PARAM", "Route", "RouteKind", "RoutingMixin", "default_sid"]

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


class RoutingMixin(CoreState):
    """Routing of every request, and the handshake (open, accept, reject)."""

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
