"""``AsyncServer``: python-engineio's asynchronous server API, on anyio, for ASGI.

The server is assembled from one part per job: :mod:`._polling` (HTTP requests),
:mod:`._websocket`, :mod:`._handlers` (the application's handlers) and
:mod:`._events` (performing the core's events, the timer driver); this module is
the public API.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any, Awaitable, Callable

import anyio
import sniffio

from engineio_sansio import (
    CloseReason,
    PacketType,
    Request,
    SendFrames,
    Server,
    ServerConfig,
    Stats,
    StatsSnapshot,
)
from engineio_sansio.http import origin_entry_problem, own_origins
from engineio_sansio.routing import default_sid

from ._backend import NO_LOOP, Backend, get_backend
from ._events import EventsMixin
from ._handlers import HandlersMixin, accepts_args, encode_data, set_json
from ._hooks import HooksMixin
from ._polling import PollingMixin
from ._state import PendingHTTP, Receive, Scope, Send, SessionRT, WSConn
from ._websocket import WebSocketMixin
from ._writes import Pings
from .environ import build_environ, request_from_scope

__all__ = ["AsyncServer", "reason"]

default_logger = logging.getLogger("engineio_asgi.server")
# the project's own options (allow_eio3: Node's allowEIO3)
_EXTRA_OPTIONS = ("upgrade_timeout", "close_timeout", "max_queued_bytes", "allow_eio3")
_LOGGER_METHODS = ("debug", "info", "warning", "error", "exception")
_REFUSED_ORIGIN_LOG_INTERVAL = 60.0  # seconds before a refused origin is logged again
_REFUSED_ORIGIN_LOG_LIMIT = 100  # distinct refused origins logged per interval, then one summary line
# The timer driver wakes this long after a deadline, so that the deadlines of many
# sessions share one wake-up: a fraction of the shortest configured time, within bounds.
# The bound is small because a wake-up writes every ping it finds due at once: with
# 10,000 sessions (400 pings a second) 50 ms made bursts of 20-50 pings, and each
# burst held up other clients' messages and filled the collector's youngest
# generation (docs/benchmarks.md, "A quiet round, third pass").
_TIMER_SLACK_SHARE = 1 / 100
_TIMER_SLACK_MIN = 0.001
_TIMER_SLACK_MAX = 0.005
_CLOSE_WAIT = 1.0  # at shutdown, how long clients sent a CLOSE packet get to close their websockets
_MESSAGE = PacketType.MESSAGE
_EVENTS = ("connect", "message", "disconnect", "connection_error", "initial_headers", "headers", "upgrade")


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


class AsyncServer(PollingMixin, WebSocketMixin, HandlersMixin, HooksMixin, EventsMixin):
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
        allow_request: Callable[..., Any] | None = None,
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
            allow_request=allow_request,
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
        self.allow_request = self._allow_request = allow_request
        if json is not None:
            set_json(json)
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
        self._header_hooks = False
        self._refusal_log: dict[tuple[int, Any], list[Any]] = {}
        self._disconnect_takes_reason = True
        # ids come from generate_id() at each handshake, so a subclass's (or a patched) one is used
        self._stats = Stats()
        self._lag_window = float("-inf")
        self._upgrade_listeners: list[Callable[[str], Any]] = []
        self._handler_errors: dict[tuple[Any, ...], list[Any]] = {}
        self._core = Server(self.config, sid_generator=self._next_sid, stats=self._stats)
        self._http: dict[int, PendingHTTP] = {}  # requests waiting for the core's answer, by id
        self._ws: dict[int, WSConn] = {}  # open websockets, by the id of their request
        self._sessions: dict[str, SessionRT] = {}  # by sid, from the connect handler to the disconnect
        self._backend: Backend | None = None
        self._clock: Callable[[], float] = anyio.current_time
        self._timer_task: Any = None
        self._timer_wake: anyio.Event | None = None
        self._timer_target = float("inf")
        self._closing = False
        self._late_closes: dict[WSConn, tuple[float, int]] = {}  # websockets whose close waits for the client
        self._late_tick = float("inf")
        self._pings = Pings(self)
        self._message_handler: Any = None
        self._message_is_async = False

    # --- handlers ------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler for ``connect``, ``message`` or ``disconnect``, or for one of
        the hooks named as in Node's engine.io: ``connection_error``, ``initial_headers``,
        ``headers`` and ``upgrade`` (see the API docs for their arguments).

        Without ``handler`` this returns a decorator.
        """
        if event not in _EVENTS:
            raise ValueError(f"invalid event {event!r}; one of {', '.join(_EVENTS)}")

        def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.handlers[event] = fn
            if event == "disconnect":
                self._disconnect_takes_reason = accepts_args(fn, 2)
            self._header_hooks = "headers" in self.handlers or "initial_headers" in self.handlers
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
        if type(data) is not str and type(data) is not bytes:
            data = encode_data(data)
        core = self._core
        events = core.send(sid, data)
        if events is None:
            why = "session is closing" if sid in self._sessions else "no such session"
            self.logger.warning("cannot send to sid %s: %s", sid, why)
            return
        if not events:
            return
        ev = events[0]
        if len(events) == 1 and type(ev) is SendFrames and len(ev.frames) == 1:
            # The usual case, one frame for an idle websocket, written here rather
            # than through _perform: three coroutines fewer per message. (A v3 client
            # without binary support gets bytes as base64 text: the frame's type decides.)
            rid = ev.request_id
            conn = self._ws.get(rid)
            if conn is not None and not conn.close_sent:
                frame = ev.frames[0]
                del events, ev  # (not kept alive while the write waits)
                key = "text" if type(frame) is str else "bytes"
                try:
                    await conn.send({"type": "websocket.send", key: frame})
                except Exception as exc:
                    self.logger.info("sid %s: websocket write failed (%s)", sid, exc)
                    conn.close_sent = True
                    events = core.send_failed(rid, self._clock())
                else:
                    events = core.frames_sent(rid)
                if events:
                    await self._perform(events)
                return
        await self._perform(events)

    def send_packet(self, sid: str, pkt: Any) -> Awaitable[None]:
        """Send a message packet: one of ours, or python-engineio's ``Packet`` (a coroutine).

        Only the packet's type and data are read; each transport encodes it for
        itself, so one packet object may be shared by many recipients (as
        python-socketio does for a broadcast). Control packets are the
        protocol's own: only messages can be sent.
        """
        # A plain function handing out send()'s coroutine: python-socketio calls
        # this once per recipient of a broadcast, and a coroutine of its own here
        # would be one more frame to create, enter and leave each time.
        kind = getattr(pkt, "packet_type", None)  # python-engineio's packet, or ours
        if kind is None:
            kind = pkt.type
        if kind != _MESSAGE:
            return _refuse_packet(kind)
        return self.send(sid, pkt.data)

    async def get_session(self, sid: str) -> dict[str, Any]:
        """The user session dict of ``sid`` (the live object)."""
        rt = self._sessions.get(sid)
        if rt is None:
            raise KeyError("Session not found")
        if rt.data is None:
            rt.data = {}
        return rt.data

    async def save_session(self, sid: str, session: dict[str, Any]) -> None:
        """Replace the user session dict of ``sid``."""
        rt = self._sessions.get(sid)
        if rt is None:
            raise KeyError("Session not found")
        rt.data = session

    def session(self, sid: str) -> AbstractAsyncContextManager[dict[str, Any]]:
        """``async with server.session(sid) as session:`` edits are saved on exit."""
        return _SessionContext(self, sid)

    async def disconnect(self, sid: str | None = None) -> None:
        """Close one session (or every session): the client gets CLOSE, handlers run.

        Returns once the close is handed to the transport; it never waits for
        a polling client to come back.
        """
        core = self._core
        events = core.close(sid, self._clock())
        if events:
            await self._perform(events)
        self._timer_changed()

    def transport(self, sid: str) -> str:
        """``'polling'``, ``'websocket'`` or ``'webtransport'``; raises ``KeyError`` for an unknown sid."""
        rt = self._sessions.get(sid)
        if rt is None:
            raise KeyError("Session not found")
        return rt.transport

    def stats(self) -> StatsSnapshot:
        """The server's counters and gauges now, with the timer driver's lag.

        Cheap to call (one pass over the sessions); the counters are kept all
        the time. See the operations guide for what each one means, and
        :mod:`engineio_asgi.metrics` to serve them to Prometheus.
        """
        return self._stats.snapshot()

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

    def _origin_refused(self, scope: Scope) -> None:
        """Log a refused origin, once per origin and interval (the core refuses only origins with 403)."""
        request = request_from_scope(scope)
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
        self._pings.release(True)  # pings queued behind a write that waits: each goes now
        await self.disconnect()
        late = list(self._late_closes)
        if late:
            for conn in late:
                if conn.reader is not None and conn.gone is None:
                    conn.gone = anyio.Event()  # set when its reader ends
            # the clients were sent CLOSE packets: give them their moment to
            # close (all at once, bounded), then close whatever is left
            with anyio.move_on_after(_CLOSE_WAIT):
                for conn in late:
                    if conn.gone is not None:
                        await conn.gone.wait()
            for conn in late:
                if conn.reader is not None and conn.close_code is None:
                    conn.close_code = 1000
                    await self._send_close(conn)
        # sessions whose CLOSE packet still waits for a poll that may never come end now
        await self.disconnect()
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

    # --- internals -------------------------------------------------------------

    def _ensure_backend(self) -> Backend:
        backend = self._backend
        if backend is None:
            backend = self._backend = get_backend()
            self._clock = backend.clock()
        return backend


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


async def _refuse_packet(kind: Any) -> None:
    """What awaiting ``send_packet()`` with a control packet does."""
    try:
        name = PacketType(kind).name
    except ValueError:
        name = repr(kind)
    raise ValueError(f"send_packet() sends messages only, got a {name} packet")


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
