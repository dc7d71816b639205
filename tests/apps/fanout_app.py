"""python-socketio on engineio_asgi, for the fan-out tests on real servers (tests/test_fanout_servers.py).

Every client joins the room ``all`` when it connects. The event ``fanout``
``{"n": n, "size": size}`` makes the server emit ``news`` ``[n, "x" * size]`` to
the room. ``FANOUT_PING_INTERVAL`` (seconds) sets the Engine.IO heartbeat.
Control endpoints (plain HTTP):

* ``GET /control/state``: ``{"queued_bytes", "tasks", "emits_running",
  "disconnects"}``: the Engine.IO server's queued message bytes (a slow
  client's backlog), the asyncio tasks created since the first request (a task
  factory counts them), the emits not returned yet, and the disconnects seen
  (``[sid, reason]``).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from engineio_asgi.socketio import ASGIApp, AsyncServer

ROOM = "all"

# (a queue larger than the default, so that the backlog test reaches the socket
# buffers' end well before the queue closes the session)
sio = AsyncServer(
    cors_allowed_origins="*",
    max_queued_bytes=64 * 1024 * 1024,
    ping_interval=float(os.environ.get("FANOUT_PING_INTERVAL", "25")),
)
state: dict[str, Any] = {"tasks": 0, "emits_running": 0, "disconnects": []}


@sio.on("connect")
async def connect(sid: str, environ: Any) -> None:
    await sio.enter_room(sid, ROOM)


@sio.on("disconnect")
async def disconnect(sid: str, reason: Any = None) -> None:
    state["disconnects"].append([sid, str(reason)])


@sio.on("fanout")
async def fanout(sid: str, data: Any) -> None:
    state["emits_running"] += 1
    try:
        await sio.emit("news", [data["n"], "x" * data["size"]], to=ROOM)
    finally:
        state["emits_running"] -= 1


_counting = False


def _count_tasks() -> None:
    global _counting
    if _counting:
        return
    _counting = True
    loop = asyncio.get_running_loop()

    def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        state["tasks"] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)


sio_app = ASGIApp(sio)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        _count_tasks()
    if scope["type"] == "http" and scope["path"] == "/control/state":
        body = json.dumps(
            {
                "queued_bytes": sio.eio.stats().queued_bytes,
                "tasks": state["tasks"],
                "emits_running": state["emits_running"],
                "disconnects": state["disconnects"],
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await sio_app(scope, receive, send)
