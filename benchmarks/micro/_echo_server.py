"""What the micro benchmarks share: the echo server they build (python-engineio's API, any
module that has it), and the scope of a websocket connection made in process."""

from __future__ import annotations


def make_server(module, async_handlers: bool):
    """An ASGI app whose message handler sends the data back to its sender."""
    eio = module.AsyncServer(async_mode="asgi", async_handlers=async_handlers)

    @eio.on("message")
    async def message(sid, data):
        await eio.send(sid, data)

    return module.ASGIApp(eio)


def websocket_scope(path: str) -> dict:
    """An ASGI websocket scope for an Engine.IO v4 websocket at ``path``, as a server makes one."""
    return {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"EIO=4&transport=websocket",
        "headers": [(b"host", b"x"), (b"connection", b"Upgrade"), (b"upgrade", b"websocket")],
        "scheme": "ws",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "asgi": {"version": "3.0"},
    }
