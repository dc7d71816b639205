"""The Socket.IO emit-echo app shared by sio_ours.py and sio_pyengineio.py.

The same python-socketio application on two Engine.IO layers: the client emits
``echo`` with a payload and the server emits ``echo`` back to that client
(``AsyncServer.emit(..., to=sid)``, python-socketio's normal path: packet
encoding, the client manager, one ``send_packet`` per recipient). python-socketio's
own ``async_handlers=True`` (its default) is kept.
"""

from __future__ import annotations

from typing import Any


def make_app(server_class: Any, asgi_app_class: Any) -> tuple[Any, Any]:
    sio = server_class(async_mode="asgi", cors_allowed_origins="*")

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> None:
        await sio.emit("echo", data, to=sid)

    return sio, asgi_app_class(sio)
