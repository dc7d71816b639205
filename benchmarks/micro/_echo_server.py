"""The echo server both micro benchmarks build: python-engineio's API, any module that has it."""

from __future__ import annotations


def make_server(module, async_handlers: bool):
    """An ASGI app whose message handler sends the data back to its sender."""
    eio = module.AsyncServer(async_mode="asgi", async_handlers=async_handlers)

    @eio.on("message")
    async def message(sid, data):
        await eio.send(sid, data)

    return module.ASGIApp(eio)
