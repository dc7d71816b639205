"""The echo server on trio, served by hypercorn's trio worker.

Run it from the repository root::

    .venv/bin/hypercorn --worker-class trio --bind 127.0.0.1:8000 examples/trio/app.py:app

or ``.venv/bin/python examples/trio/app.py``, which starts the same thing through
hypercorn's Python API (``hypercorn.trio.serve``) on port 8000, or on the port
the ``PORT`` environment variable names. Nothing in the application
names an event loop: ``engineio_asgi`` runs on anyio, so the handlers, the
heartbeat timer and ``start_background_task`` all run on trio here. Every
message goes back to its sender; the text ``close-me`` closes the session, and
``which-loop`` is answered with the name of the running async library.
"""

from __future__ import annotations

import sniffio

import engineio_asgi

eio = engineio_asgi.AsyncServer(cors_allowed_origins="*")


@eio.on("message")
async def message(sid: str, data: object) -> None:
    if data == "close-me":
        await eio.disconnect(sid)
    elif data == "which-loop":
        await eio.send(sid, sniffio.current_async_library())
    else:
        await eio.send(sid, data)


app = engineio_asgi.ASGIApp(eio)

if __name__ == "__main__":
    import os

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{int(os.environ.get('PORT', '8000'))}"]
    trio.run(serve, app, config)
