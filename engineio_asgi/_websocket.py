"""Websocket connections: the handshake, the reader, and how a stopping server ends them."""

from __future__ import annotations

from typing import Any

import anyio

from engineio_sansio import (
    CLIENT_CLOSE_GRACE,
    WS_CLOSE_POLICY,
    AcceptWebSocket,
    ConnectRequest,
    Data,
    Headers,
    MessageReceived,
    Respond,
    SendFrames,
)

from ._backend import Backend
from ._handlers import JSON_START, maybe_json
from ._polling import access_log, client_of
from ._state import Receive, RuntimeState, Scope, Send, WSConn
from .environ import request_from_scope

__all__ = ["WS_CLOSE_SERVICE_RESTART", "WebSocketMixin"]

# The close code uvicorn gives every websocket when it stops (all three of its
# websocket implementations). Browsers cannot send it (they may only send 1000 and
# 3000-4999) and Engine.IO clients do not, so it is read as "the server went away".
WS_CLOSE_SERVICE_RESTART = 1012
# How a websocket's reader ended, as far as a stopping ASGI server goes
_NOT_STOPPED: Any = object()
_STOPPED_CLOSED: Any = object()  # closed with 1012: nothing more can be sent
_STOPPED_CANCELLED: Any = object()  # the connection's task cancelled: it is still open


class WebSocketMixin(RuntimeState):
    """One ASGI ``websocket`` connection, from its handshake to its end."""

    async def _handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        core = self._core
        if self._allow_request is None:
            rid, events = core.receive_request(request_from_scope(scope), self._clock(), websocket=True)
        else:
            rid, events = await self._receive_asked(request_from_scope(scope), scope, receive, send, True)
        conn = self._ws[rid] = WSConn(rid, scope, receive, send)
        try:
            if len(events) == 1 and type(events[0]) is ConnectRequest:
                connect = events[0]
                del events
                events = await self._connect(connect, None, False)  # the connect handler's answer
                del connect
                if (
                    len(events) == 2
                    and type(events[0]) is AcceptWebSocket
                    and type(events[1]) is SendFrames
                    and not self._header_hooks
                ):
                    # the usual answer: the accept, then the OPEN packet, each written from
                    # here, so that no coroutine of ours, event or event list is alive while
                    # the ASGI server's accept waits (uvicorn's, for the handshake's response)
                    message = _accept_message(events[0].headers)
                    opening = events[1].frames
                    del events
                    conn.accepted = True
                    try:
                        await send(message)
                        for item in opening:  # (never empty)
                            await send(_frame_message(item))
                        del item
                    except Exception as exc:  # the client is gone already
                        self.logger.info("websocket handshake failed (%s)", exc)
                        conn.close_sent = True
                        events = core.send_failed(rid, self._clock())
                    else:
                        events = core.frames_sent(rid)
                    del message, opening
                    if events:
                        await self._perform(events)
                elif events:
                    await self._perform(events)  # a refusal, or headers for the hooks
                del events
            else:
                if events:
                    await self._perform(events)  # a refusal
                # (a local lives as long as the connection: these events need not, nor the
                # last message's below, which are let go once handled)
                del events
            self._timer_changed()
            refusal = conn.denied
            if isinstance(refusal, Respond):
                await _deny(scope, send, refusal)
                return
            if not conn.accepted or conn.close_code is not None:
                return
            # From here on this task reads frames until the websocket ends, the one task
            # always waiting in receive(). (Read here, not in a coroutine of its own: each
            # level of await is passed through twice per message, and lives as long as
            # the connection.)
            clock = self._clock
            backend: Backend = self._backend  # type: ignore[assignment]
            stopped = _NOT_STOPPED  # whether (and how) the ASGI server ended it by stopping
            try:
                # what wake(conn) cancels: the wait is woken with no waker object of its
                # own per connection (nor a `with`, which would keep a bound __exit__)
                conn.reader = backend.enter_wakeable()
                try:
                    handler = self.handlers.get("message")
                    is_async = handler is not None and self._is_async_message_handler(handler)
                    run_async = self.async_handlers and is_async
                    # (the class's functions, called with self: bound methods kept in
                    # locals would be two more objects per session)
                    mixin = type(self)
                    call = mixin._call_message
                    start = mixin._start_async_message
                    sessions = self._sessions
                    while conn.close_code is None:
                        conn.in_receive = True
                        message = await receive()
                        conn.in_receive = False
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
                        events = core.receive_frame(rid, frame, clock())
                        if not events:
                            continue
                        ev = events[0]
                        if len(events) != 1 or type(ev) is not MessageReceived or handler is None:
                            await self._perform(events)
                            del ev, events
                            continue
                        # the usual event, a message, handled here without a call through _perform
                        sid = ev.sid
                        data = ev.data
                        del ev, events
                        # (a bytes message's first item is an int: never in JSON_START)
                        if data and data[0] in JSON_START and type(data) is str:
                            data = maybe_json(data)
                        if run_async:
                            rt = sessions.get(sid)
                            if rt is not None:
                                rt.chain = start(self, handler, sid, data, rt.chain)
                        elif is_async:
                            try:
                                await handler(sid, data)
                            except Exception:
                                self._handler_failed("message", sid)
                        else:
                            await call(self, handler, sid, data)
                        del data
                except BaseException as exc:
                    if not backend.exit_wakeable(conn.reader, conn.woken, exc):
                        raise
                else:
                    backend.exit_wakeable(conn.reader, conn.woken, None)
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
                close = conn.close_code is not None and not conn.close_sent
                server_stopped = stopped is not _NOT_STOPPED and conn.carrier
                if close or server_stopped:  # (a shielded scope only when there is work for it)
                    with anyio.CancelScope(shield=True):
                        if close:
                            await self._send_close(conn)
                        if server_stopped:
                            await self._server_stopped(conn, still_open=stopped is _STOPPED_CANCELLED)
        finally:
            if conn.close_later:  # its client closed it within the grace period (or was closed)
                self._late_closes.pop(conn, None)
            # however it ended (refused, ignored, closed, lost), the core is told, once
            events = core.connection_lost(rid, self._clock())
            if events:
                with anyio.CancelScope(shield=True):
                    await self._perform(events)
            del self._ws[rid]
            if access_log.isEnabledFor(10):  # DEBUG
                outcome = f"refused {conn.denied.status}" if conn.denied is not None else "closed"
                access_log.debug(
                    "%s WEBSOCKET %s?%s %s %s sid=%s",
                    client_of(scope),
                    scope["path"],
                    scope.get("query_string", b"").decode("latin-1"),
                    outcome,
                    conn.close_code if conn.close_code is not None else "-",
                    conn.sid or "-",
                )

    async def _server_stopped(self, conn: WSConn, *, still_open: bool) -> None:
        """The ASGI server ended this websocket because it is stopping: a server disconnect.

        What is possible depends on the server (docs/deployment.md has the table):
        uvicorn closes every websocket with 1012 at once and its transport is gone,
        so the reason is all that can be set; hypercorn cancels the connection's task
        after its graceful timeout while the websocket is still open, so the client
        still gets the CLOSE packet and a close frame (bounded: the process is
        going away). A close with 1001 is not taken as a stop: browsers send it
        when a page goes away, and no server we run sends it when stopping.
        """
        conn.stopping = True
        if not still_open:
            conn.close_sent = True  # nothing can be written any more
        core = self._core
        events = core.close(conn.sid, self._clock())  # reason server disconnect, CLOSE queued
        if events:
            with anyio.move_on_after(CLIENT_CLOSE_GRACE):
                # the disconnect handler, then the CLOSE packet, then the close frame
                await self._perform(events)


def _accept_message(headers: Headers) -> dict[str, Any]:
    if headers:
        return {"type": "websocket.accept", "headers": headers}
    return {"type": "websocket.accept"}


def _frame_message(frame: Data) -> dict[str, Any]:
    if type(frame) is str:
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


async def _deny(scope: Scope, send: Send, response: Respond) -> None:
    """Refuse a websocket: an HTTP answer where the server supports it, else close before accept."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = list(response.headers)
        headers.append((b"content-length", b"%d" % len(response.body)))
        await send({"type": "websocket.http.response.start", "status": response.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": WS_CLOSE_POLICY})
