"""The server of benchmarks/webtransport/run.py: an echo on websocket and WebTransport.

uvicorn serves HTTP and websocket on PORT (TCP); the WebTransport listener serves HTTP/3
on the same port number (UDP), with a development certificate whose hash the page
gets from /config.json. The handler sends every message back, nothing else.
"""

from __future__ import annotations

import json
import os
from typing import Any

import engineio_asgi
from engineio_asgi.webtransport import WebTransportListener, make_dev_certificate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "node_modules", "engine.io-client", "dist", "engine.io.min.js")
PORT = int(os.environ["PORT"])

eio = engineio_asgi.AsyncServer(
    transports=["polling", "websocket", "webtransport"],
    cors_allowed_origins=[f"http://127.0.0.1:{PORT}"],
)
cert = make_dev_certificate()
listener = WebTransportListener(eio, port=PORT, certfile=cert.certfile, keyfile=cert.keyfile)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    await eio.send(sid, data)


async def config(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"port": PORT, "certificateHash": list(cert.sha256)}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = engineio_asgi.ASGIApp(
    eio,
    other_asgi_app=config,
    static_files={
        "/": {"filename": os.path.join(HERE, "page.html"), "content_type": "text/html"},
        "/engine.io.min.js": {"filename": BUNDLE, "content_type": "application/javascript"},
    },
    on_startup=listener.start,
    on_shutdown=listener.stop,
)
