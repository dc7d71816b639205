"""The demo: a chat room over Engine.IO, served by uvicorn with no configuration.

Run from the repository root:  .venv/bin/python examples/demo/app.py
then open http://127.0.0.1:5000/ in two browser tabs. PORT and HOST change where it
listens; CORS_ORIGINS (comma-separated origins) lets pages served elsewhere connect.

Every message a client sends is broadcast to every connected client; the
page shows which transport (polling, then websocket after the upgrade) it uses.
The browser client is the official engine.io-client bundle from node_modules
(installed by `npm ci`), served as a static file: no CDN. The page reconnects by
itself after the server restarts.

With prometheus-client installed (``pip install 'engineio-asgi[prometheus]'``) the
server's metrics are served at http://127.0.0.1:5000/metrics for a Prometheus
server to scrape (see docs/operations.md).
"""

from __future__ import annotations

import json
import os
import sys

import engineio_asgi

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "node_modules", "engine.io-client", "dist", "engine.io.min.js")

# Pages from other origins are refused unless CORS_ORIGINS lists them (comma-separated).
CORS_ORIGINS = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
eio = engineio_asgi.AsyncServer(async_mode="asgi", cors_allowed_origins=CORS_ORIGINS or None)
names: dict[str, str] = {}


async def broadcast(payload: dict) -> None:
    text = json.dumps(payload)
    for sid in list(names):
        await eio.send(sid, text)


@eio.on("connect")
async def connect(sid: str, environ: dict) -> None:
    names[sid] = f"guest-{sid[:4]}"
    await broadcast({"system": f"{names[sid]} joined", "online": len(names)})


@eio.on("message")
async def message(sid: str, data: object) -> None:
    if isinstance(data, bytes):
        await eio.send(sid, data)  # binary: echoed to the sender only
        return
    text = data if isinstance(data, str) else json.dumps(data)
    await broadcast({"from": names.get(sid, sid), "text": text, "transport": eio.transport(sid)})


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    name = names.pop(sid, sid)
    await broadcast({"system": f"{name} left ({reason})", "online": len(names)})


try:
    from engineio_asgi.metrics import metrics_app
except ImportError:  # prometheus-client is an optional extra: no /metrics without it
    metrics = None
else:
    metrics = metrics_app(eio)


async def other(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """``/metrics`` (Prometheus), and 404 for anything else."""
    if metrics is not None and scope["type"] == "http" and scope["path"] == "/metrics":
        await metrics(scope, receive, send)
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"not found"})


app = engineio_asgi.ASGIApp(
    eio,
    other_asgi_app=other,
    static_files={
        "/": os.path.join(HERE, "index.html"),
        "/engine.io.min.js": {"filename": BUNDLE, "content_type": "application/javascript"},
    },
)

if __name__ == "__main__":
    import uvicorn

    if not os.path.exists(BUNDLE):
        sys.exit("engine.io-client is missing: run `npm ci` in the repository root first")
    port = int(os.environ.get("PORT", "5000"))
    print(f"demo: open http://127.0.0.1:{port}/ in a browser", flush=True)
    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=port, log_level="warning")
