"""Long polling: GETs held and answered, POST bodies decoded and delivered."""

from __future__ import annotations

from collections.abc import Sequence

from ._names import CLOSE_TYPE, CLOSED, CLOSING, MESSAGE, NOOP, OPEN_TYPE, POLLING, PROBE_ANSWERED, UPGRADING
from ._state import CoreState
from .errors import ErrorCode, LocalProtocolError, ProtocolError
from .events import Event, MessageReceived, Respond
from .http import compress_body
from .message import Headers
from .packet import Packet
from .session import CloseReason, PendingRequest, Session

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
_CLOSE_PAYLOAD = b"1"  # a v4 POST body of one CLOSE packet
_new_event = tuple.__new__  # (skips a NamedTuple's Python-level __new__: events made per request)
_OK_HEADERS: Headers = [(b"content-type", b"text/html")]


class PollingMixin(CoreState):
    """The long-polling transport: GET and POST on a session's id."""

    def _poll(self, rec: PendingRequest) -> None:
        """A GET: answered now if packets are ready, else held until they are.

        A second concurrent GET closes the session and gets a 400. A GET that
        arrives while the session is upgrading is always held, for at least
        ``UPGRADE_POLL_GRACE``; if the upgrade completes meanwhile it is
        answered 400, as any GET after the upgrade is.
        """
        session = rec.session
        if session.poll is not None:
            self._close(session, CloseReason.TRANSPORT_ERROR, None)
            self._respond_error(
                rec, ProtocolError(ErrorCode.BAD_REQUEST, "concurrent poll", name="CONCURRENT_POLL")
            )
            return
        if session.state is UPGRADING:
            session.poll_embargo = self._last_now + UPGRADE_POLL_GRACE
            self._schedule(session)
        elif session.outbox or session.noop_pending:
            self._respond_payload(rec)
            return
        session.poll = rec
        self._requests[rec.rid] = rec

    def _poll_ready(self, session: Session) -> bool:
        """Whether the held poll has something to answer with now."""
        if session.state is CLOSED:
            return True
        if session.poll_embargo is not None and session.transport is POLLING:
            return False
        return bool(session.outbox) or session.noop_pending

    def _answer_poll(self, session: Session) -> None:
        """Answer the held poll, if there is one and it has something to answer with."""
        rec = session.poll
        if rec is None or not self._poll_ready(session):
            return
        session.poll = None
        del self._requests[rec.rid]
        if session.poll_embargo is not None:
            session.poll_embargo = None
            if session.transport is not POLLING:
                # sent after the client's 5 (see UPGRADE_POLL_GRACE): the session left polling
                session.noop_pending = False
                error = ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    "session upgraded",
                    name="TRANSPORT_MISMATCH",
                    transport="polling",
                    previousTransport="websocket",
                )
                self._respond_error(rec, error)
                return
        if session.transport is not POLLING or session.upgrade is PROBE_ANSWERED:
            # upgraded, or the probe answered (the client is leaving polling): the poll
            # ends with a NOOP; packets wait for the websocket, or the next poll if the
            # upgrade fails
            session.noop_pending = False
            content_type, body = session.codec.encode_response([NOOP])
            headers: Headers = [content_type]
            headers.extend(rec.cors)
            self._stats.polling_bytes_out += len(body)
            self._events.append(Respond(rec.rid, 200, headers, body))
            return
        self._respond_payload(rec)

    def _respond_payload(self, rec: PendingRequest) -> None:
        """Answer ``rec`` with what the session has queued (at most ``max_poll_packets``)."""
        session = rec.session
        outbox = session.outbox
        limit = self.config.max_poll_packets
        packets: Sequence[Packet]
        if len(outbox) <= limit:
            packets = outbox
            session.outbox = ()
            session.queued_bytes = 0
        else:
            packets = outbox[:limit]
            session.outbox = outbox = outbox[limit:]
            session.queued_bytes = sum(len(p.data) for p in outbox if p.data is not None)
        session.noop_pending = False
        if packets:
            # remembered so that a failed write of this response is not a silent loss
            answered = self._answered
            answered.pop(session.answered_rid, None)
            answered[rec.rid] = session
            session.answered_rid = rec.rid
        else:
            packets = (NOOP,)
        content_type, body = session.codec.encode_response(packets)
        headers: Headers = [content_type]
        headers.extend(rec.cors)
        cfg = self.config
        if packets[0].type is OPEN_TYPE and cfg.cookie is not None:
            headers.extend(self._handshake_headers(session))
        if cfg.http_compression and len(body) > cfg.compression_threshold:
            body = compress_body(cfg, rec.request, body, headers)
        self._stats.polling_bytes_out += len(body)
        self._events.append(_new_event(Respond, (rec.rid, 200, headers, body)))
        if session.state is CLOSING and packets[-1].type is CLOSE_TYPE:
            self._finish(session)

    def _respond_error(self, rec: PendingRequest, error: ProtocolError) -> None:
        self._refuse(rec.rid, error, rec.cors)

    def _begin_post(self, rec: PendingRequest) -> None:
        """A POST: its body comes through :meth:`receive_body`; a second concurrent one is a 400."""
        session = rec.session
        if session.post is not None:
            self._close(session, CloseReason.TRANSPORT_ERROR, None)
            self._respond_error(
                rec, ProtocolError(ErrorCode.BAD_REQUEST, "concurrent post", name="CONCURRENT_POST")
            )
            return
        length = rec.request.headers.get("content-length")
        if length is not None:
            # refused before any of it is read (and before a server sends 100 Continue)
            try:
                too_large = int(length) > self._max_size
            except ValueError:
                too_large = True
            if too_large:
                self._too_large(rec)
                return
        session.post = rec
        self._requests[rec.rid] = rec

    def _too_large(self, rec: PendingRequest) -> None:
        self._stats.too_large += 1
        error = ProtocolError(
            ErrorCode.BAD_REQUEST,
            "payload too large",
            413,
            name="PAYLOAD_TOO_LARGE",
            message="Payload too large",
        )
        self._refuse(rec.rid, error, rec.cors)

    def receive_body(self, rid: int, data: bytes, more: bool, now: float) -> Sequence[Event]:
        """Part of request ``rid``'s body; ``more`` is False on the last part.

        Only a POST reads its body (others ignore theirs). Its size is counted
        as it arrives: past ``max_http_buffer_size`` the request gets 413 and
        the rest is not wanted. A complete body is decoded: its messages come
        as :class:`~engineio_sansio.MessageReceived` events, then the
        :class:`~engineio_sansio.Respond`. Stop reading once a request has its
        ``Respond`` (a session that closes meanwhile answers its POST with 400).
        """
        rec = self._requests.get(rid)
        if rec is None:
            entry = self._streams.get(rid)
            if entry is not None:  # a WebTransport stream's bytes
                self._stream_data(entry, rid, data, more, now)
                return self._take()
            self._check_rid(rid)
            return ()  # answered already
        session = rec.session
        if session.post is not rec:
            return ()  # not a POST: its body is not read
        if data:
            rec.size += len(data)
            if rec.size > self._max_size:
                session.post = None
                del self._requests[rid]
                self._too_large(rec)
                return self._take()
            rec.parts.append(data)
        if more:
            return ()
        session.post = None
        del self._requests[rid]
        self._stats.polling_bytes_in += rec.size
        parts = rec.parts
        self._post(rec, parts[0] if len(parts) == 1 else b"".join(parts), now)
        return self._take()

    def _post(self, rec: PendingRequest, body: bytes, now: float) -> None:
        """A whole POST body: decode it, act on each packet, answer ``ok``.

        A malformed body closes the session (transport error) and gets a 400.
        """
        session = rec.session
        if session.state is CLOSED or session.state is CLOSING:
            self._respond_error(rec, ProtocolError(ErrorCode.UNKNOWN_SID, sid=session.sid))
            return
        if body == _CLOSE_PAYLOAD and session.codec.version == 4:
            # a lone CLOSE packet, how a v4 client leaves: what the loop below does
            # for it, without decoding it first
            self._close(session, CloseReason.CLIENT_DISCONNECT, now)
        elif not self._post_packets(rec, body, now):
            return
        headers: Headers = list(_OK_HEADERS)
        headers.extend(rec.cors)
        self._events.append(_new_event(Respond, (rec.rid, 200, headers, _OK_BODY)))

    def _post_packets(self, rec: PendingRequest, body: bytes, now: float) -> bool:
        """Decode a POST body and act on its packets; False when it was refused (answered)."""
        session = rec.session
        try:
            packets = session.codec.decode_payload(body)
        except ProtocolError as exc:
            self._close(session, CloseReason.TRANSPORT_ERROR, now)
            self._respond_error(rec, ProtocolError(exc.code, exc.detail, name="BAD_PAYLOAD"))
            return False
        events = self._events
        sid = session.sid
        stats = self._stats
        for packet in packets:
            if packet.type is MESSAGE:
                stats.polling_messages_in += 1
                events.append(MessageReceived(sid, packet.data))  # type: ignore[arg-type]
            elif not self._control(session, packet, now):
                self._close(session, CloseReason.TRANSPORT_ERROR, now)
                self._respond_error(
                    rec, ProtocolError(ErrorCode.BAD_REQUEST, "bad packet", name="BAD_PACKET")
                )
                return False
            if session.closed:
                break
        return True

    def _request_gone(self, rec: PendingRequest) -> None:
        """The client of an unanswered request left: nothing was taken from the queue."""
        del self._requests[rec.rid]
        session = rec.session
        if session.poll is rec:
            session.poll = None
            session.poll_embargo = None
        elif session.post is rec:
            session.post = None
        elif session.handshake is rec:
            session.handshake = None
            session.handshake_lost = True
        else:
            raise LocalProtocolError(f"request {rec.rid} is not pending on its session")
