"""``AsyncServer``: python-engineio's asynchronous server API, on anyio, for ASGI."""

from __future__ import annotations

import contextlib
import inspect
import json as _stdlib_json
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

import anyio
import sniffio

from engineio_sansio import (
    CloseReason,
    CloseWebSocket,
    Data,
    MessageReceived,
    Packet,
    PacketType,
    Request,
    Response,
    Route,
    RouteKind,
    SendFrames,
    Server,
    ServerConfig,
    Session,
    SessionClosed,
    SessionState,
    Transport,
    TransportWritable,
    WebSocket,
)
from engineio_sansio.http import origin_entry_problem, own_origins
from engineio_sansio.routing import default_sid

from ._backend import NO_LOOP, Backend, get_backend
from .environ import build_environ, request_from_scope
from .exceptions import ConnectionRefusedError

__all__ = ["AsyncServer", "reason"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_json: Any = _stdlib_json
"""The process-wide JSON module (python-engineio's ``json`` option)."""

default_logger = logging.getLogger("engineio_asgi.server")
_EXTRA_OPTIONS = ("upgrade_timeout", "close_timeout", "max_queued_bytes")  # the project's own options
_LOGGER_METHODS = ("debug", "info", "warning", "error", "exception")
_REFUSED_ORIGIN_LOG_INTERVAL = 60.0  # seconds before a refused origin is logged again
_REFUSED_ORIGIN_LOG_LIMIT = 100  # distinct refused origins logged per interval, then one summary line

# Enum members as globals: on 3.10/3.11 reading one through its class is slow (EnumType.__getattr__)
_WEBSOCKET = Transport.WEBSOCKET
_R_HANDSHAKE = RouteKind.HANDSHAKE
_R_POLL = RouteKind.POLL
_R_POST = RouteKind.POST
_R_IGNORE = RouteKind.IGNORE

_JSON_START = frozenset('{["tfnNI- \t\r\n')  # first characters JSON text can start with (not digits)
# The timer driver wakes this long after a deadline, so that the deadlines of many
# sessions share one wake-up: a fraction of the shortest configured time, within bounds.
_TIMER_SLACK_SHARE = 1 / 100
_TIMER_SLACK_MIN = 0.001
_TIMER_SLACK_MAX = 0.05
_CLIENT_CLOSE_GRACE = 1.0  # seconds a client gets to close its websocket after a CLOSE packet
WS_CLOSE_NORMAL = 1000
# The close code uvicorn gives every websocket when it stops (all three of its
# websocket implementations). Browsers cannot send it (they may only send 1000 and
# 3000-4999) and Engine.IO clients do not, so it is read as "the server went away".
WS_CLOSE_SERVICE_RESTART = 1012
_GONE: Any = object()  # the client left before the body was complete
# How a websocket's reader ended, as far as a stopping ASGI server goes
_NOT_STOPPED: Any = object()
_STOPPED_CLOSED: Any = object()  # closed with 1012: nothing more can be sent
_STOPPED_CANCELLED: Any = object()  # the connection's task cancelled: it is still open
_OPEN = SessionState.OPEN


class reason:  # noqa: N801 - python-engineio's name
    """Disconnection reasons, as python-engineio spells them."""

    CLIENT_DISCONNECT = CloseReason.CLIENT_DISCONNECT.value
    """Client-initiated disconnection."""
    SERVER_DISCONNECT = CloseReason.SERVER_DISCONNECT.value
    """Server-initiated disconnection."""
    PING_TIMEOUT = CloseReason.PING_TIMEOUT.value
    """Ping timeout."""
    TRANSPORT_CLOSE = CloseReason.TRANSPORT_CLOSE.value
    """Transport close."""
    TRANSPORT_ERROR = CloseReason.TRANSPORT_ERROR.value
    """Transport error."""


class _WSConn:
    """The runtime side of one websocket: its ASGI ``send`` and write state."""

    __slots__ = (
        "send",
        "writing",
        "close_code",
        "close_sent",
        "reader",
        "in_receive",
        "close_later",
        "gone",
    )

    def __init__(self, send: Send) -> None:
        self.send = send
        # True while a write is in progress, and until the websocket is accepted: either
        # way nobody else may write now (one flag, so the send path tests one attribute)
        self.writing = True
        self.close_code: int | None = None
        self.close_sent = False
        self.reader: Any = None  # the backend's waker around the reader's receive()
        self.in_receive = False
        self.close_later = False
        self.gone: Any = None  # an event set when the reader ends, made only while a close waits


class _SessionRT:
    """The runtime side of a session: user data, the held poll's event, the handler chain."""

    __slots__ = ("data", "poll_waker", "chain", "post_waker")

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None  # the user session, made on first use
        self.poll_waker: Any = None  # set while a GET is held: woken when there is something to send
        self.chain: Any = None  # keeps concurrent handlers starting in arrival order
        self.post_waker: Any = None  # set while a POST body is being read


class _SessionContext(AbstractAsyncContextManager):  # type: ignore[type-arg]
    """``async with server.session(sid) as session:`` — load, then save on exit."""

    def __init__(self, server: AsyncServer, sid: str) -> None:
        self.server = server
        self.sid = sid
        self.session: dict[str, Any] | None = None

    async def __aenter__(self) -> dict[str, Any]:
        self.session = await self.server.get_session(self.sid)
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        await self.server.save_session(self.sid, self.session)


class AsyncServer:
    """An Engine.IO server for ASGI, on asyncio or trio.

    The constructor takes python-engineio's options (see the project docs for
    each); unknown keyword arguments are ignored, as in python-engineio. Serve it
    with :class:`engineio_asgi.ASGIApp`.
    """

    reason = reason

    def __init__(
        self,
        async_mode: str | None = None,
        ping_interval: float | tuple[float, float] = 25,
        ping_timeout: float = 20,
        max_http_buffer_size: int = 1_000_000,
        allow_upgrades: bool = True,
        http_compression: bool = True,
        compression_threshold: int = 1024,
        cookie: Any = None,
        cors_allowed_origins: Any = None,
        cors_credentials: bool = True,
        logger: bool | logging.Logger = False,
        json: Any = None,
        async_handlers: bool = True,
        monitor_clients: bool | None = None,
        transports: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_api_options(async_mode, logger, json, async_handlers, monitor_clients)
        self.async_mode = "asgi"
        self.config = ServerConfig.from_options(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=max_http_buffer_size,
            allow_upgrades=allow_upgrades,
            http_compression=http_compression,
            compression_threshold=compression_threshold,
            cookie=cookie,
            cors_allowed_origins=cors_allowed_origins,
            cors_request_adapter=_environ_of,
            cors_credentials=cors_credentials,
            transports=transports,
            monitor_clients=monitor_clients is not False,
            **{k: v for k, v in kwargs.items() if k in _EXTRA_OPTIONS},
        )
        cfg = self.config
        shortest = min(cfg.ping_interval, cfg.ping_timeout, cfg.upgrade_timeout, cfg.close_timeout)
        self._timer_slack = min(_TIMER_SLACK_MAX, max(_TIMER_SLACK_MIN, shortest * _TIMER_SLACK_SHARE))
        self.ping_interval = self.config.ping_interval
        self.ping_interval_grace_period = self.config.ping_interval_grace
        self.ping_timeout = self.config.ping_timeout
        self.max_http_buffer_size = self.config.max_http_buffer_size
        self.allow_upgrades = allow_upgrades
        self.http_compression = http_compression
        self.compression_threshold = compression_threshold
        self.cookie = cookie
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.async_handlers = async_handlers
        self.monitor_clients = monitor_clients is not False
        self.transports = list(self.config.transports)
        if json is not None:
            global _json
            _json = json
        if not isinstance(logger, bool):
            self.logger = logger
        else:
            self.logger = default_logger
            if self.logger.level == logging.NOTSET:
                self.logger.setLevel(logging.INFO if logger else logging.ERROR)
                if not self.logger.handlers:
                    self.logger.addHandler(logging.StreamHandler())
        self._refused_origins: dict[str, float] = {}  # origin -> when its refusal was last logged
        self._refusal_flood_logged = float("-inf")
        self._warn_unmatchable_origins()
        self.handlers: dict[str, Callable[..., Any]] = {}
        self._disconnect_takes_reason = True
        # ids come from generate_id() at each handshake, so a subclass's (or a patched) one is used
        self._core = Server(self.config, sid_generator=self._next_sid)
        self._backend: Backend | None = None
        self._clock: Callable[[], float] = anyio.current_time
        self._timer_task: Any = None
        self._timer_wake: anyio.Event | None = None
        self._timer_target = float("inf")
        self._closing = False
        self._late_closes: set[_WSConn] = set()  # websockets whose close waits for the client
        self._message_handler: Any = None
        self._message_is_async = False

    # --- handlers ------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler for ``connect``, ``message`` or ``disconnect``.

        Without ``handler`` this returns a decorator.
        """
        if event not in ("connect", "message", "disconnect"):
            raise ValueError(f"invalid event {event!r}")

        def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.handlers[event] = fn
            if event == "disconnect":
                self._disconnect_takes_reason = _accepts_args(fn, 2)
            return fn

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    # --- python-engineio's coroutine API ------------------------------------

    async def send(self, sid: str, data: Any) -> None:
        """Send a message: ``str``, ``bytes``, or a list/dict (sent as JSON).

        An unknown or closed ``sid`` is logged and ignored, as python-engineio does.
        """
        session = self._core.sessions.get(sid)
        if session is None:
            self.logger.warning("cannot send to sid %s: no such session", sid)
            return
        if type(data) is str:
            key = "text"
        elif type(data) is bytes:
            key = "bytes"
        else:
            data = _encode_data(data)
            key = "text" if type(data) is str else "bytes"
        ws = session.ws
        if ws is not None:
            conn = ws.runtime
            if conn is not None and not conn.writing:
                frame = self._core.direct_frame(session, data)
                if frame is not None:
                    # an idle websocket: write straight through, no queue, no task
                    # (the frame is text for text data and bytes for bytes, so `key` holds)
                    conn.writing = True
                    try:
                        await conn.send({"type": "websocket.send", key: frame})
                    except Exception as exc:
                        conn.writing = False
                        self._write_failed(session, ws, conn, exc)
                        await self._drain_events()
                        return
                    conn.writing = False
                    if session.outbox or conn.close_code is not None:
                        await self._flush(session)
                    return
        if not self._core.send(session, data):
            self.logger.warning("cannot send to sid %s: session is closing", sid)
            return
        if session.transport is _WEBSOCKET:
            await self._flush(session)
        else:
            _wake_held_poll(self._core, session)

    def _write_failed(self, session: Session, ws: WebSocket, conn: _WSConn, exc: BaseException) -> None:
        self.logger.info("sid %s: websocket write failed (%s)", session.sid, exc)
        conn.close_sent = True
        self._core.websocket_closed(ws, self._clock())

    async def send_packet(self, sid: str, pkt: Any) -> None:
        """Send a raw packet: one of ours, or a python-engineio ``Packet``.

        Only the packet's type and data are read; each transport encodes it
        for itself, so one packet object may be shared by many recipients.
        """
        session = self._core.sessions.get(sid)
        if session is None:
            self.logger.warning("cannot send to sid %s: no such session", sid)
            return
        if isinstance(pkt, Packet):
            packet = pkt
        else:
            data = pkt.data
            if data is not None and not isinstance(data, (str, bytes)):
                data = _encode_data(data)
            packet = Packet(PacketType(pkt.packet_type), data)
        if not self._core.send_packet(session, packet):
            return
        await self._flush(session)

    async def get_session(self, sid: str) -> dict[str, Any]:
        """The user session dict of ``sid`` (the live object)."""
        session = self._core.sessions.get(sid)
        if session is None or session.runtime is None:
            raise KeyError("Session not found")
        rt: _SessionRT = session.runtime
        if rt.data is None:
            rt.data = {}
        return rt.data

    async def save_session(self, sid: str, session: dict[str, Any]) -> None:
        """Replace the user session dict of ``sid``."""
        s = self._core.sessions.get(sid)
        if s is None or s.runtime is None:
            raise KeyError("Session not found")
        s.runtime.data = session

    def session(self, sid: str) -> AbstractAsyncContextManager[dict[str, Any]]:
        """``async with server.session(sid) as session:`` edits are saved on exit."""
        return _SessionContext(self, sid)

    async def disconnect(self, sid: str | None = None) -> None:
        """Close one session (or every session): the client gets CLOSE, handlers run.

        Returns once the close is handed to the transport; it never waits for
        a polling client to come back.
        """
        core = self._core
        now = self._clock()
        if sid is None:
            core.close_all(now)
        else:
            session = core.sessions.get(sid)
            if session is None:
                return
            core.close(session, now)
        await self._drain_events()
        self._timer_changed()

    def transport(self, sid: str) -> str:
        """``'polling'`` or ``'websocket'``; raises ``KeyError`` for an unknown sid."""
        session = self._core.sessions.get(sid)
        if session is None:
            raise KeyError("Session not found")
        return session.transport.value

    def generate_id(self) -> str:
        """A new unguessable session id; override it to choose the ids of new sessions."""
        return default_sid()

    def _next_sid(self) -> str:
        sid = self.generate_id()
        if type(sid) is not str or not sid:
            raise TypeError(f"generate_id() must return a non-empty str, got {sid!r}")
        return sid

    def _warn_unmatchable_origins(self) -> None:
        """Point out allowed-origin entries no browser can send: they would refuse silently."""
        allowed = self.config.cors_allowed_origins
        entries = (allowed,) if isinstance(allowed, str) else allowed if isinstance(allowed, tuple) else ()
        for entry in entries:
            problem = origin_entry_problem(entry)
            if problem is not None:
                self.logger.warning(
                    "cors_allowed_origins entry %r can never match a browser's Origin header: %s",
                    entry,
                    problem,
                )

    def _origin_refused(self, request: Request) -> None:
        """Log a refused origin, once per origin and interval (the core refuses only origins with 403)."""
        origin = request.headers.get("origin", "")[:200]
        now = self._clock()
        seen = self._refused_origins
        last = seen.get(origin)
        if last is not None and now - last < _REFUSED_ORIGIN_LOG_INTERVAL:
            return
        if last is None and len(seen) >= _REFUSED_ORIGIN_LOG_LIMIT:
            for key, when in list(seen.items()):
                if now - when >= _REFUSED_ORIGIN_LOG_INTERVAL:
                    del seen[key]
            if len(seen) >= _REFUSED_ORIGIN_LOG_LIMIT:
                if self._refusal_flood_logged <= now - _REFUSED_ORIGIN_LOG_INTERVAL:
                    self._refusal_flood_logged = now
                    self.logger.warning(
                        "more than %d different origins refused within %d s: the others are not "
                        "logged for now",
                        _REFUSED_ORIGIN_LOG_LIMIT,
                        _REFUSED_ORIGIN_LOG_INTERVAL,
                    )
                return
        seen[origin] = now
        self.logger.warning(
            "%s is not an accepted origin. Allowed: %s (each refused origin is logged once per %d s)",
            origin,
            _describe_allowed(self.config.cors_allowed_origins, request),
            _REFUSED_ORIGIN_LOG_INTERVAL,
        )

    async def shutdown(self) -> None:
        """Close every session (reason: server disconnect), then stop background tasks."""
        self._closing = True
        if self._backend is None:
            return
        await self.disconnect()
        late = list(self._late_closes)
        if late:
            # the clients were sent CLOSE packets: give them their moment to
            # close (all at once, bounded), then close whatever is left
            with anyio.move_on_after(_CLIENT_CLOSE_GRACE):
                for conn in late:
                    await conn.gone.wait()
            for conn in late:
                if conn.reader is not None:
                    await self._close_now(conn, WS_CLOSE_NORMAL)
        # what could be flushed was; sessions whose CLOSE waits for a poll that
        # may never come are dropped rather than left without a timer
        self._core.finish_all()
        await self._drain_events()
        self._timer_task = None
        self._timer_target = float("inf")
        await self._backend.cancel_all()
        self._closing = False

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``target(*args, **kwargs)`` as a task; on asyncio an ``asyncio.Task``.

        The server owns it: :meth:`shutdown` cancels it. It needs a running
        event loop: start tasks from a handler or an ASGI startup hook, not at
        import time.
        """
        backend = self._loop_backend()
        if backend is None:
            raise RuntimeError(
                "start_background_task() needs a running event loop: call it from a handler "
                "(connect, message...), from a coroutine, or from a startup hook such as "
                "ASGIApp(on_startup=...), not at import time"
            )

        async def run() -> Any:
            result = target(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return backend.spawn(run)

    async def sleep(self, seconds: float = 0) -> None:
        """Sleep on whatever loop is running."""
        await anyio.sleep(seconds)

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        """A queue for this loop: ``asyncio.Queue`` on asyncio and outside any loop
        (at import time, as python-engineio allows), a queue with its methods on trio."""
        return (self._loop_backend() or NO_LOOP).create_queue(*args, **kwargs)

    def get_queue_empty_exception(self) -> type[Exception]:
        """The exception ``get_nowait`` raises on an empty queue of :meth:`create_queue`
        (``asyncio.QueueEmpty`` on asyncio and outside any loop)."""
        return (self._loop_backend() or NO_LOOP).queue_empty_exception()

    def create_event(self, *args: Any, **kwargs: Any) -> Any:
        """An event for this loop: ``asyncio.Event`` on asyncio and outside any loop
        (at import time), an event with its methods on trio."""
        return (self._loop_backend() or NO_LOOP).create_event(*args, **kwargs)

    def _loop_backend(self) -> Backend | None:
        """The backend of the running loop, or ``None`` when no loop runs (import time)."""
        if self._backend is not None:
            return self._backend
        try:
            sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return None
        return self._ensure_backend()

    def attach(self, app: Any, engineio_path: str = "engine.io") -> Any:
        """Return an ASGI app that serves Engine.IO at ``engineio_path`` and ``app`` elsewhere.

        ASGI apps cannot be changed in place, so the combined app is returned.
        """
        from .asgi import ASGIApp

        return ASGIApp(self, other_asgi_app=app, engineio_path=engineio_path)

    # --- entry point ---------------------------------------------------------

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI ``http`` or ``websocket`` connection for Engine.IO."""
        await self._serve(scope, receive, send)

    def _serve(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The coroutine that serves one connection, for the caller to await.

        :class:`ASGIApp` awaits this directly rather than :meth:`handle_request`:
        a websocket's coroutine frames live as long as the connection, and each
        level of ``await`` nesting costs a few hundred bytes per session.
        """
        if self._backend is None:
            self._ensure_backend()
        if scope["type"] == "websocket":
            return self._handle_websocket(scope, receive, send)
        return self._handle_http(scope, receive, send)

    # --- internals: loop, timer ------------------------------------------------

    def _ensure_backend(self) -> Backend:
        backend = self._backend
        if backend is None:
            backend = self._backend = get_backend()
            self._clock = backend.clock()
        return backend

    def _timer_changed(self) -> None:
        """Make sure the timer driver runs and will wake by the core's next deadline."""
        deadline = self._core.next_deadline()
        if deadline is None or deadline >= self._timer_target:
            return
        if self._timer_task is None:
            if self._backend is None or self._closing:
                return
            self._timer_task = self._backend.spawn(self._timer_loop)
        elif self._timer_wake is not None:
            self._timer_wake.set()

    async def _timer_loop(self) -> None:
        core = self._core
        clock = self._clock
        while True:
            deadline = core.next_deadline()
            wake = self._timer_wake = anyio.Event()
            if deadline is None:
                self._timer_target = float("inf")
                await wake.wait()
                continue
            # wake a little late rather than early, so neighbouring deadlines share one wake-up
            self._timer_target = deadline + self._timer_slack
            delay = self._timer_target - clock()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await wake.wait()
            self._timer_target = float("inf")
            core.handle_timer(clock())
            if core.events:
                self._dispatch_detached(core.take_events())

    # --- internals: events -----------------------------------------------------

    async def _drain_events(self) -> None:
        core = self._core
        while core.events:
            for ev in core.take_events():
                if type(ev) is MessageReceived:  # the usual one, without a call through _dispatch
                    await self._on_message(ev.session, ev.data)
                else:
                    await self._dispatch((ev,))

    async def _dispatch(self, events: Iterable[Any]) -> None:
        for ev in events:
            kind = type(ev)
            if kind is MessageReceived:
                await self._on_message(ev.session, ev.data)
            elif kind is SessionClosed:
                await self._on_closed(ev.session, ev.reason)
            elif kind is TransportWritable:
                await self._flush(ev.session)
            elif kind is SendFrames:
                await self._send_frames(ev.ws, ev.frames)
            elif kind is CloseWebSocket:
                await self._close_ws(ev.ws, ev.code)

    def _dispatch_detached(self, events: list[Any]) -> None:
        """Dispatch from the timer driver: nothing here may block it."""
        backend = self._backend
        assert backend is not None
        for ev in events:
            kind = type(ev)
            if kind is TransportWritable:
                session = ev.session
                _wake_held_poll(self._core, session)
                if session.transport is _WEBSOCKET:
                    ws = session.ws
                    conn = ws.runtime if ws is not None else None
                    if conn is not None and not conn.writing:
                        backend.spawn_eager(self._flush(session))
            else:
                backend.spawn_eager(self._dispatch([ev]))

    async def _flush(self, session: Session) -> None:
        """Move what the session has queued onto its transport."""
        _wake_held_poll(self._core, session)
        if session.transport is not _WEBSOCKET:
            return
        ws = session.ws
        if ws is None:
            return
        conn: _WSConn | None = ws.runtime
        if conn is None or conn.writing:
            return
        conn.writing = True
        core = self._core
        try:
            while True:
                frames = core.take_frames(session)
                if not frames:
                    break
                send = conn.send
                for frame in frames:
                    if type(frame) is str:
                        await send({"type": "websocket.send", "text": frame})
                    else:
                        await send({"type": "websocket.send", "bytes": frame})
        except Exception as exc:  # the peer is gone: the core reports it as a close
            self._write_failed(session, ws, conn, exc)
        finally:
            conn.writing = False
        if core.events:
            await self._drain_events()
        if conn.close_code is not None and not conn.close_sent:
            await self._send_close(conn)

    async def _send_frames(self, ws: WebSocket, frames: tuple[Data, ...]) -> None:
        conn: _WSConn | None = ws.runtime
        if conn is None or conn.close_sent:
            return
        try:
            for frame in frames:
                if isinstance(frame, str):
                    await conn.send({"type": "websocket.send", "text": frame})
                else:
                    await conn.send({"type": "websocket.send", "bytes": frame})
        except Exception:
            conn.close_sent = True
            self._core.websocket_closed(ws, self._clock())

    async def _close_ws(self, ws: WebSocket, code: int) -> None:
        conn: _WSConn | None = ws.runtime
        if conn is None:
            return
        if code == WS_CLOSE_NORMAL and ws.upgraded and conn.reader is not None:
            # After a CLOSE packet either way, an Engine.IO client closes the
            # websocket itself. Closing it from here at the same moment races its
            # close frame, which hypercorn on trio does not survive (the worker
            # process dies of BusyResourceError, taking every other connection
            # with it), so the client gets a moment to do it first. A probe is
            # closed at once: nobody sent it a CLOSE packet.
            if not conn.close_later:
                conn.close_later = True
                conn.gone = anyio.Event()
                self._late_closes.add(conn)
                self._backend.spawn(self._close_ws_later, conn, code)  # type: ignore[union-attr]
            return
        await self._close_now(conn, code)

    async def _close_now(self, conn: _WSConn, code: int) -> None:
        conn.close_code = code
        if not conn.writing and not conn.close_sent:
            await self._send_close(conn)

    async def _close_ws_later(self, conn: _WSConn, code: int) -> None:
        try:
            with anyio.move_on_after(_CLIENT_CLOSE_GRACE):
                await conn.gone.wait()
            if conn.reader is not None:
                await self._close_now(conn, code)
        finally:
            self._late_closes.discard(conn)

    async def _send_close(self, conn: _WSConn) -> None:
        if conn.reader is not None:
            # The reader sends it: granian will not send a close while another
            # task waits in receive(). A reader busy in a handler sees
            # close_code when it comes back; one waiting for a frame is woken.
            if conn.in_receive:
                conn.reader.wake()
            return
        conn.close_sent = True
        try:
            await conn.send({"type": "websocket.close", "code": conn.close_code or 1000})
        except Exception:
            pass  # already gone: nothing left to tell it

    # --- internals: application handlers ---------------------------------------

    def _is_async_message_handler(self, handler: Callable[..., Any]) -> bool:
        """Whether ``handler`` is a coroutine function, remembered for the current handler."""
        if handler is not self._message_handler:
            self._message_handler = handler
            self._message_is_async = inspect.iscoroutinefunction(handler)
        return self._message_is_async

    async def _on_message(self, session: Session, data: Data) -> None:
        handler = self.handlers.get("message")
        if handler is None:
            return
        if type(data) is str and data and data[0] in _JSON_START:
            data = _maybe_json(data)
        if self.async_handlers and self._is_async_message_handler(handler):
            rt: _SessionRT = session.runtime
            rt.chain = self._backend.spawn_eager(  # type: ignore[union-attr]
                self._call_async_message(handler, session.sid, data), rt.chain
            )
        else:
            await self._call_message(handler, session.sid, data)

    async def _call_async_message(self, handler: Callable[..., Any], sid: str, data: Any) -> None:
        try:
            await handler(sid, data)
        except Exception:
            self.logger.exception("sid %s: message handler error", sid)

    async def _call_message(self, handler: Callable[..., Any], sid: str, data: Any) -> None:
        try:
            result = handler(sid, data)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("sid %s: message handler error", sid)

    async def _on_closed(self, session: Session, why: CloseReason) -> None:
        self.logger.info("sid %s: closed (%s)", session.sid, why.value)
        rt: _SessionRT | None = session.runtime
        if rt is not None and rt.post_waker is not None:
            rt.post_waker.wake()  # stop reading a body nobody will deliver
        handler = self.handlers.get("disconnect")
        if handler is None:
            return
        chain = rt.chain if rt is not None else None
        if chain is not None and not chain.is_set():
            await chain.wait()  # message handlers that arrived before the close start first
        try:
            if self._disconnect_takes_reason:
                result = handler(session.sid, why.value)
            else:
                result = handler(session.sid)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("sid %s: disconnect handler error", session.sid)

    async def _run_connect(self, session: Session, environ: dict[str, Any]) -> tuple[bool, Any]:
        """Ask the application; returns (accepted, body for the 401 if not)."""
        handler = self.handlers.get("connect")
        if handler is None:
            return True, None
        try:
            result = handler(session.sid, environ)
            if inspect.isawaitable(result):
                result = await result
        except ConnectionRefusedError as exc:
            return False, exc.error_args
        except Exception as exc:
            args = getattr(exc, "error_args", None)
            if args is None:
                self.logger.exception("sid %s: connect handler error", session.sid)
            return False, args
        if result is None or result is True:
            return True, None
        return False, (None if result is False else result)

    def _unauthorized_body(self, body: Any) -> bytes:
        return _json.dumps(body if body is not None else "Unauthorized").encode("utf-8")  # type: ignore[no-any-return]

    # --- internals: HTTP long polling -------------------------------------------

    async def _handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self._core
        clock = self._clock
        request = request_from_scope(scope)
        route = core.route(request, clock())
        if isinstance(route, Response):
            if route.status == 403:
                self._origin_refused(request)
            await _respond(send, route)
            return
        kind = route.kind
        if kind is _R_POLL:
            response = core.poll(route, request)
            if response is None:
                self._timer_changed()  # a GET held during an upgrade has a deadline
                response = await self._hold_poll(route, request, receive)
                if response is None:
                    return
            await _respond(send, response)
        elif kind is _R_POST:
            await self._handle_post(route, scope, receive, send)
        elif kind is _R_HANDSHAKE:
            session = core.open_session(route, clock())
            ok, body = await self._open(session, scope, receive, send)
            if not ok:
                await _respond(send, core.reject(session, route, self._unauthorized_body(body)))
                return
            response = core.poll(route, request)
            assert response is not None
            await _respond(send, response)
        else:
            await _respond(send, core.preflight_response(route))
        if core.events:
            await self._drain_events()

    async def _open(self, session: Session, scope: Scope, receive: Receive, send: Send) -> tuple[bool, Any]:
        environ = build_environ(scope, receive, send)
        session.runtime = _SessionRT()
        ok, body = await self._run_connect(session, environ)
        if session.state is not SessionState.OPENING:
            return False, body  # closed from inside its own connect handler
        if not ok:
            self.logger.info("sid %s: application rejected the connection", session.sid)
            return False, body
        self._core.accept(session, self._clock())
        self._timer_changed()
        return True, None

    async def _hold_poll(self, route: Route, request: Request, receive: Receive) -> Response | None:
        session = route.session
        assert session is not None
        rt: _SessionRT = session.runtime
        # Wait in receive(), which returns only if the client leaves; a flush wakes
        # this task out of it when there is something to send: no watcher task,
        # task group or event per held poll.
        waker = rt.poll_waker = self._backend.waker()  # type: ignore[union-attr]
        left = False
        try:
            with waker:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        left = True
                        break
        finally:
            if rt.poll_waker is waker:
                rt.poll_waker = None
        if left:
            self._core.poll_abandoned(session)
            return None
        return self._core.poll_response(route, request)

    async def _handle_post(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        core = self._core
        busy = core.begin_post(route)
        if busy is not None:
            await _respond(send, busy)
            await self._drain_events()
            return
        limit = self.config.max_http_buffer_size
        rt: _SessionRT = route.session.runtime  # type: ignore[union-attr]
        waker = rt.post_waker = self._backend.waker()  # type: ignore[union-attr]
        try:
            with waker:  # woken if the session closes before the body is complete
                body = await _read_body(scope, receive, limit)
        finally:
            rt.post_waker = None
        if waker.woken:
            await _respond(send, core.post_cut_short(route))
            return
        if body is _GONE:
            core.post_abandoned(route)
            return
        if body is None:
            response = core.post_too_large(route)
        else:
            response = core.post(route, body, self._clock())
        if core.events:
            # handlers before the answer, in order, as python-engineio does
            await self._drain_events()
        await _respond(send, response)

    # --- internals: websocket ---------------------------------------------------

    async def _handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = await self._accept_websocket(scope, receive, send)
        if ws is None:
            return
        # From here on this frame lives as long as the websocket: keep its locals few.
        core = self._core
        clock = self._clock
        conn: _WSConn = ws.runtime
        conn.reader = self._backend.waker()  # type: ignore[union-attr]
        stopped = _NOT_STOPPED  # whether (and how) the ASGI server ended it by stopping
        try:
            with conn.reader:
                sid = ws.session.sid
                rt: _SessionRT = ws.session.runtime
                handler = self.handlers.get("message")
                is_async = handler is not None and self._is_async_message_handler(handler)
                run_async = self.async_handlers and is_async
                call = self._call_async_message if is_async else self._call_message
                spawn = self._backend.spawn_eager  # type: ignore[union-attr]
                while conn.close_code is None:
                    conn.in_receive = True
                    message = await receive()
                    conn.in_receive = False
                    # (the test is inverted so that its jump is short: CPython 3.11 only
                    # specializes a comparison whose jump needs no extended argument)
                    if message["type"] != "websocket.receive":
                        if message["type"] == "websocket.disconnect":
                            if message.get("code") == WS_CLOSE_SERVICE_RESTART:
                                stopped = _STOPPED_CLOSED
                            break
                        continue
                    try:
                        frame = message["text"]
                    except KeyError:  # the key may be left out of a binary frame's message
                        frame = None
                    if frame is None:
                        frame = message.get("bytes") or b""
                    data = core.receive_frame(ws, frame, clock())
                    if data is not None and handler is not None:
                        # (a bytes message's first item is an int: never in _JSON_START)
                        if data and data[0] in _JSON_START and type(data) is str:
                            data = _maybe_json(data)
                        if run_async:
                            rt.chain = spawn(call(handler, sid, data), rt.chain)
                        elif is_async:
                            try:
                                await handler(sid, data)
                            except Exception:
                                self.logger.exception("sid %s: message handler error", sid)
                        else:
                            await call(handler, sid, data)
                    if core.events:
                        await self._drain_events()
        except anyio.get_cancelled_exc_class():
            # Our own wake-ups end quietly at the waker: a cancellation that gets here
            # is the ASGI server's, which cancels connections only when it stops
            # (hypercorn after its graceful timeout, uvicorn after its own).
            stopped = _STOPPED_CANCELLED
            raise
        finally:
            conn.reader = None
            conn.in_receive = False
            if conn.gone is not None:
                conn.gone.set()
            if conn.close_code is not None and not conn.close_sent:
                with anyio.CancelScope(shield=True):
                    await self._send_close(conn)
            if not ws.closed:
                if stopped is _NOT_STOPPED:
                    core.websocket_closed(ws, clock())
                else:
                    with anyio.CancelScope(shield=True):
                        await self._server_stopped(ws, stopped is _STOPPED_CANCELLED)
            if core.events:
                with anyio.CancelScope(shield=True):
                    await self._drain_events()

    async def _server_stopped(self, ws: WebSocket, still_open: bool) -> None:
        """The ASGI server ended this websocket because it is stopping: a server disconnect.

        What is possible depends on the server (docs/deployment.md has the table):
        uvicorn closes every websocket with 1012 at once and its transport is gone,
        so the reason is all that can be set; hypercorn cancels the connection's task
        after its graceful timeout while the websocket is still open, so the client
        still gets the CLOSE packet and a close frame (bounded: the process is
        going away). A close with 1001 is not taken as a stop: browsers send it
        when a page goes away, and no server we run sends it when stopping.
        """
        core = self._core
        if ws.upgraded:  # a probe's end is not the session's
            core.close(ws.session, self._clock())  # reason server disconnect, CLOSE queued
            if still_open:
                with anyio.move_on_after(_CLIENT_CLOSE_GRACE):
                    # the disconnect handler, then the CLOSE packet, then the close frame
                    await self._drain_events()
        if not ws.closed:
            core.websocket_closed(ws, self._clock())

    async def _accept_websocket(self, scope: Scope, receive: Receive, send: Send) -> WebSocket | None:
        """Route and accept a websocket; the request, route and environ die with this frame."""
        core = self._core
        clock = self._clock
        message = await receive()
        if message["type"] != "websocket.connect":
            return None
        request = request_from_scope(scope)
        route = core.route(request, clock(), websocket=True)
        if isinstance(route, Response):
            if route.status == 403:
                self._origin_refused(request)
            await _deny(scope, send, route)
            return None
        if route.kind is _R_IGNORE:  # a second websocket for an upgraded session
            with contextlib.suppress(Exception):  # a client already gone changes nothing
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": WS_CLOSE_NORMAL})
            return None
        conn = _WSConn(send)
        if route.kind is _R_HANDSHAKE:
            session = core.open_session(route, clock())
            ws = session.ws
            assert ws is not None
            ws.runtime = conn
            ok, body = await self._open(session, scope, receive, send)
            if not ok:
                response = core.reject(session, route, self._unauthorized_body(body))
                await _deny(scope, send, response)
                core.take_events()
                return None
            await send({"type": "websocket.accept", "headers": core.handshake_headers(session)})
            conn.writing = False  # accepted
            await self._flush(session)
        else:
            ws = core.attach_probe(route, clock())
            ws.runtime = conn
            self._timer_changed()
            await send({"type": "websocket.accept"})
            conn.writing = False  # accepted
        if core.events:
            await self._drain_events()
        return ws


def _wake_held_poll(core: Server, session: Session) -> None:
    """Answer the session's held GET, if one is waiting and the core has something for it."""
    rt: _SessionRT | None = session.runtime
    if rt is not None and rt.poll_waker is not None and core.poll_ready(session):
        rt.poll_waker.wake()


def _check_api_options(
    async_mode: Any, logger: Any, json: Any, async_handlers: Any, monitor_clients: Any
) -> None:
    """python-engineio's own options; the protocol's are checked by ``ServerConfig``."""
    if async_mode not in (None, "asgi"):
        raise ValueError(
            f"async_mode {async_mode!r} is not available: engineio_asgi is an ASGI-only "
            "server. Use async_mode='asgi' (or leave it out) and serve "
            "engineio_asgi.ASGIApp(server) with an ASGI server such as uvicorn, "
            "hypercorn or granian."
        )
    if not isinstance(logger, bool) and not all(callable(getattr(logger, m, None)) for m in _LOGGER_METHODS):
        raise TypeError(
            "logger must be True, False or a logging.Logger-like object (with "
            f"{', '.join(_LOGGER_METHODS)} methods), got {logger!r}"
        )
    if json is not None and not (
        callable(getattr(json, "dumps", None)) and callable(getattr(json, "loads", None))
    ):
        raise TypeError(f"json must be a module or object with dumps() and loads(), like json, got {json!r}")
    if not isinstance(async_handlers, bool):
        raise TypeError(f"async_handlers must be True or False, got {async_handlers!r}")
    if monitor_clients is not None and not isinstance(monitor_clients, bool):
        raise TypeError(f"monitor_clients must be True, False or None, got {monitor_clients!r}")


def _environ_of(request: Request) -> dict[str, Any]:
    """The second argument of a two-argument CORS callable: python-engineio's environ."""
    return build_environ(request.extra)


def _describe_allowed(allowed: Any, request: Request) -> str:
    """``cors_allowed_origins`` in a log line about a refusal."""
    if allowed is None:
        return f"same origin only ({', '.join(own_origins(request))})"
    if callable(allowed):
        return f"refused by the cors_allowed_origins callable {getattr(allowed, '__qualname__', allowed)!r}"
    if isinstance(allowed, str):
        return f"cors_allowed_origins={allowed!r}"
    shown = ", ".join(repr(o) for o in allowed[:10])
    return f"cors_allowed_origins=[{shown}{', ...' if len(allowed) > 10 else ''}]"


def _accepts_args(fn: Callable[..., Any], n: int) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(*range(n))
    except TypeError:
        return False
    return True


def _maybe_json(text: str) -> Any:
    """python-engineio's rule: text that parses as JSON (and does not start with a digit) arrives decoded."""
    try:
        return _json.loads(text)
    except ValueError:
        return text


def _encode_data(data: Any) -> str | bytes:
    if isinstance(data, (dict, list)):
        return _json.dumps(data, separators=(",", ":"))  # type: ignore[no-any-return]
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return str(data)


async def _respond(send: Send, response: Response) -> None:
    body = response.body
    headers = response.headers
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _deny(scope: Scope, send: Send, response: Response) -> None:
    """Refuse a websocket: an HTTP answer where the server supports it, else close before accept."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = list(response.headers)
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "websocket.http.response.start", "status": response.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def _read_body(scope: Scope, receive: Receive, limit: int) -> Any:
    """Read a request body across every ``http.request`` message; None once past ``limit``."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            # refused before reading (and before uvicorn sends a 100 Continue)
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
            break
    message = await receive()
    if message["type"] != "http.request":
        return _GONE
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None  # the usual case: it came in one piece
    chunks = [body]
    size = len(body)
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return _GONE
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else None
    return None
