"""The app of tests/test_sigterm.py: what a session goes through when its server is stopped.

Every event is sent at once, as one JSON line, to a TCP listener of the test
(``EIO_EVENT_PORT`` on 127.0.0.1), so the test waits on events rather than
polling, and keeps what was said after the process is gone:

* ``{"event": "connect", "sid"}``
* ``{"event": "label", "sid", "name", "transport"}`` -- a client sent ``label:<name>``
  (it is echoed back, so the client knows the server has it)
* ``{"event": "poll", "sid"}`` -- a long-polling GET of session ``sid`` reached the app
* ``{"event": "disconnect", "sid", "reason"}`` -- the disconnect handler ran
* ``{"event": "ws-end", "code"}`` / ``{"event": "ws-end", "cancelled": true}`` -- how the
  ASGI server ended an Engine.IO websocket: the code of its ``websocket.disconnect``,
  or a cancellation of the connection's task
* ``{"event": "lifespan-shutdown"}`` -- the ASGI server sent ``lifespan.shutdown``
  (logged before the Engine.IO server is shut down)

Settings: ``EIO_PING_INTERVAL`` / ``EIO_PING_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any
from urllib.parse import parse_qs

import anyio

import engineio_asgi

env = os.environ.get

eio = engineio_asgi.AsyncServer(
    ping_interval=float(env("EIO_PING_INTERVAL", "25")),
    ping_timeout=float(env("EIO_PING_TIMEOUT", "20")),
)

_channel: socket.socket | None = None
_lock = threading.Lock()


def emit(**event: Any) -> None:
    """Send one event line to the test (a blocking write of a few bytes to a local socket)."""
    global _channel
    event["pid"] = os.getpid()
    line = (json.dumps(event) + "\n").encode()
    with _lock:
        if _channel is None:
            _channel = socket.create_connection(("127.0.0.1", int(os.environ["EIO_EVENT_PORT"])), timeout=5)
        _channel.sendall(line)


@eio.on("connect")
def connect(sid: str, environ: dict[str, Any]) -> None:
    emit(event="connect", sid=sid)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    if isinstance(data, str) and data.startswith("label:"):
        emit(event="label", sid=sid, name=data[6:], transport=eio.transport(sid))
    await eio.send(sid, data)


@eio.on("disconnect")
def disconnect(sid: str, reason: str) -> None:
    emit(event="disconnect", sid=sid, reason=reason)


engineio_app = engineio_asgi.ASGIApp(eio)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Engine.IO, with a look at the messages that end a websocket and at lifespan."""
    kind = scope["type"]
    if kind == "lifespan":

        async def receive_lifespan() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                emit(event="lifespan-shutdown")
            return message

        await engineio_app(scope, receive_lifespan, send)
        return
    if kind == "websocket":

        async def receive_ws() -> Any:
            try:
                message = await receive()
            except anyio.get_cancelled_exc_class():
                emit(event="ws-end", cancelled=True)
                raise
            if message["type"] == "websocket.disconnect":
                emit(event="ws-end", code=message.get("code"))
            return message

        await engineio_app(scope, receive_ws, send)
        return
    if kind == "http" and scope["method"] == "GET":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("transport") == ["polling"] and "sid" in query:
            emit(event="poll", sid=query["sid"][0])
    await engineio_app(scope, receive, send)
