"""The HTTP/3 side of the WebTransport listener: one QUIC connection, on aioquic.

Imported only when a :class:`~engineio_asgi.webtransport.WebTransportListener`
starts, so aioquic stays an optional dependency.
"""

from __future__ import annotations

from typing import Any, Callable

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamReset

__all__ = ["H3Protocol", "make_protocol"]

NewSession = Callable[["H3Protocol", int, dict[str, Any]], Any]
"""Makes the listener's record of a WebTransport session (and starts its task): from the
connection, the session's CONNECT stream id and its ASGI-like scope."""


def make_protocol(
    path: str, server_addr: tuple[str, int], new_session: NewSession
) -> Callable[..., QuicConnectionProtocol]:
    """What aioquic's ``serve`` makes for each connection: sessions accepted at ``path``."""

    def create(*args: Any, **kwargs: Any) -> QuicConnectionProtocol:
        return H3Protocol(path, server_addr, new_session, *args, **kwargs)

    return create


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 with WebTransport, its sessions by CONNECT stream id."""

    def __init__(
        self, path: str, server_addr: tuple[str, int], new_session: NewSession, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.path = path
        self.server_addr = server_addr
        self.new_session = new_session
        self._http: H3Connection | None = None
        self._sessions: dict[int, Any] = {}
        self._flush_pending = False

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self._http = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            for session in list(self._sessions.values()):
                session.peer_gone()
            self._sessions.clear()
            return
        elif isinstance(event, StreamReset):
            reset = self._sessions.get(event.stream_id)
            if reset is not None:  # the CONNECT stream reset: the session is gone
                self.forget(event.stream_id)
                reset.peer_gone()
            else:
                for session in self._sessions.values():
                    if session.stream_id == event.stream_id:
                        session.peer_gone()
                        break
        if self._http is not None:
            for h3_event in self._http.handle_event(event):
                self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, WebTransportStreamDataReceived):
            session = self._sessions.get(event.session_id)
            if session is not None:
                session.stream_data(event.stream_id, event.data, event.stream_ended)
        elif isinstance(event, DataReceived):
            session = self._sessions.get(event.stream_id)
            if session is not None and event.stream_ended:
                # the client closed the session (its CONNECT stream ends with the close capsule)
                self.forget(event.stream_id)
                session.peer_gone()
        elif isinstance(event, HeadersReceived):
            self._request(event)

    def _request(self, event: HeadersReceived) -> None:
        pseudo: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in event.headers:
            if name.startswith(b":"):
                pseudo[name] = value
            else:
                headers.append((name, value))
        raw_path = pseudo.get(b":path", b"/")
        path, _, query = raw_path.partition(b"?")
        if (
            pseudo.get(b":method") != b"CONNECT"
            or pseudo.get(b":protocol") != b"webtransport"
            or not (path.decode("latin-1") + "/").startswith(self.path)
        ):
            self.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
            return
        headers.append((b"host", pseudo.get(b":authority", b"")))
        paths = getattr(self._quic, "_network_paths", None)  # aioquic keeps the peer's address here
        peer = paths[0].addr if paths else None
        scope: dict[str, Any] = {
            "type": "webtransport",
            "asgi": {"version": "3.0"},
            "http_version": "3",
            "scheme": "https",
            "method": "CONNECT",
            "path": path.decode("latin-1"),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": (peer[0], peer[1]) if peer else None,
            "server": self.server_addr,
        }
        self._sessions[event.stream_id] = self.new_session(self, event.stream_id, scope)

    def forget(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    # --- writing (from the session tasks and the application) ----------------------

    def send_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False
    ) -> None:
        if self._http is not None:
            try:
                self._http.send_headers(stream_id, headers, end_stream=end_stream)
            except Exception:  # the stream or connection is gone: nothing left to tell
                return
            self._soon()

    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._http is not None:
            try:
                self._http.send_data(stream_id, data, end_stream=end_stream)
            except Exception:  # the stream or connection is gone: nothing left to tell
                return
            self._soon()

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=end_stream)
        except Exception as exc:  # reset or stopped by the peer, or the connection closed
            raise ConnectionError(f"WebTransport stream {stream_id}: {exc}") from exc
        self._soon()

    def _soon(self) -> None:
        """Send what was written once the current step is done (many writes, one transmit)."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self.transmit()
