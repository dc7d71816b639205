"""Calling the application: its connect, message and disconnect handlers, and its JSON."""

from __future__ import annotations

import inspect
import json as _stdlib_json
import sys
from types import CoroutineType
from typing import Any, Callable, Sequence

from engineio_sansio import ConnectRequest, Event, Respond, Transport

from ._state import PendingHTTP, RuntimeState, SessionRT
from .environ import build_environ
from .exceptions import ConnectionRefusedError

__all__ = ["HandlersMixin", "accepts_args", "encode_data", "maybe_json", "set_json"]

_json: Any = _stdlib_json
"""The process-wide JSON module (python-engineio's ``json`` option)."""

_ERROR_LOG_INTERVAL = 60.0  # the window in which a cause's lines are counted
_ERROR_LOG_BURST = 5  # lines logged per cause and window; more are counted, not logged
_ERROR_CAUSES_KEPT = 1000  # causes remembered at most (then the oldest are forgotten)
_TRANSPORT_NAMES = {t: t.value for t in Transport}  # (an Enum's .value is a Python-level call)
JSON_START = frozenset('{["tfnNI- \t\r\n')  # first characters JSON text can start with (not digits)


def set_json(module: Any) -> None:
    """Use ``module`` (with ``dumps`` and ``loads``) for every server's JSON, as python-engineio does."""
    global _json
    _json = module


class HandlersMixin(RuntimeState):
    """The application's handlers, called as python-engineio calls them."""

    async def _connect(
        self, ev: ConnectRequest, pending: PendingHTTP | None = None, perform: bool = True
    ) -> Sequence[Event]:
        """A new session: ask the application's connect handler, then accept or refuse.

        ``pending`` is the handshake's request when the caller has it at hand.
        With ``perform`` False the core's answer is returned, not performed (a
        websocket's own task writes its accept: no coroutine of this call is
        alive while the ASGI server's accept waits); else nothing is returned.
        """
        sid = ev.sid
        if pending is None:
            pending = self._http.get(ev.request_id)
        if pending is not None:
            pending.sid = sid
            scope = pending.scope
            self._sessions[sid] = SessionRT(_TRANSPORT_NAMES[ev.transport], scope.get("client"))
        else:
            # a websocket (or WebTransport session) opening its session is its record too
            conn = self._ws[ev.request_id]
            conn.sid = sid
            conn.carrier = True
            scope = conn.scope
            conn.transport = _TRANSPORT_NAMES[ev.transport]
            conn.client = scope.get("client")
            self._sessions[sid] = conn
        handler = self.handlers.get("connect")
        ok = True
        body = None
        if handler is not None:  # (no handler asks: no environ to build)
            if pending is not None:
                environ = build_environ(scope, pending.receive, pending.send)
            else:
                environ = build_environ(scope, conn.receive, conn.send)
            try:
                result = handler(sid, environ)
                if type(result) is CoroutineType or (result is not None and inspect.isawaitable(result)):
                    result = await result
            except ConnectionRefusedError as exc:
                ok, body = False, exc.error_args
            except Exception as exc:
                body = getattr(exc, "error_args", None)
                if body is None:
                    self._handler_failed("connect", sid)
                ok = False
            else:
                if result is not None and result is not True:
                    ok, body = False, (None if result is False else result)
        core = self._core
        if ok:
            events = core.accept(sid, self._clock())
            self._timer_changed()
        else:
            self.logger.info("sid %s: application rejected the connection", sid)
            self._sessions.pop(sid, None)
            events = core.reject(sid, None if body is None else _json.dumps(body).encode("utf-8"))
        if not perform:
            return events
        if len(events) == 1 and type(events[0]) is Respond:
            answer = events[0]
            if pending is not None and answer.request_id == pending.rid and answer.status == 200:
                pending.response = answer  # a polling handshake's answer: its own task writes it
            else:
                self._deliver(answer)
        elif events:
            await self._perform(events)
        return ()

    def _is_async_message_handler(self, handler: Callable[..., Any]) -> bool:
        """Whether ``handler`` is a coroutine function, remembered for the current handler."""
        if handler is not self._message_handler:
            self._message_handler = handler
            self._message_is_async = inspect.iscoroutinefunction(handler)
        return self._message_is_async

    async def _on_message(self, sid: str, data: Any) -> None:
        handler = self.handlers.get("message")
        if handler is None:
            return
        if type(data) is str and data and data[0] in JSON_START:
            data = maybe_json(data)
        if self.async_handlers and self._is_async_message_handler(handler):
            rt = self._sessions.get(sid)
            chain = self._start_async_message(handler, sid, data, rt.chain if rt is not None else None)
            if rt is not None:
                rt.chain = chain
        else:
            await self._call_message(handler, sid, data)

    _message_failed_callback: Callable[[str], None] | None = None  # made on first use

    def _start_async_message(self, handler: Callable[..., Any], sid: str, data: Any, chain: Any) -> Any:
        """Run a coroutine message handler concurrently (``async_handlers``); returns the new chain.

        The handler's own coroutine is what the backend runs, with nothing
        wrapped around it: a message in flight keeps alive only what the
        handler itself does (and, once it waits, its task).
        """
        try:
            coro = handler(sid, data)
        except Exception:  # e.g. a handler taking other arguments
            self._handler_failed("message", sid)
            return chain
        failed = self._message_failed_callback
        if failed is None:
            failed = self._message_failed_callback = self._message_failed
        if type(coro) is not CoroutineType:  # an awaitable of another kind, or a plain value
            coro = self._await_message(coro, sid)
        return self._backend.spawn_eager(coro, chain, failed, sid)  # type: ignore[union-attr]

    def _message_failed(self, sid: str) -> None:
        self._handler_failed("message", sid)

    async def _await_message(self, result: Any, sid: str) -> None:
        if inspect.isawaitable(result):
            await result

    async def _call_message(self, handler: Callable[..., Any], sid: str, data: Any) -> None:
        try:
            result = handler(sid, data)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._handler_failed("message", sid)

    def _handler_failed(self, where: str, sid: str) -> None:
        """Log the handler exception being handled, with the sid and the client's address.

        At most ``_ERROR_LOG_BURST`` lines per cause (handler, exception type, the
        line that raised it) and ``_ERROR_LOG_INTERVAL``: a handler failing for
        every message does not flood the log, and a few sessions failing the same
        way are each named; the next line logged for that cause says how many
        were left out.
        """
        exc = sys.exc_info()[1]
        cause = _cause(where, exc)
        now = self._clock()
        seen = self._handler_errors
        record = seen.get(cause)  # [window start, lines logged in it, lines left out]
        if record is not None and now - record[0] < _ERROR_LOG_INTERVAL:
            if record[1] >= _ERROR_LOG_BURST:
                record[2] += 1
                return
            record[1] += 1
            left_out = 0
        else:
            left_out = record[2] if record is not None else 0
            if record is None and len(seen) >= _ERROR_CAUSES_KEPT:
                del seen[next(iter(seen))]
            seen[cause] = [now, 1, 0]
        rt = self._sessions.get(sid)
        client = rt.client if rt is not None else None
        address = f"{client[0]}:{client[1]}" if client else "unknown"
        more = ""
        if left_out:
            more = f" ({left_out} more like it not logged in the last {_ERROR_LOG_INTERVAL:.0f} s)"
        self.logger.exception("sid %s (client %s): %s handler error%s", sid, address, where, more)

    async def _on_upgraded(self, sid: str) -> None:
        """Session ``sid`` completed its upgrade: the ``upgrade`` handler, like a message handler."""
        handler = self.handlers.get("upgrade")
        if handler is None:
            return
        if self.async_handlers:
            rt = self._sessions.get(sid)
            chain = self._backend.spawn_eager(  # type: ignore[union-attr]
                self._call_upgrade(handler, sid), rt.chain if rt is not None else None
            )
            if rt is not None:
                rt.chain = chain
        else:
            await self._call_upgrade(handler, sid)

    async def _call_upgrade(self, handler: Callable[..., Any], sid: str) -> None:
        try:
            rt = self._sessions.get(sid)
            result = handler(sid, rt.transport if rt is not None else "websocket")
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("sid %s: upgrade handler error", sid)

    async def _on_closed(self, sid: str, why: str) -> None:
        self.logger.info("sid %s: closed (%s)", sid, why)
        rt = self._sessions.get(sid)
        handler = self.handlers.get("disconnect")
        try:
            if handler is None:
                return
            chain = rt.chain if rt is not None else None
            if chain is not None and not chain.is_set():
                await chain.wait()  # message handlers that arrived before the close start first
            try:
                if self._disconnect_takes_reason:
                    result = handler(sid, why)
                else:
                    result = handler(sid)
                if type(result) is CoroutineType or (result is not None and inspect.isawaitable(result)):
                    await result
            except Exception:
                self._handler_failed("disconnect", sid)
        finally:
            # (the session stays readable from its own disconnect handler, as in python-engineio)
            if self._sessions.get(sid) is rt:
                self._sessions.pop(sid, None)


def _cause(where: str, exc: BaseException | None) -> tuple[Any, ...]:
    """What makes two handler errors the same: the handler, the exception type, where it was raised."""
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return (where, type(exc), None, 0)
    return (where, type(exc), tb.tb_frame.f_code.co_filename, tb.tb_lineno)


def accepts_args(fn: Callable[..., Any], n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments (True if unknowable)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(*range(n))
    except TypeError:
        return False
    return True


def maybe_json(text: str) -> Any:
    """python-engineio's rule: text that parses as JSON (and does not start with a digit) arrives decoded."""
    try:
        return _json.loads(text)
    except ValueError:
        return text


def encode_data(data: Any) -> str | bytes:
    """What ``send()`` sends for data that is not ``str`` or ``bytes``: JSON for a dict or list."""
    if isinstance(data, (dict, list)):
        return _json.dumps(data, separators=(",", ":"))  # type: ignore[no-any-return]
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return str(data)
