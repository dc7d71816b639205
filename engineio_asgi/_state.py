"""What the parts of :class:`~engineio_asgi.AsyncServer` share: the runtime's records
of requests, websockets and sessions, and the state declared once for the type checker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, MutableMapping, Protocol, Sequence

from engineio_sansio import (
    ConnectRequest,
    Event,
    Headers,
    Request,
    RequestRefused,
    Respond,
    Server,
    ServerConfig,
    Stats,
)

if TYPE_CHECKING:
    import anyio

    from ._backend import Backend

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Wakeable(Protocol):
    """A record whose task may wait in ``receive()`` while another task can end the wait:
    ``reader`` is what :meth:`Backend.enter_wakeable` returned for the wait (``None``
    outside it), ``woken`` is set once :func:`wake` ended it."""

    reader: Any
    woken: bool


def wake(record: Wakeable) -> None:
    """End the wait in ``receive()`` of ``record``'s task (from another task); the wait
    ends quietly (a held request's response is here; a websocket's reader stops)."""
    if record.reader is not None and not record.woken:
        record.woken = True
        record.reader.cancel()


class PendingHTTP:
    """An HTTP request waiting for its ``Respond``: a held GET, a POST being read, a handshake
    (a :class:`Wakeable`)."""

    __slots__ = ("rid", "scope", "receive", "send", "response", "reader", "woken", "sid")

    def __init__(self, rid: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.rid = rid
        self.scope = scope
        self.receive = receive
        self.send = send
        self.response: Respond | None = None
        # while the request's task waits in receive(): what wake() cancels (Backend.enter_wakeable)
        self.reader: Any = None
        self.woken = False
        self.sid: str | None = None  # the session it opens, for a handshake


class SessionRT:
    """The runtime side of a session: user data, its transport, the handler chain."""

    __slots__ = ("data", "transport", "chain", "client")

    def __init__(self, transport: str, client: Any = None) -> None:
        self.data: dict[str, Any] | None = None  # the user session, made on first use
        self.transport = transport
        self.client = client  # the ASGI scope's (host, port) of the client, for logs
        self.chain: Any = None  # keeps concurrent handlers starting in arrival order


class WSConn(SessionRT):
    """The runtime side of one websocket: its ASGI ``send`` and how it ends.

    A websocket that opens its session (rather than upgrading a polling one) is
    that session's record too, for as long as either lives: one object per held
    session where two would be, for every full collection to walk. Its reader's
    wait is a :class:`Wakeable`'s.
    """

    __slots__ = (
        "rid",
        "scope",
        "receive",
        "send",
        "sid",
        "carrier",
        "accepted",
        "denied",
        "close_code",
        "close_sent",
        "reader",
        "woken",
        "in_receive",
        "close_later",
        "gone",
        "stopping",
    )

    def __init__(self, rid: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.rid = rid
        self.scope = scope
        self.receive = receive
        self.send = send
        self.sid: str | None = None  # the session it carries (a handshake's, or once upgraded)
        self.carrier = False  # it carries its session (False for a probe)
        self.accepted = False
        self.denied: Respond | None = None  # the refusal of its handshake, if refused
        self.close_code: int | None = None
        self.close_sent = False
        # while its reader runs, what wake() cancels: on asyncio the reader's task
        # (alive anyway, so no object of its own per websocket), on trio a cancel scope
        self.reader: Any = None
        self.woken = False  # wake() has ended the reader's wait
        self.in_receive = False
        self.close_later = False
        self.gone: anyio.Event | None = None  # set when the reader ends; made only by shutdown()
        self.stopping = False  # the ASGI server is ending it: close at once, no grace
        # its session's record, if it opens one (set by HandlersMixin._connect)
        self.data = None
        self.transport = ""
        self.client = None
        self.chain = None


class RuntimeState:
    """The state :class:`~engineio_asgi.AsyncServer`'s parts share (set up by its constructor)."""

    config: ServerConfig
    logger: logging.Logger
    handlers: dict[str, Callable[..., Any]]
    async_handlers: bool
    _core: Server
    _stats: Stats
    _lag_window: float  # when the timer driver's current window of maximum lag began
    _upgrade_listeners: list[Callable[[str], Any]]  # told the sid of each session upgraded
    _handler_errors: dict[tuple[Any, ...], list[Any]]  # cause -> [when last logged, not logged since]
    _backend: Backend | None
    _clock: Callable[[], float]
    _http: dict[int, PendingHTTP]
    _ws: dict[int, WSConn]
    _sessions: dict[str, SessionRT]
    _late_closes: dict[WSConn, tuple[float, int]]  # websocket -> (when to close it, code), oldest first
    _late_tick: float  # when the timer driver next closes websockets late (inf: not before a deadline)
    _timer_task: Any
    _timer_wake: anyio.Event | None
    _timer_target: float
    _timer_slack: float
    _closing: bool
    _disconnect_takes_reason: bool
    _message_handler: Any
    _message_is_async: bool
    _allow_request: Callable[..., Any] | None
    _header_hooks: bool  # an initial_headers or headers handler is registered
    _refusal_log: dict[tuple[int, Any], list[Any]]  # cause -> [when last logged, not logged since]

    if TYPE_CHECKING:  # each is defined by one part and called by others

        async def _perform(self, events: Sequence[Event]) -> None:
            raise NotImplementedError

        def _perform_detached(self, events: Sequence[Event]) -> None:
            raise NotImplementedError

        def _timer_changed(self) -> None:
            raise NotImplementedError

        def _origin_refused(self, scope: Scope) -> None:
            raise NotImplementedError

        def _is_async_message_handler(self, handler: Callable[..., Any]) -> bool:
            raise NotImplementedError

        def _start_async_message(self, handler: Callable[..., Any], sid: str, data: Any, chain: Any) -> Any:
            raise NotImplementedError

        async def _call_message(self, handler: Callable[..., Any], sid: str, data: Any) -> None:
            raise NotImplementedError

        async def _send_close(self, conn: WSConn) -> None:
            raise NotImplementedError

        async def _on_message(self, sid: str, data: Any) -> None:
            raise NotImplementedError

        async def _on_closed(self, sid: str, why: str) -> None:
            raise NotImplementedError

        async def _connect(
            self, ev: ConnectRequest, pending: PendingHTTP | None = None, perform: bool = True
        ) -> Sequence[Event]:
            raise NotImplementedError

        async def _on_upgraded(self, sid: str) -> None:
            raise NotImplementedError

        async def _receive_asked(
            self, request: Request, scope: Scope, receive: Receive, send: Send, websocket: bool
        ) -> tuple[int, Sequence[Event]]:
            raise NotImplementedError

        def _refused(self, ev: RequestRefused) -> None:
            raise NotImplementedError

        async def _hook_headers(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
            raise NotImplementedError

        def _handler_failed(self, where: str, sid: str) -> None:
            raise NotImplementedError

        def _deliver(self, ev: Respond) -> None:
            raise NotImplementedError
