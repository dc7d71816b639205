"""The smallest useful Engine.IO server: every message goes back to its sender.

Run it from the repository root with any ASGI server, for example::

    .venv/bin/uvicorn examples.echo.app:app --host 127.0.0.1 --port 8000

or simply ``.venv/bin/python examples/echo/app.py`` (uvicorn on 127.0.0.1, port 8000
unless the ``PORT`` environment variable names another).
Text comes back as text, binary as binary; the text ``close-me`` makes the
server close the session instead.
"""

from __future__ import annotations

import engineio_asgi

eio = engineio_asgi.AsyncServer(cors_allowed_origins="*")


@eio.on("connect")
async def connect(sid: str, environ: dict) -> None:
    print(f"{sid} connected from {environ['REMOTE_ADDR']}", flush=True)


@eio.on("message")
async def message(sid: str, data: object) -> None:
    if data == "close-me":
        await eio.disconnect(sid)
    else:
        await eio.send(sid, data)


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    print(f"{sid} disconnected: {reason}", flush=True)


app = engineio_asgi.ASGIApp(eio)

if __name__ == "__main__":
    import os

    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
