"""The WebTransport transport: one bidirectional stream per session, framed packets.

A WebTransport session enters as a request (``receive_request(...,
webtransport=True)``) and is accepted at once with an
:class:`~engineio_sansio.AcceptWebSocket` when Engine.IO v4 and the transport
are in order. The bytes of its stream then come through ``receive_body``; this
module cuts them into packets (:mod:`.framing`). The first packet decides: an
OPEN opens a new session (the application decides, as for a websocket), an OPEN
with ``{"sid": ...}`` makes the stream the upgrade probe of that polling
session. From there on the stream is a websocket as far as the core goes (the
same probe, heartbeats, close reasons and events), its frames handed out
already framed, as ``bytes``.
"""

from __future__ import annotations

import json

from ._names import CLOSED, OPEN, OPEN_TYPE, OPENING, POLLING, UPGRADING, WEBTRANSPORT
from ._state import CoreState
from .errors import ProtocolError
from .events import AcceptWebSocket, CloseWebSocket
from .framing import StreamDecoder
from .message import Headers, Request
from .packet import CODECS, Data
from .routing import WS_CLOSE_NORMAL

__all__ = ["StreamEntry", "WebTransportMixin"]

_CLOSE_PROTOCOL = 1002
_CLOSE_TOO_BIG = 1009
_V4 = CODECS[4]


class StreamEntry:
    """A WebTransport session's stream as the core reads it, from the CONNECT to its end."""

    __slots__ = ("decoder", "request", "cors")

    def __init__(self, decoder: StreamDecoder, request: Request, cors: Headers) -> None:
        self.decoder = decoder
        self.request = request
        self.cors = cors


class WebTransportMixin(CoreState):
    """WebTransport sessions: the stream's bytes in, its first packet, its end."""

    def _open_stream(self, rid: int, request: Request, cors: Headers) -> None:
        self._streams[rid] = StreamEntry(StreamDecoder(self._max_size), request, cors)
        self._events.append(AcceptWebSocket(rid, []))

    def _stream_data(self, entry: StreamEntry, rid: int, data: bytes, more: bool, now: float) -> None:
        """Bytes of stream ``rid`` (``more`` False: the client ended it)."""
        try:
            frames = entry.decoder.feed(data) if data else []
        except ProtocolError:
            self._stream_failed(rid, _CLOSE_TOO_BIG if entry.decoder.too_big else _CLOSE_PROTOCOL, now)
            return
        sockets = self._sockets
        for frame in frames:
            if rid in sockets:
                self._frame(sockets[rid], frame, now)
            elif rid in self._streams:
                self._first_packet(entry, rid, frame, now)
            else:
                return  # refused or failed meanwhile: the rest is not read
        if not more:
            cut = entry.decoder.mid_packet
            self._stream_failed(rid, _CLOSE_PROTOCOL if cut else WS_CLOSE_NORMAL, now)

    def _first_packet(self, entry: StreamEntry, rid: int, frame: Data, now: float) -> None:
        """The stream's first packet: an OPEN, for a new session or (with a sid) an upgrade."""
        try:
            packet = _V4.decode_frame(frame)
        except ProtocolError:
            packet = None
        if packet is None or packet.type is not OPEN_TYPE:
            self._stream_failed(rid, _CLOSE_PROTOCOL, now)
            return
        if not packet.data:
            self._open_session(rid, entry.request, entry.cors, _V4, WEBTRANSPORT)
            return
        sid = _sid_of(packet.data) if isinstance(packet.data, str) else None
        session = self._sessions.get(sid) if sid is not None else None
        if session is not None and session.heap_deadline is not None and session.heap_deadline <= now:
            self._run_due(session, now)  # a deadline the timer has not reached yet
            self._schedule(session)
        if session is None or session.state is OPENING or session.state is CLOSED:
            self._stream_failed(rid, _CLOSE_PROTOCOL, now)
            return
        if session.transport is not POLLING or session.state is UPGRADING:
            self._stream_failed(rid, WS_CLOSE_NORMAL, now)  # as for a second websocket
            return
        if session.state is not OPEN or not self.config.allow_upgrades or session.codec is not _V4:
            self._stream_failed(rid, _CLOSE_PROTOCOL, now)
            return
        self._attach_probe(rid, session, now, session.codec, stream=True)

    def _stream_failed(self, rid: int, code: int, now: float) -> None:
        """Stream ``rid`` ends: malformed (1002), too large (1009), or ended by the client (1000)."""
        ws = self._sockets.get(rid)
        if ws is None:  # before its first packet: no session to tell
            if self._streams.pop(rid, None) is not None:
                self._events.append(CloseWebSocket(rid, code, 0.0))
            return
        if code != WS_CLOSE_NORMAL:
            self._ws_fail(ws, code, now)
            return
        if ws.closed:
            return  # the core is closing it already
        # A client that ended its side can no longer answer pings: its transport is
        # gone, as for a websocket closed by the peer, but the runtime still holds the
        # WebTransport session open, so it is told to close it.
        self._connection_lost(rid, now)
        self._events.append(CloseWebSocket(rid, WS_CLOSE_NORMAL, 0.0))


def _sid_of(data: str) -> str | None:
    """The ``sid`` of an upgrading client's OPEN packet, ``{"sid": "..."}``; None if malformed."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    sid = value.get("sid") if isinstance(value, dict) else None
    return sid if isinstance(sid, str) else None
