"""The server hooks named as in Node's engine.io: ``allow_request``, ``connection_error``,
``initial_headers`` and ``headers``; and the log of refused requests.

Nothing here runs unless the application registered the hook: the environ a hook gets
is built only then.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

from engineio_sansio import ErrorCode, Event, Headers, Request, RequestRefused, asks_for_session

from ._state import Receive, RuntimeState, Scope, Send
from .environ import build_environ, request_from_scope
from .exceptions import ConnectionRefusedError

__all__ = ["REFUSAL_LOG_INTERVAL", "HooksMixin", "RefusedRequest"]

REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two log lines about refused requests of the same cause."""
_CONTEXT_LOG_CHARS = 300  # a client's values in the context are cut to this in a log line
# headers the ASGI server or the protocol owns: a hook may not add them
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "upgrade"})
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class RefusedRequest:
    """What a ``connection_error`` handler gets: a request the server refused, and why.

    ``code`` and ``message`` are the Engine.IO error code and its fixed text (as in
    Node's engine.io: 0 ``Transport unknown``, 1 ``Session ID unknown``, 2 ``Bad
    handshake method``, 3 ``Bad request``, 4 ``Forbidden``, 5 ``Unsupported protocol
    version``); ``context`` the facts, such as ``{"sid": ...}``; ``environ`` the request's
    WSGI-style environ, as the ``connect`` handler gets it.
    """

    __slots__ = ("code", "message", "context", "environ")

    def __init__(self, code: int, message: str, context: dict[str, Any], environ: dict[str, Any]) -> None:
        self.code = code
        self.message = message
        self.context = context
        self.environ = environ

    def __repr__(self) -> str:
        return f"RefusedRequest(code={self.code}, message={self.message!r}, context={self.context!r})"


class HooksMixin(RuntimeState):
    """Asking ``allow_request``, reporting refusals, and the response header hooks."""

    async def _receive_asked(
        self, request: Request, scope: Scope, receive: Receive, send: Send, websocket: bool
    ) -> tuple[int, Sequence[Event]]:
        """Hand a request to the core, asking ``allow_request`` first if it opens or upgrades a session."""
        refuse = None
        if asks_for_session(request, websocket):
            refuse = await self._ask_allow_request(build_environ(scope, receive, send))
        return self._core.receive_request(request, self._clock(), websocket=websocket, refuse=refuse)

    async def _ask_allow_request(self, environ: dict[str, Any]) -> str | None:
        """``None`` if the application allows the request, else the message of its refusal."""
        try:
            result = self._allow_request(environ)  # type: ignore[misc]
            if inspect.isawaitable(result):
                result = await result
        except ConnectionRefusedError as exc:
            return _message(exc.error_args)
        except Exception:
            self.logger.exception("allow_request raised: the request is refused")
            return ""
        if result is None or result is True:
            return None
        return result if isinstance(result, str) else ""

    # --- refusals ------------------------------------------------------------

    def _refused(self, ev: RequestRefused) -> None:
        """The core refused a request: log it, and tell the ``connection_error`` handler."""
        pending = self._http.get(ev.request_id)
        conn = None if pending is not None else self._ws.get(ev.request_id)
        if pending is not None:
            scope, receive, send = pending.scope, pending.receive, pending.send
        elif conn is not None:
            scope, receive, send = conn.scope, conn.receive, conn.send
        else:
            return  # (the runtime serves every request it hands to the core: not reached)
        self._log_refusal(ev, scope)
        handler = self.handlers.get("connection_error")
        if handler is None:
            return
        error = RefusedRequest(
            int(ev.code), ev.message, dict(ev.context), build_environ(scope, receive, send)
        )
        try:
            result = handler(error)
        except Exception:
            self.logger.exception("connection_error handler error")
            return
        if inspect.isawaitable(result):
            self._backend.spawn(self._await_hook, result, "connection_error")  # type: ignore[union-attr]

    async def _await_hook(self, result: Any, name: str) -> None:
        try:
            await result
        except Exception:
            self.logger.exception("%s handler error", name)

    def _log_refusal(self, ev: RequestRefused, scope: Scope) -> None:
        """One line per cause and interval, with how many like it were not logged meanwhile."""
        context = ev.context
        name = context.get("name")
        if name == "ORIGIN_NOT_ALLOWED":
            self._origin_refused(scope)  # logged per origin, with what is allowed
            return
        cause = (int(ev.code), name)
        now = self._clock()
        seen = self._refusal_log.get(cause)
        if seen is not None and now - seen[0] < REFUSAL_LOG_INTERVAL:
            seen[1] += 1
            return
        suppressed = seen[1] if seen is not None else 0
        self._refusal_log[cause] = [now, 0]
        client = scope.get("client") or ("?", "?")
        sid = context.get("sid") or request_from_scope(scope).query.get("sid")
        detail = repr(dict(context))
        if len(detail) > _CONTEXT_LOG_CHARS:
            detail = detail[:_CONTEXT_LOG_CHARS] + "...}"
        more = f"; {suppressed} more like it since the last line were not logged" if suppressed else ""
        # (a logger given as an option need not have log(): only the level methods)
        write = self.logger.info if ev.code == ErrorCode.FORBIDDEN else self.logger.warning
        write(
            "refused request from %s:%s%s: code %d (%s) %s%s",
            client[0],
            client[1],
            f" for sid {str(sid)[:100]}" if sid else "",
            int(ev.code),
            ev.message,
            detail,
            more,
        )

    # --- response headers ------------------------------------------------------

    async def _hook_headers(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        """Let ``initial_headers`` (a handshake's answer) and ``headers`` add to a response's headers."""
        handlers = self.handlers
        added: dict[str, Any] = {}
        environ = build_environ(scope, receive, send)
        query = request_from_scope(scope).query
        if "sid" not in query and scope.get("method", "GET") == "GET":
            await self._call_header_hook(handlers.get("initial_headers"), "initial_headers", added, environ)
        await self._call_header_hook(handlers.get("headers"), "headers", added, environ)
        for name, value in added.items():
            values = value if isinstance(value, (list, tuple)) else (value,)
            for one in values:
                problem = _header_problem(name, one)
                if problem is not None:
                    self.logger.error("header %r from a headers hook is not sent: %s", name, problem)
                    continue
                headers.append((name.lower().encode("latin-1"), str(one).encode("latin-1")))

    async def _call_header_hook(
        self, handler: Any, name: str, added: dict[str, Any], environ: dict[str, Any]
    ) -> None:
        if handler is None:
            return
        try:
            result = handler(added, environ)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("%s handler error", name)


def _message(args: Any) -> str:
    """The 403 message of ``ConnectionRefusedError(*args)``: its text, or its value as JSON."""
    if args is None:
        return ""
    if isinstance(args, str):
        return args
    try:
        return json.dumps(args)
    except (TypeError, ValueError):
        return str(args)


def _header_problem(name: Any, value: Any) -> str | None:
    """Why a header a hook added cannot be sent, or ``None``."""
    if not isinstance(name, str) or not name or not set(name) <= _TCHAR:
        return "its name is not an HTTP header name"
    if name.lower() in _RESERVED_HEADERS:
        return "the server sets this header itself"
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return f"its value must be a str (or a list of str), got {value!r}"
    text = str(value)
    if any(c in text for c in "\r\n\0"):
        return "its value holds a line break or NUL"
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "its value is not latin-1 text"
    return None
