"""The app most integration tests drive: echo plus commands, and a control endpoint.

Settings come from the environment so one module serves every scenario:
EIO_PING_INTERVAL / EIO_PING_TIMEOUT (seconds), EIO_ASYNC_HANDLERS (0/1),
EIO_MAX_SIZE (bytes), EIO_TRANSPORTS (comma list), EIO_CORS ('*', 'none', or a comma list).

Control endpoint (plain HTTP, outside /engine.io/): GET /control/events returns
what the server saw (connects, disconnects with reasons, handler errors).
"""

from __future__ import annotations

import json
import os

import engineio_asgi

env = os.environ.get
cors_setting = env("EIO_CORS", "*")
if cors_setting == "none":
    cors: object = None
elif cors_setting == "*":
    cors = "*"
elif cors_setting == "[]":
    cors = []
else:
    cors = cors_setting.split(",")

eio = engineio_asgi.AsyncServer(
    ping_interval=float(env("EIO_PING_INTERVAL", "25")),
    ping_timeout=float(env("EIO_PING_TIMEOUT", "20")),
    max_http_buffer_size=int(env("EIO_MAX_SIZE", "1000000")),
    async_handlers=env("EIO_ASYNC_HANDLERS", "1") == "1",
    transports=env("EIO_TRANSPORTS", "polling,websocket").split(","),
    cors_allowed_origins=cors,
    cookie=env("EIO_COOKIE") or None,
)

seen: dict[str, list] = {"connects": [], "disconnects": [], "errors": []}


@eio.on("connect")
async def connect(sid, environ):
    query = environ.get("QUERY_STRING", "")
    if "reject=1" in query:
        return False
    if "refuse=1" in query:
        raise engineio_asgi.exceptions.ConnectionRefusedError({"why": "refused by test"})
    async with eio.session(sid) as session:
        session["remote"] = environ["REMOTE_ADDR"]
        session["scheme"] = environ["wsgi.url_scheme"]
    seen["connects"].append(sid)


@eio.on("message")
async def message(sid, data):
    if data == "close-me":
        await eio.disconnect(sid)
    elif data == "close-all":
        await eio.disconnect()
    elif data == "whoami":
        session = await eio.get_session(sid)
        await eio.send(sid, {"sid": sid, "transport": eio.transport(sid), **session})
    elif data == "boom":
        raise RuntimeError("handler failure requested by the test")
    else:
        await eio.send(sid, data)


@eio.on("disconnect")
def disconnect(sid, reason):
    seen["disconnects"].append([sid, reason])


async def control(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/control/events":
        body = json.dumps({**seen, "open": len(eio._sessions)}).encode()
        status = 200
    elif scope["path"] == "/control/shutdown":
        await eio.shutdown()
        body, status = b"done", 200
    else:
        body, status = b"not found", 404
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


app = engineio_asgi.ASGIApp(eio, other_asgi_app=control)
