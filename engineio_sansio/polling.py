"""Long polling: GETs held and answered, POST bodies decoded and delivered."""

from __future__ import annotations

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
    NOOP as _NOOP,
)
from ._names import (
    OPEN_TYPE as _OPEN_TYPE,
)
from ._names import (
    POLLING as _POLLING,
)
from ._names import (
    UPGRADING as _UPGRADING,
)
from ._state import CoreState
from .errors import ErrorCode, LocalProtocolError, ProtocolError
from .events import MessageReceived
from .http import TEXT_PLAIN, compress_body, error_response
from .message import Headers, Request, Response
from .routing import Route
from .session import INF, CloseReason, Session

__all__ = ["UPGRADE_POLL_GRACE", "PollingMixin"]

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


class PollingMixin(CoreState):
    """The long-polling transport: GET and POST on a session's id."""

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
        if session is None:
            raise LocalProtocolError(f"{route!r} has no session")
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
        if session is None:
            raise LocalProtocolError(f"{route!r} has no session")
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
        if session is None:
            raise LocalProtocolError(f"{route!r} has no session")
        if session.post_active:
            self._close(session, CloseReason.TRANSPORT_ERROR, None)
            return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "concurrent post"), route.cors)
        session.post_active = True
        return None

    def post_too_large(self, route: Route) -> Response:
        """The body grew past ``max_http_buffer_size`` while being read: 413, session kept."""
        session = route.session
        if session is None:
            raise LocalProtocolError(f"{route!r} has no session")
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
        if session is None:
            raise LocalProtocolError(f"{route!r} has no session")
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
