"""Engine.IO with no ASGI server: ``engineio_sansio`` on plain anyio sockets, h11 and wsproto.

The reference runtime for embedding the core. :class:`engineio_sansio.Server` decides all of
Engine.IO; this file moves bytes (h11 for HTTP/1.1, wsproto for websockets) and time on anyio
(asyncio, or trio with ``--backend trio``): :meth:`Runtime.perform` performs the core's events,
:meth:`Runtime.handle_connection` serves one TCP connection, :meth:`Runtime.run_timer` is the
one timer of every session. The application echoes each message to its sender; ``close-me``
closes the session.

Install h11 and wsproto with the ``embedding`` extra (``.venv/bin/pip install -e '.[embedding]'``,
and ``trio`` for ``--backend trio``), then run, from the repository root::

    .venv/bin/python examples/embedding/server.py --port 8000
    .venv/bin/python examples/embedding/server.py --port 8000 --backend trio --cors '*'

It prints ``listening on http://HOST:PORT`` once it accepts Engine.IO v4 clients.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
from collections.abc import Sequence

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.memory import MemoryObjectSendStream
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping
from wsproto.utilities import generate_accept_token

import engineio_sansio as eio

log = logging.getLogger("embedding")
ENGINEIO_PATH = "/engine.io"
IDLE_TIMEOUT = 75.0  # seconds a client may stay silent while we wait for a request or its body
READ_SIZE = 65536
NETWORK_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)
CLOSE: eio.Headers = [(b"connection", b"close")]
WAITING = (h11.IDLE, h11.SEND_BODY)  # what the client owes us while it sends a request
SWITCH: eio.Headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade")]


class EchoApp:
    """Accept every client and echo its messages; ``close-me`` closes the session."""

    def on_connect(self, rt: Runtime, sid: str, request: eio.Request) -> bool:
        return True

    def on_message(self, rt: Runtime, sid: str, data: eio.Data) -> None:
        if data == "close-me":
            rt.close(sid)
        else:
            rt.send(sid, data)

    def on_disconnect(self, rt: Runtime, sid: str, reason: str) -> None:
        log.info("%s disconnected (%s)", sid, reason)


class Runtime:
    """One :class:`engineio_sansio.Server`, driven by sockets and the clock."""

    def __init__(self, config: eio.ServerConfig, app: EchoApp) -> None:
        self.core = eio.Server(config)
        self.app = app
        # each request in progress: what it asked, and where its connection takes the core's answers
        self.requests: dict[int, tuple[eio.Request, MemoryObjectSendStream[eio.Event]]] = {}
        self._timer = anyio.CancelScope()  # the timer's sleep: its deadline is the core's next one

    def send(self, sid: str, data: eio.Data) -> None:
        """The application sends a message (ignored for a session that is gone)."""
        self.perform(self.core.send(sid, data) or ())

    def close(self, sid: str) -> None:
        """The application closes a session."""
        self.perform(self.core.close(sid, anyio.current_time()))

    def perform(self, events: Sequence[eio.Event]) -> None:
        """Perform the events a call into the core returned, in order; it never awaits."""
        for event in events:
            match event:
                case eio.ConnectRequest(sid, rid, _):
                    if self.app.on_connect(self, sid, self.requests[rid][0]):
                        self.perform(self.core.accept(sid, anyio.current_time()))
                    else:
                        self.perform(self.core.reject(sid))
                case eio.MessageReceived(sid, data):
                    self.app.on_message(self, sid, data)
                case eio.SessionClosed(sid, reason):
                    self.app.on_disconnect(self, sid, reason.value)
                case eio.Upgraded(sid):
                    log.info("%s upgraded to websocket", sid)
                case eio.RequestRefused(_, code, message, context):  # its Respond follows
                    log.info("request refused: %d %s %s", code, message, context)
                case _:  # Respond, AcceptWebSocket, SendFrames, CloseWebSocket: to the connection
                    if event.request_id in self.requests:
                        self.requests[event.request_id][1].send_nowait(event)
        if (deadline := self.core.next_deadline()) is not None:
            self._timer.deadline = min(self._timer.deadline, deadline)  # wake the timer sooner

    async def run_timer(self) -> None:
        """The one timer of every session: sleep until the core's next deadline, then run it."""
        while True:
            deadline = self.core.next_deadline()
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as self._timer:
                await anyio.sleep_forever()
            self.perform(self.core.handle_timer(anyio.current_time()))

    async def handle_connection(self, stream: SocketStream) -> None:
        """One TCP connection (keep-alive HTTP/1.1 requests, or a websocket): a reader gives the
        core what the client sends, a writer writes what the core says to this connection."""
        core, http = self.core, h11.Connection(h11.SERVER)
        ws: Connection | None = None  # once the connection has switched to websocket
        rid = -1  # the request in progress (a websocket is named by its handshake request)
        answered = anyio.Event()  # the writer answered it: a pipelined request may go to the core
        reading = anyio.CancelScope()  # the reader's wait for bytes, bounded while a request is due
        lock = anyio.Lock()  # the writer writes frames while the reader answers pings and closes
        outbox, inbox = anyio.create_memory_object_stream[eio.Event](math.inf)

        async def send(data: bytes) -> bool:
            async with lock:
                with contextlib.suppress(*NETWORK_ERRORS):
                    await stream.send(data)
                    return True
            return False

        async def read() -> None:
            nonlocal rid, reading
            while ws is None:
                event = http.next_event()
                if event is h11.NEED_DATA:  # a request or its body must come in time, an answer need not
                    with anyio.fail_after(IDLE_TIMEOUT if http.their_state in WAITING else None) as reading:
                        http.receive_data(await receive(stream))
                elif isinstance(event, h11.Request):
                    if (request := to_request(event)) is None:
                        await respond(http, stream, 404, CLOSE, b"not found\n")
                        return
                    # with no key it is no websocket handshake, and the core answers it as HTTP (400)
                    websocket = request.headers.get("upgrade", "").lower() == "websocket"
                    websocket = websocket and "sec-websocket-key" in request.headers
                    rid, events = core.receive_request(request, anyio.current_time(), websocket=websocket)
                    self.requests[rid] = request, outbox
                    self.perform(events)
                elif isinstance(event, h11.Data | h11.EndOfMessage):
                    more = isinstance(event, h11.Data)
                    self.perform(
                        core.receive_body(rid, bytes(event.data) if more else b"", more, anyio.current_time())
                    )
                elif event is h11.PAUSED:  # the next request, pipelined, or the websocket switch
                    await answered.wait()
                else:
                    return  # the client closed the connection
            parts, size, limit = [], 0, core.config.max_http_buffer_size
            while True:
                for event in ws.events():
                    match event:
                        case Message(data=data, message_finished=finished):
                            parts.append(data)
                            size += len(data)
                            if finished or size > limit:  # too big: the core refuses what came so far
                                whole = "".join(parts) if isinstance(data, str) else b"".join(parts)
                                parts, size = [], 0
                                self.perform(core.receive_frame(rid, whole, anyio.current_time()))
                        case Ping():
                            await send(ws.send(event.response()))
                        case CloseConnection():  # from the client, or its connection is gone
                            if ws.state is ConnectionState.REMOTE_CLOSING:
                                await send(ws.send(event.response()))
                            return
                ws.receive_data(await receive(stream) or None)

        async def write(scope: anyio.CancelScope) -> None:
            nonlocal ws, answered
            async for event in inbox:
                match event:
                    case eio.Respond(request_id, status, headers, body):
                        del self.requests[request_id]
                        if http.their_state is not h11.DONE:  # its body was not all read: no next request
                            headers = headers + CLOSE
                        try:
                            await respond(http, stream, status, headers, body)
                        except NETWORK_ERRORS:
                            self.perform(core.send_failed(request_id, anyio.current_time()))
                            break
                        if http.our_state is not h11.DONE:  # h11 says this connection ends here
                            break
                        http.start_next_cycle()
                        reading.deadline = min(reading.deadline, anyio.current_time() + IDLE_TIMEOUT)
                        answered.set()
                        answered = anyio.Event()
                    case eio.AcceptWebSocket(request_id, headers):
                        key = self.requests[request_id][0].headers["sec-websocket-key"].encode("latin-1")
                        headers = [*SWITCH, (b"sec-websocket-accept", generate_accept_token(key)), *headers]
                        switch = http.send(h11.InformationalResponse(status_code=101, headers=headers))
                        if not await send(switch):
                            break
                        ws = Connection(ConnectionType.SERVER, trailing_data=http.trailing_data[0])
                        answered.set()
                    case eio.SendFrames(request_id, frames) if ws and ws.state is ConnectionState.OPEN:
                        # wsproto sends a str as a text message, bytes as a binary one
                        if not await send(b"".join(ws.send(Message(data=frame)) for frame in frames)):
                            self.perform(core.send_failed(request_id, anyio.current_time()))
                            break
                        self.perform(core.frames_sent(request_id))
                    case eio.CloseWebSocket(_, code, grace):
                        if ws and ws.state is ConnectionState.OPEN:
                            await send(ws.send(CloseConnection(code=code)))
                        # the client has the core's grace period to close first (none if 0)
                        scope.deadline = min(scope.deadline, anyio.current_time() + grace)
                        return
            scope.cancel()

        try:
            async with stream, anyio.create_task_group() as tg:
                tg.start_soon(write, tg.cancel_scope)
                with contextlib.suppress(h11.RemoteProtocolError, TimeoutError, *NETWORK_ERRORS):
                    await read()  # returns when the client leaves: the writer is done too
                tg.cancel_scope.cancel()
        except Exception:  # one broken connection must not stop the server
            log.exception("connection failed")
        finally:
            if rid >= 0:  # the request in progress: gone before its answer, or the websocket closed
                self.requests.pop(rid, None)
                if inbox.statistics().current_buffer_used:  # its answer was never written
                    self.perform(core.send_failed(rid, anyio.current_time()))
                self.perform(core.connection_lost(rid, anyio.current_time()))
            outbox.close()
            inbox.close()


def to_request(req: h11.Request) -> eio.Request | None:
    """The core's view of an HTTP request; None if it is not for Engine.IO."""
    path, _, query = req.target.decode("latin-1").partition("?")
    if path.rstrip("/") != ENGINEIO_PATH:
        return None
    headers: dict[str, str] = {}
    for name, value in req.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return eio.Request(req.method.decode("ascii"), eio.parse_query(query), headers, "http")


async def receive(stream: SocketStream) -> bytes:
    """The next bytes from the client; b"" once it has closed its side (or the socket broke)."""
    try:
        return await stream.receive(READ_SIZE)
    except NETWORK_ERRORS:
        return b""


async def respond(
    http: h11.Connection, stream: SocketStream, status: int, hdrs: eio.Headers, body: bytes
) -> None:
    head = h11.Response(status_code=status, headers=[*hdrs, (b"content-length", b"%d" % len(body))])
    await stream.send(http.send(head) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))


async def serve(args: argparse.Namespace) -> None:
    cors = args.cors and ("*" if "*" in args.cors else args.cors)
    options = {"ping_interval": args.ping_interval, "ping_timeout": args.ping_timeout}
    runtime = Runtime(eio.ServerConfig.from_options(**options, cors_allowed_origins=cors), EchoApp())
    listener = await anyio.create_tcp_listener(local_host=args.host, local_port=args.port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run_timer)
        tg.start_soon(listener.serve, runtime.handle_connection, tg)
        print(f"listening on http://{args.host}:{listener.extra(SocketAttribute.local_port)}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("signal %s: closing every session", signum)
                runtime.perform(runtime.core.close(None, anyio.current_time()))
                await anyio.sleep(0.2)  # time for the CLOSE packets to leave
                tg.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    parser.add_argument("--cors", action="append", help="an allowed origin, or '*' (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    anyio.run(serve, args, backend=args.backend)


if __name__ == "__main__":
    main()
