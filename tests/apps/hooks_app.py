"""Two Engine.IO servers with every server hook registered, for tests/test_hooks.py.

``/engine.io/`` is served by a server whose ``allow_request`` and hooks are plain
functions, ``/async/`` by one whose are coroutine functions. Both read the request's
query: ``deny=1`` makes ``allow_request`` refuse (``False``), ``deny=raise`` makes it
raise ``ConnectionRefusedError("no entry")``, and ``deny_upgrade=1`` refuses only
upgrades (a websocket with a ``sid``). Browser origins other than
``https://good.example`` are refused; POST bodies and websocket messages are limited to
``MAX_SIZE`` bytes.

``GET /control/events`` returns what each server saw, under ``"sync"`` and ``"async"``:
the queries ``allow_request`` was asked about, connects, the refusals the
``connection_error`` handler got, and upgrades.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

import engineio_asgi
from engineio_asgi.exceptions import ConnectionRefusedError

MAX_SIZE = 2000
COMMON = {"cors_allowed_origins": ["https://good.example"], "max_http_buffer_size": MAX_SIZE}


def _record() -> dict[str, list[Any]]:
    return {"asked": [], "connects": [], "errors": [], "upgrades": []}


def _decide(seen: dict[str, list[Any]], environ: dict[str, Any]) -> bool:
    query = environ["QUERY_STRING"]
    seen["asked"].append([environ["REQUEST_METHOD"], query])
    if "deny=raise" in query:
        raise ConnectionRefusedError("no entry")
    if "deny=1" in query:
        return False
    return not ("deny_upgrade=1" in query and "sid=" in query)


def _error(seen: dict[str, list[Any]], error: Any) -> None:
    seen["errors"].append(
        {
            "code": error.code,
            "message": error.message,
            "context": error.context,
            "remote": error.environ["REMOTE_ADDR"],
            "query": error.environ["QUERY_STRING"],
        }
    )


def _initial_headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
    headers["X-Initial"] = "yes"


def _headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
    headers["X-Every"] = environ["REQUEST_METHOD"]
    headers["Set-Cookie"] = ["a=1", "b=2"]


# --- plain functions -----------------------------------------------------------------

seen_sync = _record()
eio = engineio_asgi.AsyncServer(allow_request=lambda environ: _decide(seen_sync, environ), **COMMON)
eio.on("connection_error", lambda error: _error(seen_sync, error))
eio.on("initial_headers", _initial_headers)
eio.on("headers", _headers)
eio.on("upgrade", lambda sid, transport: seen_sync["upgrades"].append([sid, transport]))


@eio.on("connect")
def connect(sid: str, environ: dict[str, Any]) -> None:
    seen_sync["connects"].append(sid)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    await eio.send(sid, data)


# --- coroutine functions ---------------------------------------------------------------

seen_async = _record()


async def allow_async(environ: dict[str, Any]) -> bool:
    await anyio.sleep(0.01)
    return _decide(seen_async, environ)


eio_async = engineio_asgi.AsyncServer(allow_request=allow_async, **COMMON)


@eio_async.on("connection_error")
async def connection_error(error: Any) -> None:
    await anyio.sleep(0)
    _error(seen_async, error)


@eio_async.on("initial_headers")
async def initial_headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
    await anyio.sleep(0)
    _initial_headers(headers, environ)


@eio_async.on("headers")
async def headers(headers: dict[str, Any], environ: dict[str, Any]) -> None:
    await anyio.sleep(0)
    _headers(headers, environ)


@eio_async.on("upgrade")
async def upgrade(sid: str, transport: str) -> None:
    await anyio.sleep(0)
    seen_async["upgrades"].append([sid, transport])


@eio_async.on("connect")
async def connect_async(sid: str, environ: dict[str, Any]) -> None:
    seen_async["connects"].append(sid)


@eio_async.on("message")
async def message_async(sid: str, data: Any) -> None:
    await eio_async.send(sid, data)


async def control(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/control/events":
        body, status = json.dumps({"sync": seen_sync, "async": seen_async}).encode(), 200
    else:
        body, status = b"not found", 404
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


app_async = engineio_asgi.ASGIApp(eio_async, other_asgi_app=control, engineio_path="async")
app = engineio_asgi.ASGIApp(eio, other_asgi_app=app_async)
