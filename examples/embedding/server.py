"""Engine.IO with no ASGI server: ``engineio_sansio`` on plain anyio sockets, h11 and wsproto.

This is the proof that the protocol core stands alone. Everything Engine.IO is
decided by :class:`engineio_sansio.Server`; this file only moves bytes and time:

* **h11** parses HTTP/1.1 requests (long polling, and the websocket handshake);
* **wsproto** frames the websocket once the connection has switched protocols;
* **anyio** provides sockets, tasks and the clock, so the same file runs on
  asyncio or trio (``--backend trio``);
* **one timer task** sleeps until :meth:`~engineio_sansio.Server.next_deadline`
  and calls :meth:`~engineio_sansio.Server.handle_timer` with the time: that is
  every heartbeat, ping timeout, upgrade timeout and close timeout of every
  session.

The application is an echo server: every message comes back to its sender
unchanged, except the text ``close-me``, which makes the server close the
session.

h11 and wsproto are not dependencies of the package: install them with the
``embedding`` extra, ``.venv/bin/pip install -e '.[embedding]'`` (plus ``trio``
for ``--backend trio``; the ``test`` extra has all three). Run it from the
repository root::

    .venv/bin/python examples/embedding/server.py --port 8000
    .venv/bin/python examples/embedding/server.py --port 8000 --backend trio --cors '*'

and connect any Engine.IO v4 client to ``http://127.0.0.1:8000``. It prints
``listening on http://HOST:PORT`` once it accepts connections.

The loop that matters is :meth:`Runtime.pump`: after every call into the core,
drain ``core.take_events()`` and execute each event. Nothing here awaits while
it talks to the core, so the core never sees two callers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
from collections import deque
from typing import Any, Protocol

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream
from wsproto.connection import Connection as WSProtocol
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import generate_accept_token

from engineio_sansio import (
    CloseWebSocket,
    Data,
    MessageReceived,
    Request,
    Response,
    Route,
    RouteKind,
    SendFrames,
    Server,
    ServerConfig,
    Session,
    SessionClosed,
    Transport,
    TransportWritable,
    WebSocket,
    parse_query,
)
from engineio_sansio.server import WS_CLOSE_NORMAL

log = logging.getLogger("embedding")

ENGINEIO_PATH = "/engine.io"
KEEPALIVE_TIMEOUT = 75.0  # an idle keep-alive HTTP connection is closed after this long
CLOSE_GRACE = 5.0  # after we send a websocket close, how long the peer has to answer it
READ_SIZE = 65536
_NETWORK_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class App(Protocol):
    """What the runtime calls; the runtime is passed in so the app can send and close."""

    def on_connect(self, rt: Runtime, sid: str, request: Request) -> bool: ...
    def on_message(self, rt: Runtime, sid: str, data: Data) -> None: ...
    def on_disconnect(self, rt: Runtime, sid: str, reason: str) -> None: ...


class EchoApp:
    """Echo every message to its sender; ``close-me`` closes the session from the server."""

    def on_connect(self, rt: Runtime, sid: str, request: Request) -> bool:
        log.info("%s connected", sid)
        return True

    def on_message(self, rt: Runtime, sid: str, data: Data) -> None:
        if data == "close-me":
            rt.disconnect(sid)
        else:
            rt.send(sid, data)

    def on_disconnect(self, rt: Runtime, sid: str, reason: str) -> None:
        log.info("%s disconnected (%s)", sid, reason)


class SessionState:
    """Per-session runtime state, hung on ``Session.runtime``: the held poll's wake-up."""

    __slots__ = ("poll_event",)

    def __init__(self) -> None:
        self.poll_event: anyio.Event | None = None


class WSConn:
    """Per-websocket runtime state, hung on ``WebSocket.runtime``.

    Writes go through one writer task, in the order they were asked for:
    ``("flush", None)`` takes the session's queued frames at write time,
    ``("frames", frames)`` writes frames the core handed out directly (the
    probe answer), ``("raw", bytes)`` writes protocol bytes (pong, close reply),
    ``("close", code)`` sends a close frame, and ``("end", None)`` stops.
    """

    def __init__(self, stream: SocketStream, trailing_data: bytes) -> None:
        self.stream = stream
        self.proto = WSProtocol(ConnectionType.SERVER, trailing_data=trailing_data)
        self.actions: deque[tuple[str, Any]] = deque()
        self.ready = anyio.Event()
        self.scope: anyio.CancelScope | None = None

    def push(self, kind: str, arg: Any = None) -> None:
        self.actions.append((kind, arg))
        self.ready.set()


class Runtime:
    """Drives one :class:`engineio_sansio.Server`: sockets in, core calls, events out."""

    def __init__(self, config: ServerConfig, app: App) -> None:
        self.core = Server(config)
        self.app = app
        self._timer_wake = anyio.Event()
        self._timer_target = math.inf

    @staticmethod
    def now() -> float:
        return anyio.current_time()

    # --- what the application calls -------------------------------------------

    def send(self, sid: str, data: Data) -> None:
        """Queue a message for ``sid`` and wake its transport (the core raises no event for it)."""
        session = self.core.sessions.get(sid)
        if session is not None and self.core.send(session, data):
            self._wake(session)

    def disconnect(self, sid: str) -> None:
        """Close ``sid`` from the server; its client receives a CLOSE packet."""
        session = self.core.sessions.get(sid)
        if session is not None:
            self.core.close(session, self.now())
            self.pump()

    # --- executing the core's events ------------------------------------------

    def pump(self) -> None:
        """Execute every event the core raised; call after each call into the core.

        Handlers may call back into the core (an echo queues a message), so the
        loop runs until no event is left. Nothing here awaits.
        """
        core = self.core
        while core.events:
            for event in core.take_events():
                if isinstance(event, MessageReceived):
                    self.app.on_message(self, event.session.sid, event.data)
                elif isinstance(event, TransportWritable):
                    self._wake(event.session)
                elif isinstance(event, SendFrames):
                    conn = event.ws.runtime
                    if conn is not None:
                        conn.push("frames", event.frames)
                elif isinstance(event, CloseWebSocket):
                    conn = event.ws.runtime
                    if conn is not None:
                        conn.push("close", event.code)
                elif isinstance(event, SessionClosed):
                    self.app.on_disconnect(self, event.session.sid, event.reason.value)
        self._kick_timer()

    def _wake(self, session: Session) -> None:
        """The session has something to send: answer its held poll, or flush its websocket."""
        state: SessionState | None = session.runtime
        if state is not None and state.poll_event is not None and self.core.poll_ready(session):
            state.poll_event.set()
        if session.transport is Transport.WEBSOCKET and session.ws is not None:
            conn: WSConn | None = session.ws.runtime
            if conn is not None:
                conn.push("flush")

    # --- the one timer ----------------------------------------------------------

    def _kick_timer(self) -> None:
        deadline = self.core.next_deadline()
        if deadline is not None and deadline < self._timer_target:
            self._timer_wake.set()

    async def timer_loop(self) -> None:
        """Sleep until the core's next deadline (or until woken for an earlier one), then run it."""
        core = self.core
        while True:
            self._timer_wake = anyio.Event()
            deadline = core.next_deadline()
            self._timer_target = math.inf if deadline is None else deadline
            if deadline is None:
                await self._timer_wake.wait()
            else:
                with anyio.move_on_after(max(0.0, deadline - self.now())):
                    await self._timer_wake.wait()
            self._timer_target = math.inf
            core.handle_timer(self.now())
            self.pump()

    # --- HTTP/1.1 with h11 --------------------------------------------------------

    async def serve_connection(self, stream: SocketStream) -> None:
        """One TCP connection: HTTP requests (keep-alive) until it closes or switches to websocket."""
        try:
            async with stream:
                await self._serve_http(stream)
        except Exception:  # one broken connection must not stop the server
            log.exception("connection from %s failed", _peer(stream))

    async def _serve_http(self, stream: SocketStream) -> None:
        http = h11.Connection(h11.SERVER)
        while True:
            event: Any = None
            with anyio.move_on_after(KEEPALIVE_TIMEOUT):
                try:
                    event = await _next_event(http, stream)
                except h11.RemoteProtocolError:
                    with contextlib.suppress(h11.LocalProtocolError):
                        await _send_plain(http, stream, 400, b"bad request\n")
                    return
            if not isinstance(event, h11.Request):
                return  # closed by the peer, or idle for too long
            switched = await self._handle_request(http, stream, event)
            if switched or http.our_state is h11.MUST_CLOSE:
                return
            try:
                http.start_next_cycle()
            except h11.LocalProtocolError:
                return  # the request body was not read: this connection cannot be reused

    async def _handle_request(self, http: h11.Connection, stream: SocketStream, req: h11.Request) -> bool:
        """Answer one request; True when the connection became a websocket."""
        target = req.target.decode("latin-1")
        path, _, query = target.partition("?")
        if path != ENGINEIO_PATH and not path.startswith(ENGINEIO_PATH + "/"):
            await _read_body(http, stream, 0)
            await _send_plain(http, stream, 404, b"not found\n", close=True)
            return False
        headers: dict[str, str] = {}
        for name, value in req.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = headers[key] + ", " + text if key in headers else text
        request = Request(req.method.decode("ascii"), parse_query(query), headers, "http")
        if request.method == "GET" and headers.get("upgrade", "").lower() == "websocket":
            return await self._handle_websocket(http, stream, request)

        core = self.core
        route = core.route(request, self.now())
        if isinstance(route, Response):
            body_read = await _read_body(http, stream, 0) is not None
            await _respond(http, stream, route, close=not body_read)
            return False
        if route.kind is RouteKind.POST:
            await self._handle_post(http, stream, route)
            return False
        await _read_body(http, stream, 0)
        if route.kind is RouteKind.PREFLIGHT:
            await _respond(http, stream, core.preflight_response(route))
        elif route.kind is RouteKind.HANDSHAKE:
            await _respond(http, stream, self._polling_handshake(route, request))
        else:  # RouteKind.POLL
            response = core.poll(route, request)
            self.pump()  # a second concurrent poll closes the session
            if response is None:
                response = await self._hold_poll(http, stream, route, request)
                if response is None:
                    return False  # the client left; nothing was taken from the queue
            await _respond(http, stream, response)
        return False

    def _open(self, route: Route, request: Request) -> tuple[Session, Response | None]:
        """open_session, ask the application, then accept or reject (with a 401)."""
        core = self.core
        session = core.open_session(route, self.now())
        session.runtime = SessionState()
        if self.app.on_connect(self, session.sid, request):
            core.accept(session, self.now())
            self.pump()
            return session, None
        return session, core.reject(session, route, b'"Unauthorized"')

    def _polling_handshake(self, route: Route, request: Request) -> Response:
        _, refused = self._open(route, request)
        if refused is not None:
            return refused
        response = self.core.poll(route, request)  # the OPEN packet is queued: never None
        assert response is not None
        return response

    async def _hold_poll(
        self, http: h11.Connection, stream: SocketStream, route: Route, request: Request
    ) -> Response | None:
        """Wait for the session to have something to send, watching for the client to leave."""
        session = route.session
        assert session is not None
        state: SessionState = session.runtime
        event = state.poll_event = anyio.Event()
        left = False
        async with anyio.create_task_group() as tg:

            async def watch_peer() -> None:
                nonlocal left
                try:
                    data = await stream.receive(READ_SIZE)
                except _NETWORK_ERRORS:
                    data = b""
                if data:
                    http.receive_data(data)  # a pipelined request: keep it for the next cycle
                    return
                left = True
                tg.cancel_scope.cancel()

            tg.start_soon(watch_peer)
            await event.wait()
            tg.cancel_scope.cancel()
        if state.poll_event is event:
            state.poll_event = None
        if left:
            self.core.poll_abandoned(session)
            return None
        return self.core.poll_response(route, request)

    async def _handle_post(self, http: h11.Connection, stream: SocketStream, route: Route) -> None:
        core = self.core
        busy = core.begin_post(route)
        if busy is not None:
            self.pump()
            await _respond(http, stream, busy, close=True)
            return
        body = await _read_body(http, stream, core.config.max_http_buffer_size)
        if body is _GONE:
            core.post_abandoned(route)
            return
        if body is None:
            await _respond(http, stream, core.post_too_large(route), close=True)
            return
        response = core.post(route, body, self.now())
        self.pump()  # deliver the messages before answering, in order
        await _respond(http, stream, response)

    # --- websocket with wsproto ----------------------------------------------------

    async def _handle_websocket(self, http: h11.Connection, stream: SocketStream, request: Request) -> bool:
        core = self.core
        await _read_body(http, stream, 0)
        route = core.route(request, self.now(), websocket=True)
        if isinstance(route, Response):
            await _respond(http, stream, route, close=True)  # an HTTP answer declines the upgrade
            return False
        key = request.headers.get("sec-websocket-key")
        if not key:
            await _send_plain(http, stream, 400, b"missing Sec-WebSocket-Key\n", close=True)
            return False
        extra: list[tuple[bytes, bytes]] = []
        if route.kind is RouteKind.HANDSHAKE:
            session, refused = self._open(route, request)
            if refused is not None:
                await _respond(http, stream, refused, close=True)
                return False
            ws = session.ws
            assert ws is not None
            extra = core.handshake_headers(session)
        elif route.kind is RouteKind.IGNORE:  # a second websocket for an upgraded session
            ws = None
        else:  # RouteKind.UPGRADE: a probe for a polling session
            ws = core.attach_probe(route, self.now())
        headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(key.encode("latin-1"))),
            *extra,
        ]
        try:
            await stream.send(http.send(h11.InformationalResponse(status_code=101, headers=headers)))
        except _NETWORK_ERRORS:
            if ws is not None:
                core.websocket_closed(ws, self.now())
                self.pump()
            return True
        trailing, _ = http.trailing_data
        if ws is None:  # accepted only to be closed at once
            proto = WSProtocol(ConnectionType.SERVER, trailing_data=trailing)
            with contextlib.suppress(*_NETWORK_ERRORS):
                await stream.send(proto.send(CloseConnection(code=WS_CLOSE_NORMAL)))
            return True
        conn = ws.runtime = WSConn(stream, trailing)
        if ws.upgraded:
            conn.push("flush")  # the OPEN packet is already queued
        self.pump()
        await self._run_websocket(ws, conn)
        return True

    async def _run_websocket(self, ws: WebSocket, conn: WSConn) -> None:
        async with anyio.create_task_group() as tg:
            conn.scope = tg.cancel_scope
            tg.start_soon(self._ws_writer, ws, conn)
            await self._ws_reader(ws, conn)
        if not ws.closed:  # cancelled by the close grace period, or the socket broke
            self.core.websocket_closed(ws, self.now())
            self.pump()

    async def _ws_reader(self, ws: WebSocket, conn: WSConn) -> None:
        core = self.core
        proto = conn.proto
        limit = core.config.max_http_buffer_size
        parts: list[Any] = []
        size = 0
        discarding = False
        pending = list(proto.events())  # frames that arrived with the handshake, if any
        while True:
            for event in pending:
                if isinstance(event, (TextMessage, BytesMessage)):
                    if not discarding:
                        parts.append(event.data)
                        size += len(event.data)
                    if size > limit and not discarding:
                        # hand the core the oversized frame: it closes with 1009 by its own rule
                        discarding = True
                        frame: Data = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                        core.receive_frame(ws, frame, self.now())
                        self.pump()
                    if event.message_finished:
                        if not discarding:
                            frame = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                            data = core.receive_frame(ws, frame, self.now())
                            if data is not None:
                                self.app.on_message(self, ws.session.sid, data)
                            self.pump()
                        parts, size, discarding = [], 0, False
                elif isinstance(event, Ping):
                    conn.push("raw", proto.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if proto.state is ConnectionState.REMOTE_CLOSING:
                        conn.push("raw", proto.send(event.response()))
                    core.websocket_closed(ws, self.now())
                    self.pump()
                    conn.push("end")
                    return
            try:
                data_in = await conn.stream.receive(READ_SIZE)
            except _NETWORK_ERRORS:
                core.websocket_closed(ws, self.now())
                self.pump()
                conn.push("end")
                return
            proto.receive_data(data_in)
            pending = list(proto.events())

    async def _ws_writer(self, ws: WebSocket, conn: WSConn) -> None:
        core = self.core
        proto = conn.proto
        while True:
            await conn.ready.wait()
            conn.ready = anyio.Event()
            while conn.actions:
                kind, arg = conn.actions.popleft()
                out = b""
                if kind == "flush":
                    session = ws.session
                    if session.ws is ws and ws.upgraded:
                        frames = core.take_frames(session)
                        self.pump()  # handing out the CLOSE packet finishes the session
                        out = b"".join(_encode(proto, f) for f in frames)
                elif kind == "frames":
                    out = b"".join(_encode(proto, f) for f in arg)
                elif kind == "raw":
                    out = arg
                elif kind == "close":
                    if proto.state is ConnectionState.OPEN:
                        out = proto.send(CloseConnection(code=arg))
                    # the peer gets a bounded time to answer our close
                    assert conn.scope is not None
                    conn.scope.deadline = min(conn.scope.deadline, self.now() + CLOSE_GRACE)
                elif kind == "end":
                    return
                if out:
                    try:
                        await conn.stream.send(out)
                    except _NETWORK_ERRORS:
                        core.websocket_closed(ws, self.now())
                        self.pump()
                        assert conn.scope is not None
                        conn.scope.cancel()
                        return

    # --- shutdown -------------------------------------------------------------------

    async def close_all(self) -> None:
        """Close every session (reason: server disconnect) and give the writers a moment."""
        self.core.close_all(self.now())
        self.pump()
        await anyio.sleep(0.2)


_GONE: Any = object()


async def _next_event(http: h11.Connection, stream: SocketStream) -> Any:
    while True:
        event = http.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive(READ_SIZE)
        except _NETWORK_ERRORS:
            data = b""
        http.receive_data(data)


async def _read_body(http: h11.Connection, stream: SocketStream, limit: int) -> Any:
    """The request body; None past ``limit`` bytes (reading stops); _GONE if the client left."""
    chunks = []
    size = 0
    while True:
        try:
            event = await _next_event(http, stream)
        except h11.RemoteProtocolError:
            return _GONE
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                return None
            chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            return b"".join(chunks)
        else:
            return _GONE


async def _respond(
    http: h11.Connection, stream: SocketStream, response: Response, close: bool = False
) -> None:
    headers = list(response.headers)
    headers.append((b"content-length", str(len(response.body)).encode()))
    if close:
        headers.append((b"connection", b"close"))
    try:
        await stream.send(http.send(h11.Response(status_code=response.status, headers=headers)))
        if response.body:
            await stream.send(http.send(h11.Data(data=response.body)))
        await stream.send(http.send(h11.EndOfMessage()))
    except _NETWORK_ERRORS:
        pass  # the client left; a poll's packets were already handed out (as with any server)


async def _send_plain(
    http: h11.Connection, stream: SocketStream, status: int, body: bytes, close: bool = True
) -> None:
    if http.our_state is not h11.SEND_RESPONSE:
        return
    await _respond(http, stream, Response(status, [(b"content-type", b"text/plain")], body), close=close)


def _encode(proto: WSProtocol, frame: Data) -> bytes:
    if isinstance(frame, str):
        return proto.send(TextMessage(data=frame))
    return proto.send(BytesMessage(data=frame))


def _peer(stream: SocketStream) -> str:
    try:
        return repr(stream.extra(SocketAttribute.remote_address))
    except Exception:
        return "?"


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    parser.add_argument(
        "--cors", action="append", default=None, help="an allowed origin, or '*' (repeatable)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    cors: Any = None
    if args.cors:
        cors = "*" if "*" in args.cors else list(args.cors)
    config = ServerConfig.from_options(
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        cors_allowed_origins=cors,
    )
    runtime = Runtime(config, EchoApp())
    listener = await anyio.create_tcp_listener(local_host=args.host, local_port=args.port)
    port = listener.extra(SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.timer_loop)
        tg.start_soon(listener.serve, runtime.serve_connection, tg)
        print(f"listening on http://{args.host}:{port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("signal %s: closing every session", signum)
                await runtime.close_all()
                tg.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    anyio.run(serve, args, backend=args.backend)


if __name__ == "__main__":
    main()
