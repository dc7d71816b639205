"""An echo server with ``allow_eio3=True`` that also serves tests/browser/v3.html and the
engine.io-client 3.x browser bundle, for tests/test_browser_v3.py.

Every message is echoed back as it came (text as text, binary as binary). A one-second
heartbeat lets the page see its pings answered within a short test.
"""

import os

import engineio_asgi

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(ROOT, "node_modules", "engine.io-client-v3", "engine.io.js")
PAGE = os.path.join(ROOT, "tests", "browser", "v3.html")

eio = engineio_asgi.AsyncServer(ping_interval=1, ping_timeout=1, allow_eio3=True)


@eio.on("message")
async def echo(sid, data):
    await eio.send(sid, data)


app = engineio_asgi.ASGIApp(
    eio,
    static_files={
        "/": PAGE,
        "/engine.io.js": {"filename": BUNDLE, "content_type": "application/javascript"},
    },
)
