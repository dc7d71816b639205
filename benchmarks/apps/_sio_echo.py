"""The Socket.IO app shared by sio_ours.py and sio_pyengineio.py: emit-echo and fan-out.

The same python-socketio application on two Engine.IO layers:

- emit-echo (``benchmarks/sio_load.js``): the client emits ``echo`` with a
  payload and the server emits ``echo`` back to that client
  (``AsyncServer.emit(..., to=sid)``, python-socketio's normal path: packet
  encoding, the client manager, one ``send_packet`` per recipient);
- fan-out (``benchmarks/sio_fanout.js``): every client joins the room ``all``
  when it connects; a ``fanout`` event makes the server emit ``news`` with the
  same data to the room (``AsyncServer.emit(..., to="all")``).

python-socketio's own ``async_handlers=True`` (its default) is kept.
"""

from __future__ import annotations

from typing import Any

ROOM = "all"


def make_app(server_class: Any, asgi_app_class: Any) -> tuple[Any, Any]:
    sio = server_class(async_mode="asgi", cors_allowed_origins="*")

    @sio.on("connect")
    async def connect(sid: str, environ: Any) -> None:
        await sio.enter_room(sid, ROOM)

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> None:
        await sio.emit("echo", data, to=sid)

    @sio.on("fanout")
    async def fanout(sid: str, data: Any) -> None:
        await sio.emit("news", data, to=ROOM)

    return sio, asgi_app_class(sio)
