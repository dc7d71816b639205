"""The websocket transport: frames in and out, and the upgrade from polling (probe, 5)."""

from __future__ import annotations

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
    OPEN as _OPEN,
)
from ._names import (
    PING_TYPE as _PING_TYPE,
)
from ._names import (
    UPGRADE_TYPE as _UPGRADE_TYPE,
)
from ._names import (
    UPGRADING as _UPGRADING,
)
from ._names import (
    WEBSOCKET as _WEBSOCKET,
)
from ._state import CoreState
from .errors import LocalProtocolError, ProtocolError
from .events import CloseWebSocket, SendFrames, TransportWritable
from .packet import Data, Packet
from .routing import Route, RouteKind
from .session import INF, CloseReason, Session, WebSocket

__all__ = ["WS_CLOSE_NORMAL", "WS_CLOSE_POLICY", "WS_CLOSE_PROTOCOL", "WS_CLOSE_TOO_BIG", "WebSocketMixin"]

WS_CLOSE_NORMAL = 1000
WS_CLOSE_PROTOCOL = 1002
WS_CLOSE_POLICY = 1008
WS_CLOSE_TOO_BIG = 1009
_AFTER_TYPE = slice(1, None)  # frame[_AFTER_TYPE] is frame[1:] without building a slice each time
_R_UPGRADE = RouteKind.UPGRADE


class WebSocketMixin(CoreState):
    """Websocket sessions, and the upgrade of a polling session to a websocket."""

    def attach_probe(self, route: Route, now: float) -> WebSocket:
        """An upgrade websocket arrived for a polling session: it becomes the probe."""
        session = route.session
        if session is None or route.kind is not _R_UPGRADE:
            raise LocalProtocolError(f"attach_probe() needs an upgrade route, got {route!r}")
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


def _too_big(frame: Data, limit: int) -> bool:
    n = len(frame)
    if n <= limit // 4 or isinstance(frame, (bytes, bytearray)):
        return n > limit
    if n > limit:
        return True
    return len(frame.encode("utf-8", "surrogatepass")) > limit
