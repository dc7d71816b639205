"""The demo over WebTransport: HTTP on PORT (TCP), HTTP/3 on the same port number (UDP).

Run from the repository root:  .venv/bin/python examples/webtransport/app.py
then open http://127.0.0.1:5000/ in Chromium or Chrome (Firefox: see the docs).
``?upgrade=1`` connects over long polling first, then upgrades to WebTransport.

At start it makes a development certificate (self-signed ECDSA, valid ten days) and
gives its SHA-256 to the page, which passes it to the browser as
``serverCertificateHashes``: no certificate authority needed. The page uses the
official engine.io-client bundle with ``transports: ["webtransport"]``, shows the
transport's name and echoes what is typed (text and binary). ``/log.json`` lists
what the server saw (connections with their transport, disconnections with their
reason). PING_INTERVAL and PING_TIMEOUT (seconds) shorten the heartbeat;
MAX_CLIENTS caps the sessions open at once (the connect handler refuses the rest).
Typing ``disconnect me`` asks the server to end the session.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import engineio_asgi
from engineio_asgi.webtransport import WebTransportListener, make_dev_certificate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "node_modules", "engine.io-client", "dist", "engine.io.min.js")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "5000"))

eio = engineio_asgi.AsyncServer(
    transports=["polling", "websocket", "webtransport"],
    ping_interval=float(os.environ.get("PING_INTERVAL", "25")),
    ping_timeout=float(os.environ.get("PING_TIMEOUT", "20")),
    # The page is served over http://, WebTransport is https:// on the same port:
    # to the browser that is another origin, so the page's origin is listed.
    cors_allowed_origins=[f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"],
)
cert = make_dev_certificate()
listener = WebTransportListener(eio, host=HOST, port=PORT, certfile=cert.certfile, keyfile=cert.keyfile)
MAX_CLIENTS = int(os.environ.get("MAX_CLIENTS", "0"))  # 0: no cap
log: list[dict[str, Any]] = []
online: set[str] = set()


@eio.on("connect")
async def connect(sid: str, environ: dict[str, Any]) -> bool:
    # (engine.io-client sends no query string and no cookie with WebTransport: a
    # connect handler has the Origin header and the client's address to go by)
    refused = bool(MAX_CLIENTS) and len(online) >= MAX_CLIENTS
    log.append({"event": "connect", "sid": sid, "transport": eio.transport(sid), "refused": refused})
    if refused:
        return False
    online.add(sid)
    return True


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    if data == "disconnect me":
        await eio.disconnect(sid)
        return
    log.append({"event": "message", "sid": sid, "transport": eio.transport(sid)})
    await eio.send(sid, data)  # text and binary alike, back to the sender


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    online.discard(sid)
    log.append({"event": "disconnect", "sid": sid, "reason": reason})


async def extra(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/config.json`` (what the page needs to connect) and ``/log.json``; 404 otherwise."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/config.json":
        body = json.dumps({"port": PORT, "certificateHash": list(cert.sha256)}).encode()
    elif path == "/log.json":
        body = json.dumps(log).encode()
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"Not Found"})
        return
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = engineio_asgi.ASGIApp(
    eio,
    other_asgi_app=extra,
    static_files={
        "/": os.path.join(HERE, "index.html"),
        "/engine.io.min.js": {"filename": BUNDLE, "content_type": "application/javascript"},
    },
    on_startup=listener.start,
    on_shutdown=listener.stop,
)

if __name__ == "__main__":
    import uvicorn

    if not os.path.exists(BUNDLE):
        sys.exit("engine.io-client is missing: run `npm ci` in the repository root first")
    print(f"webtransport demo: open http://127.0.0.1:{PORT}/ (HTTP/3 on UDP port {PORT})", flush=True)
    uvicorn.run(app, host=HOST, port=PORT, log_level="warning")
