"""HTTP requests: long-polling GETs and POSTs, handshakes, preflights, refusals."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engineio_sansio import ConnectRequest, Respond

from ._state import PendingHTTP, Receive, RuntimeState, Scope, Send
from .environ import request_from_scope

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["PollingMixin", "access_log", "client_of"]

access_log = logging.getLogger("engineio_asgi.server.access")
"""One line per HTTP response and per websocket, at DEBUG (off unless this logger is set to DEBUG)."""
_DEBUG = logging.DEBUG
_SIZES_KEPT = 512
_SIZES = tuple(b"%d" % n for n in range(_SIZES_KEPT))
"""``Content-Length`` values of small bodies (``ok``, a handshake's, most polls'), formatted once."""


def client_of(scope: Scope) -> str:
    """The client's ``host:port`` as the ASGI server reports it."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


class PollingMixin(RuntimeState):
    """One ASGI ``http`` connection: the request goes to the core, its ``Respond`` comes back."""

    async def _handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self._core
        if self._allow_request is None:
            rid, events = core.receive_request(request_from_scope(scope), self._clock())
        else:
            rid, events = await self._receive_asked(request_from_scope(scope), scope, receive, send, False)
        response = events[0] if len(events) == 1 else None
        if type(response) is not Respond or response.request_id != rid:
            # not answered at once (as a poll with packets waiting, a preflight are)
            pending = self._http[rid] = PendingHTTP(rid, scope, receive, send)
            try:
                if len(events) == 1 and type(events[0]) is ConnectRequest:
                    await self._connect(events[0], pending)  # a handshake (the usual reason to be here)
                elif events:
                    await self._perform(events)
                del events  # (not kept while the request waits for its answer)
                if pending.response is None:
                    if scope["method"] == "GET":
                        self._timer_changed()  # a GET held during an upgrade has a deadline
                    # Pass the request's body to the core and wait for its Respond. The
                    # task waits in receive(), which returns only with more body or when
                    # the client leaves; the core's answer wakes it out of there (no
                    # watcher task, task group, event or wake-up object per held poll).
                    backend: Backend = self._backend  # type: ignore[assignment]
                    while pending.response is None:
                        pending.reader = backend.enter_wakeable()
                        try:
                            message = await receive()
                        except BaseException as exc:
                            if not backend.exit_wakeable(pending.reader, pending.woken, exc):
                                raise
                            continue  # woken: the response is here
                        else:
                            backend.exit_wakeable(pending.reader, pending.woken, None)
                        finally:
                            pending.reader = None
                        kind = message["type"]
                        if kind == "http.request":
                            events = core.receive_body(
                                rid, message.get("body", b""), message.get("more_body", False), self._clock()
                            )
                            if events:
                                await self._perform(events)
                            del events
                        elif kind == "http.disconnect":
                            events = core.connection_lost(rid, self._clock())
                            if events:
                                await self._perform(events)
                            return  # the client left first
            finally:
                del self._http[rid]
            response = pending.response
            if response is None:
                return
        # the response is written here, the one place (not in a coroutine of its own: one per request)
        if self._header_hooks and response.status < 400:
            await self._hook_headers(scope, receive, send, response.headers)
        body = response.body
        headers = response.headers
        size = len(body)
        headers.append((b"content-length", _SIZES[size] if size < _SIZES_KEPT else b"%d" % size))
        if access_log.isEnabledFor(_DEBUG):
            access_log.debug(
                "%s %s %s?%s %d %d",
                client_of(scope),
                scope["method"],
                scope["path"],
                scope.get("query_string", b"").decode("latin-1"),
                response.status,
                len(body),
            )
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except Exception as exc:
            self.logger.info("request %d: response not written (%s)", rid, exc)
            events = core.send_failed(rid, self._clock())
            if events:
                await self._perform(events)
