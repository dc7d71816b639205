"""Requests from ASGI scopes: the core's :class:`Request`, and a WSGI-style environ for handlers."""

from __future__ import annotations

from typing import Any, Callable, MutableMapping

from engineio_sansio import Request, parse_query

__all__ = ["build_environ", "request_from_scope"]

Scope = MutableMapping[str, Any]


def _headers(scope: Scope) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key in result:
            result[key] = result[key] + ", " + text
        else:
            result[key] = text
    return result


def request_from_scope(scope: Scope) -> Request:
    """The core's view of an ASGI http or websocket scope."""
    return Request(
        scope.get("method", "GET"),
        parse_query(scope.get("query_string", b"")),
        _headers(scope),
        scope.get("scheme", "http"),
        scope,
    )


def build_environ(
    scope: Scope, receive: Callable[..., Any] | None = None, send: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """A WSGI-style environ, as python-engineio handlers expect, from real scope values.

    ``REMOTE_ADDR``/``REMOTE_PORT`` come from the scope's client,
    ``wsgi.url_scheme`` from its scheme, ``SCRIPT_NAME`` from its root path.
    """
    scheme = scope.get("scheme", "http")
    if scheme == "ws":
        scheme = "http"
    elif scheme == "wss":
        scheme = "https"
    client = scope.get("client") or (None, None)
    server = scope.get("server") or (None, None)
    query = scope.get("query_string", b"")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope.get("path", "/"),
        "QUERY_STRING": query.decode("latin-1") if isinstance(query, bytes) else query,
        "RAW_URI": scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "/"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "REMOTE_ADDR": client[0] or "",
        "REMOTE_PORT": str(client[1]) if client[1] is not None else "",
        "SERVER_NAME": server[0] or "",
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "wsgi.url_scheme": scheme,
        "asgi.scope": scope,
        "asgi.receive": receive,
        "asgi.send": send,
    }
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
            continue
        if key == "CONTENT_LENGTH":
            environ["CONTENT_LENGTH"] = text
            continue
        key = "HTTP_" + key
        environ[key] = environ[key] + "," + text if key in environ else text
    return environ
