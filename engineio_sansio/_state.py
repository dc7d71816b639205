"""What the parts of the server core share, declared once for the type checker.

:class:`~engineio_sansio.Server` is assembled from one mixin per job (routing
and handshake, long polling, websocket and upgrade, closing); each reads and
writes the state declared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable

from .config import ServerConfig
from .errors import LocalProtocolError, ProtocolError
from .events import Event, RequestRefused, Respond
from .http import error_response
from .session import CloseReason, PendingRequest, Session, WebSocket
from .stats import Stats

if TYPE_CHECKING:
    from .machine import Input
    from .message import Headers, Request
    from .packet import Codec, Data, Packet
    from .session import Transport
    from .webtransport import StreamEntry


class CoreState:
    """The server core's shared state (set up by ``Server.__init__``)."""

    config: ServerConfig
    _sid_generator: Callable[[], str]
    _sessions: dict[str, Session]
    _stats: Stats
    _events: list[Event]
    _requests: dict[int, PendingRequest]  # HTTP requests not answered yet
    _sockets: dict[int, WebSocket]  # websockets, until the runtime reports them gone
    _streams: dict[int, StreamEntry]  # WebTransport streams being read (cut into packets)
    _answered: dict[int, Session]  # the last poll each session answered with packets
    _next_rid: int
    _heap: list[float]  # timer keys (see Server.__init__)
    _due: dict[float, str]  # timer key -> sid
    _clash_at: float
    _clash_key: float
    _ping_interval: float
    _pong_wait: float
    _v3_ping_deadline: float
    _max_size: int
    _quarter_size: int
    _last_now: float
    _polling_enabled: bool
    _open_parts: tuple[tuple[str, str], tuple[str, str]]
    _websocket_enabled: bool
    _webtransport_enabled: bool
    _upgrades: list[str]

    if TYPE_CHECKING:  # each is defined by one part and called by others

        def _schedule(self, session: Session) -> None:
            raise NotImplementedError

        def _run_due(self, session: Session, now: float) -> None:
            raise NotImplementedError

        def _queue(self, session: Session, packet: Packet) -> bool:
            raise NotImplementedError

        def _wake(self, session: Session) -> None:
            raise NotImplementedError

        def _control(self, session: Session, packet: Packet, now: float) -> bool:
            raise NotImplementedError

        def _close(self, session: Session, reason: CloseReason, now: float | None) -> None:
            raise NotImplementedError

        def _finish(self, session: Session, cause: Input = ...) -> None:
            raise NotImplementedError

        def _drop(self, session: Session, cause: Input) -> None:
            raise NotImplementedError

        def _abort_upgrade(self, session: Session, cause: Input, code: int = 1000) -> None:
            raise NotImplementedError

        def _write(self, ws: WebSocket) -> None:
            raise NotImplementedError

        def _close_socket(self, ws: WebSocket, code: int) -> None:
            raise NotImplementedError

        def _answer_poll(self, session: Session) -> None:
            raise NotImplementedError

        def _respond_payload(self, rec: PendingRequest) -> None:
            raise NotImplementedError

        def _refuse_handshake(self, session: Session, body: bytes | None, cause: Input) -> None:
            raise NotImplementedError

        def _handshake_headers(self, session: Session) -> Headers:
            raise NotImplementedError

        def _respond_error(self, rec: PendingRequest, error: ProtocolError) -> None:
            raise NotImplementedError

        def _poll(self, rec: PendingRequest) -> None:
            raise NotImplementedError

        def _begin_post(self, rec: PendingRequest) -> None:
            raise NotImplementedError

        def _request_gone(self, rec: PendingRequest) -> None:
            raise NotImplementedError

        def _attach_probe(
            self, rid: int, session: Session, now: float, codec: Codec, stream: bool = False
        ) -> None:
            raise NotImplementedError

        def _open_stream(self, rid: int, request: Request, cors: Headers) -> None:
            raise NotImplementedError

        def _stream_data(self, entry: StreamEntry, rid: int, data: bytes, more: bool, now: float) -> None:
            raise NotImplementedError

        def _open_session(
            self, rid: int, request: Request, cors: Headers, codec: Codec, transport: Transport
        ) -> None:
            raise NotImplementedError

        def _ws_fail(self, ws: WebSocket, code: int, now: float) -> None:
            raise NotImplementedError

        def _frame(self, ws: WebSocket, frame: Data, now: float) -> None:
            raise NotImplementedError

        def _connection_lost(self, rid: int, now: float) -> None:
            raise NotImplementedError

        def _take(self) -> Sequence[Event]:
            raise NotImplementedError

        def _websocket_closed(self, ws: WebSocket, now: float) -> None:
            raise NotImplementedError

    def _refuse(self, rid: int, error: ProtocolError, cors: Headers | None) -> None:
        """Answer request ``rid`` with ``error``: why (:class:`RequestRefused`), then the response."""
        context = error.context
        response = error_response(error, cors, context.get("message"))
        self._stats.refuse(error.code)
        events = self._events
        events.append(RequestRefused(rid, error.code, error.message, context))
        events.append(Respond(rid, response.status, response.headers, response.body))

    def _check_rid(self, rid: int) -> None:
        """A request id the core never issued is the runtime's bug."""
        if not 0 <= rid < self._next_rid:
            raise LocalProtocolError(f"request id {rid!r} was never issued by this server")
