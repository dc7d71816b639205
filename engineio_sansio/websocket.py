"""The websocket transport: frames in and out, and the upgrade from polling (probe, 5).

A WebTransport stream goes through here too once its first packet is read (see
:mod:`.webtransport`): only its frames differ, framed for the stream on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._names import (
    CLOSE_TYPE,
    CLOSED,
    CLOSING,
    MESSAGE,
    OPEN,
    OPENING,
    PING_TYPE,
    POLLING,
    UPGRADE_TYPE,
    WEBSOCKET,
    WEBTRANSPORT,
)
from ._state import CoreState
from .errors import LocalProtocolError, ProtocolError
from .events import AcceptWebSocket, CloseWebSocket, Event, MessageReceived, SendFrames, Upgraded
from .framing import encode_stream_frame
from .machine import SESSION, UPGRADE, Input
from .packet import Codec, Data, Packet
from .routing import WS_CLOSE_NORMAL
from .session import CloseReason, Session, WebSocket

__all__ = [
    "CLIENT_CLOSE_GRACE",
    "WS_CLOSE_NORMAL",
    "WS_CLOSE_POLICY",
    "WS_CLOSE_PROTOCOL",
    "WS_CLOSE_TOO_BIG",
    "WebSocketMixin",
]

WS_CLOSE_PROTOCOL = 1002
WS_CLOSE_POLICY = 1008
"""The code a runtime closes a refused websocket handshake with, where it cannot answer HTTP."""
WS_CLOSE_TOO_BIG = 1009
CLIENT_CLOSE_GRACE = 1.0
"""After a CLOSE packet went either way on a websocket, how long the client has to close
it before the server does (a client that closes first avoids a close race)."""
_AFTER_TYPE = slice(1, None)  # frame[_AFTER_TYPE] is frame[1:] without building a slice each time
_new_event = tuple.__new__


class WebSocketMixin(CoreState):
    """Websocket sessions, and the upgrade of a polling session to a websocket."""

    def receive_frame(self, rid: int, frame: Data, now: float) -> Sequence[Event]:
        """One whole message from websocket ``rid`` (text as ``str``, binary as ``bytes``)."""
        ws = self._sockets.get(rid)
        if ws is None:
            self._check_rid(rid)
            return ()  # the websocket has been reported gone
        session = ws.session
        if (
            type(frame) is str
            and frame
            and frame[0] == "4"
            and ws.upgraded
            and not ws.closed
            and session.state is OPEN
            and len(frame) <= self._quarter_size
        ):
            # the common case: a text message on an open websocket (tuple.__new__ skips
            # the NamedTuple's Python-level __new__: once per message)
            stats = self._stats
            stats.ws_messages_in += 1
            stats.ws_bytes_in += len(frame)
            return (_new_event(MessageReceived, (session.sid, frame[_AFTER_TYPE])),)
        self._frame(ws, frame, now)
        return self._take()

    def _frame(self, ws: WebSocket, frame: Data, now: float) -> None:
        """Any frame from ``ws``: what it causes goes into the events."""
        session = ws.session
        if ws.closed or session.state is CLOSED:
            return
        self._stats.ws_bytes_in += len(frame)
        if _too_big(frame, self._max_size):
            self._ws_fail(ws, WS_CLOSE_TOO_BIG, now)
            return
        try:
            packet = session.codec.decode_frame(frame)
        except ProtocolError:
            self._ws_fail(ws, WS_CLOSE_PROTOCOL, now)
            return
        if not ws.upgraded:
            self._probe_frame(ws, packet)
            return
        t = packet.type
        if t is MESSAGE:
            if session.state is not CLOSING:
                self._stats.ws_messages_in += 1
                self._events.append(MessageReceived(session.sid, packet.data))  # type: ignore[arg-type]
            return
        if t is PING_TYPE and packet.data == "probe":
            ws.pending += ("3probe",)
            self._write(ws)
            return
        if t is CLOSE_TYPE:
            ws.close_packet_seen = True
        if not self._control(session, packet, now):
            self._ws_fail(ws, WS_CLOSE_PROTOCOL, now)

    def frames_sent(self, rid: int) -> Sequence[Event]:
        """The frames of the last :class:`~engineio_sansio.SendFrames` for ``rid`` are
        written; returns what to write next, if anything waited."""
        ws = self._sockets.get(rid)
        if ws is None:
            self._check_rid(rid)
            return ()  # reported gone meanwhile
        if not ws.busy:
            raise LocalProtocolError(f"frames_sent({rid}): no frames were handed out for it")
        ws.busy = False
        if ws.pending or ws.close_code is not None or ws.session.outbox:
            self._write(ws)
            return self._take()
        return ()

    def _write(self, ws: WebSocket) -> None:
        """Hand out what websocket ``ws`` has to write next: frames, else its close."""
        if ws.busy or ws.done:
            return
        frames = ws.pending
        session = ws.session
        outbox = session.outbox
        carries = outbox and ws.upgraded and session.ws is ws and session.transport is not POLLING
        if carries:
            encoded = tuple(map(session.codec.encode_frame, outbox))
            frames = frames + encoded if frames else encoded
            session.outbox = ()
            session.queued_bytes = 0
        if frames:
            ws.pending = ()
            ws.busy = True
            self._stats.ws_bytes_out += sum(map(len, frames))
            if ws.stream:
                self._events.append(SendFrames(ws.rid, (b"".join(map(encode_stream_frame, frames)),)))
            else:
                self._events.append(SendFrames(ws.rid, frames))
            if carries and frames[-1] == "1":
                ws.close_packet_seen = True
                if session.state is CLOSING:
                    self._finish(session)  # the CLOSE packet is out: the websocket goes next
            return
        if ws.close_code is not None:
            ws.done = True
            self._events.append(CloseWebSocket(ws.rid, ws.close_code, ws.close_grace))

    def _close_socket(self, ws: WebSocket, code: int) -> None:
        """The core closes ``ws``: after what it has to write, with ``code``."""
        if ws.close_code is not None or ws.done:
            return
        ws.closed = True
        ws.close_code = code
        ws.close_grace = CLIENT_CLOSE_GRACE if ws.close_packet_seen else 0.0
        self._write(ws)

    def _attach_probe(
        self, rid: int, session: Session, now: float, codec: Codec, stream: bool = False
    ) -> None:
        """An upgrade websocket (or WebTransport ``stream``) arrived for a polling session:
        it becomes the probe, and ``codec`` the session's once the upgrade completes (a v3
        client's may differ)."""
        SESSION.step(session, Input.UPGRADE_REQUEST)
        UPGRADE.step(session, Input.UPGRADE_REQUEST, now + self.config.upgrade_timeout)
        ws = WebSocket(session, rid, upgraded=False, stream=stream)
        ws.codec = codec
        session.probe = ws
        self._sockets[rid] = ws
        self._schedule(session)
        if not stream:  # a WebTransport session was accepted with its CONNECT
            self._events.append(AcceptWebSocket(rid, []))

    def _probe_frame(self, ws: WebSocket, packet: Packet) -> None:
        """A packet on the probe: ``2probe``, then ``5``; anything else fails the upgrade."""
        session = ws.session
        t = packet.type
        if t is PING_TYPE and packet.data == "probe":
            event = Input.PROBE_PING
        elif t is UPGRADE_TYPE:
            event = Input.UPGRADE_PACKET
        else:
            event = Input.PROBE_ERROR
        if not UPGRADE.allows(session.upgrade, event):  # (a second 2probe, a 5 before it)
            event = Input.PROBE_ERROR
        if event is Input.PROBE_ERROR:
            self._abort_upgrade(session, event, WS_CLOSE_PROTOCOL)
        elif event is Input.UPGRADE_PACKET:
            self._complete_upgrade(ws)
        else:
            UPGRADE.step(session, event, session.upgrade_at)  # the same deadline
            ws.pending += ("3probe",)
            self._write(ws)
            if session.poll is not None:
                session.noop_pending = True
                self._answer_poll(session)

    def _complete_upgrade(self, ws: WebSocket) -> None:
        session = ws.session
        session.probe = None
        UPGRADE.step(session, Input.UPGRADE_PACKET)
        ws.upgraded = True
        session.ws = ws
        session.transport = WEBTRANSPORT if ws.stream else WEBSOCKET
        if ws.codec is not None:
            session.codec = ws.codec
        SESSION.step(session, Input.UPGRADE_PACKET)
        self._stats.upgrades += 1
        self._events.append(Upgraded(session.sid, ws.rid))
        if session.poll is not None:
            # the poll must end: a NOOP is all it gets, packets now go on the websocket
            session.noop_pending = True
            self._answer_poll(session)
        self._write(ws)

    def _abort_upgrade(self, session: Session, cause: Input, code: int = WS_CLOSE_NORMAL) -> None:
        """The upgrade fails (``cause``): the probe is closed with ``code``, polling carries on."""
        probe = session.probe
        if probe is None:
            return
        session.probe = None
        self._stats.upgrade_failures += 1
        UPGRADE.step(session, cause)
        SESSION.step(session, cause)
        self._close_socket(probe, code)

    def _websocket_closed(self, ws: WebSocket, now: float) -> None:
        """The peer closed (or the runtime lost) this websocket."""
        ws.done = True
        if ws.closed:
            return
        ws.closed = True
        session = ws.session
        if not ws.upgraded:
            if session.probe is ws:
                self._abort_upgrade(session, Input.PROBE_LOST)
            return
        if session.state is OPENING:  # gone while the application decides: told once it has
            session.handshake_lost = True
            return
        if session.state is CLOSING:
            self._finish(session, Input.TRANSPORT_LOST)
        else:
            self._close(session, CloseReason.TRANSPORT_CLOSE, now)

    def _ws_fail(self, ws: WebSocket, code: int, now: float) -> None:
        if not ws.upgraded:
            self._abort_upgrade(ws.session, Input.PROBE_ERROR, code)
            return
        self._close_socket(ws, code)
        self._close(ws.session, CloseReason.TRANSPORT_ERROR, now)


def _too_big(frame: Data, limit: int) -> bool:
    n = len(frame)
    if n <= limit // 4 or isinstance(frame, (bytes, bytearray)):
        return n > limit
    if n > limit:
        return True
    return len(frame.encode("utf-8", "surrogatepass")) > limit
