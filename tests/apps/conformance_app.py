"""ASGI app expected by the engine.io-protocol test suite.

Settings: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6 bytes, CORS open
to every origin, and every message (text or binary) is echoed back to its sender.

The implementation is chosen with the environment variable ``EIO_IMPL``:
``ours`` (default) imports ``engineio_asgi``; ``python-engineio`` imports ``engineio``.
Both expose the same API (``AsyncServer`` / ``ASGIApp``).
"""

import os

IMPL = os.environ.get("EIO_IMPL", "ours")

if IMPL == "ours":
    import engineio_asgi as eio_module
elif IMPL == "python-engineio":
    import engineio as eio_module
else:
    raise RuntimeError(f"EIO_IMPL must be 'ours' or 'python-engineio', not {IMPL!r}")

PING_INTERVAL = 0.3  # seconds
PING_TIMEOUT = 0.2  # seconds
MAX_PAYLOAD = 1_000_000  # bytes

eio = eio_module.AsyncServer(
    async_mode="asgi",
    ping_interval=PING_INTERVAL,
    ping_timeout=PING_TIMEOUT,
    max_http_buffer_size=MAX_PAYLOAD,
    cors_allowed_origins="*",
)


@eio.on("message")
async def _echo(sid, data):
    await eio.send(sid, data)


app = eio_module.ASGIApp(eio)
