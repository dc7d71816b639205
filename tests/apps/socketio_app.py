"""A python-socketio application on engineio_asgi, for the Socket.IO tests.

Settings come from the environment, so one module serves every scenario:

* ``SIO_NAME``: this process's name, reported by ``whoami`` and ``/control/server``
  (the scale-out test runs two processes, ``a`` and ``b``).
* ``SIO_REDIS_URL`` / ``SIO_CHANNEL``: use python-socketio's ``AsyncRedisManager``
  on that Redis server and channel (scale-out); unset: the in-process manager.
* ``SIO_PING_INTERVAL`` / ``SIO_PING_TIMEOUT``: Engine.IO heartbeat, seconds.
* ``SIO_ADMIN``: ``auth`` or ``open``: serve the Socket.IO admin UI's namespace
  (``sio.instrument()``) with the credentials ``ADMIN_AUTH``, or with none.
* ``SIO_VARIANT``: ``ours`` (default): :class:`engineio_asgi.socketio.AsyncServer`;
  ``raw``: python-socketio's own ``AsyncServer`` whose ``_engineio_server_class``
  is pointed at ``engineio_asgi.AsyncServer`` by hand, without the asyncio guard
  (the trio test uses it to show what python-socketio itself hits on trio).

Namespace ``/`` needs ``auth={"token": TOKEN}`` (else the connection is refused
with the message ``bad token``); ``/chat`` takes anyone; any other namespace is
refused by python-socketio. Events (each answers through the acknowledgement):

* ``echo`` *args: returns its arguments, binary included.
* ``whoami``: ``{sid, eio_sid, transport, user, server, rooms}``.
* ``join`` room / ``leave`` room: room membership; returns the rooms.
* ``broadcast`` {room, event, args, binary}: emits ``event`` to ``room`` (all when
  null) with ``args``; with ``binary: n`` the payload is :func:`binary_payload` (n).
* ``call_me`` data: the server ``call()``s the client (event ``ask``) and returns its answer.
* ``kick``: the server disconnects this client from the namespace.

Control endpoint (plain HTTP outside ``/socket.io/``): ``GET /control/events``
returns what the server saw (connects, refusals, disconnects with reasons,
errors); ``GET /control/server`` returns ``{"name": SIO_NAME}``;
``GET /control/emit?room=R&event=E&text=T`` emits from this process.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from typing import Any
from urllib.parse import parse_qs

import socketio

import engineio_asgi
from engineio_asgi.socketio import ASGIApp, AsyncServer

TOKEN = "s3cret"
env = os.environ.get
NAME = env("SIO_NAME", "solo")
VARIANT = env("SIO_VARIANT", "ours")


def binary_payload(n: int) -> list[Any]:
    """What ``broadcast`` with ``binary: n`` sends: two attachments plus text, all derived from n."""
    blob = bytes((i * 7 + n) % 256 for i in range(1000 + n))  # every byte value, 0x1e included
    return [{"n": n, "blob": blob, "text": f"binary #{n} é€𝄞"}, bytes([n % 256, 0, 255, 0x1E, 0x62])]


seen: dict[str, list[Any]] = {"connects": [], "refused": [], "disconnects": [], "errors": [], "asks": []}

manager = None
if env("SIO_REDIS_URL"):
    manager = socketio.AsyncRedisManager(env("SIO_REDIS_URL"), channel=env("SIO_CHANNEL", "socketio"))

options: dict[str, Any] = {
    "client_manager": manager,
    "ping_interval": float(env("SIO_PING_INTERVAL", "25")),
    "ping_timeout": float(env("SIO_PING_TIMEOUT", "20")),
    "cors_allowed_origins": "*",
}

if VARIANT == "raw":

    class RawServer(socketio.AsyncServer):  # type: ignore[misc]
        def _engineio_server_class(self) -> Any:
            return engineio_asgi.AsyncServer

    sio: Any = RawServer(**options)
else:
    sio = AsyncServer(**options)


ADMIN_AUTH = {"username": "admin", "password": "admin-s3cret"}
if env("SIO_ADMIN") == "auth":  # the Socket.IO admin UI's namespace, with credentials
    sio.instrument(auth=ADMIN_AUTH, server_stats_interval=0.3)
elif env("SIO_ADMIN") == "open":  # ... and without
    sio.instrument(auth=False, server_stats_interval=0.3)


def _record_error(where: str) -> None:
    seen["errors"].append({"where": where, "error": traceback.format_exc(limit=8)})


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
    if not isinstance(auth, dict) or auth.get("token") != TOKEN:
        seen["refused"].append({"sid": sid, "ns": "/", "auth": auth})
        raise socketio.exceptions.ConnectionRefusedError("bad token", {"expected": "token"})
    async with sio.session(sid) as session:
        session["user"] = auth.get("user", "anonymous")
    seen["connects"].append(
        {
            "sid": sid,
            "ns": "/",
            "user": auth.get("user"),
            "query": environ.get("QUERY_STRING", ""),
            "transport": sio.transport(sid),
        }
    )


@sio.event
async def disconnect(sid: str, reason: str) -> None:
    seen["disconnects"].append({"sid": sid, "ns": "/", "reason": reason})


@sio.event
async def echo(sid: str, *args: Any) -> Any:
    return args


@sio.event
async def whoami(sid: str) -> dict[str, Any]:
    session = await sio.get_session(sid)
    return {
        "sid": sid,
        "transport": sio.transport(sid),
        "user": session.get("user"),
        "server": NAME,
        "rooms": sorted(sio.rooms(sid)),
    }


@sio.event
async def join(sid: str, room: str) -> list[str]:
    await sio.enter_room(sid, room)
    seen.setdefault("joins", []).append({"sid": sid, "room": room})
    return sorted(sio.rooms(sid))


@sio.event
async def leave(sid: str, room: str) -> list[str]:
    await sio.leave_room(sid, room)
    return sorted(sio.rooms(sid))


@sio.event
async def broadcast(sid: str, spec: dict[str, Any]) -> str:
    try:
        if spec.get("binary") is not None:
            args: Any = tuple(binary_payload(int(spec["binary"])))
        else:
            args = tuple(spec.get("args") or ())
        await sio.emit(spec["event"], args, room=spec.get("room"), namespace=spec.get("ns", "/"))
    except Exception:
        _record_error("broadcast")
        raise
    return "sent"


@sio.event
async def call_me(sid: str, data: Any) -> Any:
    try:
        answer = await sio.call("ask", data, to=sid, timeout=5)
    except Exception:
        _record_error("call_me")
        raise
    seen["asks"].append({"sid": sid, "answer": answer})
    return {"client said": answer}


@sio.event
async def kick(sid: str) -> None:
    await sio.disconnect(sid)


@sio.on("connect", namespace="/chat")
async def chat_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
    seen["connects"].append(
        {"sid": sid, "ns": "/chat", "user": None, "transport": sio.transport(sid, namespace="/chat")}
    )


@sio.on("disconnect", namespace="/chat")
async def chat_disconnect(sid: str, reason: str) -> None:
    seen["disconnects"].append({"sid": sid, "ns": "/chat", "reason": reason})


@sio.on("shout", namespace="/chat")
async def chat_shout(sid: str, text: str) -> str:
    await sio.emit("shouted", {"from": sid, "text": text.upper()}, namespace="/chat")
    return text.upper()


async def control(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/control/...``: what the server saw, and emits on demand."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    status = 200
    if path == "/control/events":
        body: Any = seen
    elif path == "/control/server":
        body = {"name": NAME, "variant": VARIANT}
    elif path == "/control/emit":
        try:
            await sio.emit(query["event"], {"text": query.get("text"), "from": NAME}, room=query.get("room"))
            body = {"emitted": True}
        except Exception as exc:
            _record_error("control emit")
            status, body = 500, {"error": repr(exc)}
    else:
        status, body = 404, {"error": "not found"}
    payload = json.dumps(body, default=repr).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


logging.getLogger("socketio.server").setLevel(logging.ERROR)
app = ASGIApp(sio, other_asgi_app=control)
