"""Echo application used by the Node client tests.

Configuration (environment variables, read at import time):

``EIO_IMPL``
    ``ours`` (default) imports :mod:`engineio_asgi`; ``python-engineio``
    imports :mod:`engineio`. Both expose the same ``AsyncServer``/``ASGIApp``.
``EIO_PING_INTERVAL`` / ``EIO_PING_TIMEOUT``
    Heartbeat settings in seconds (floats). Defaults: 25 and 20.
``EIO_ALLOW_EIO3``
    ``1``: pass ``allow_eio3=True`` (Engine.IO v3 clients too).
``EIO_EVENT_LOG``
    Optional path. When set, every connect, message and disconnect is
    appended to it as one JSON line, so tests can check what the server saw
    (notably the disconnect reason, which a client cannot observe).

Behaviour: every message is echoed back unchanged (text as text, binary as
binary), except the text message ``"close-me"``, which makes the server call
``disconnect(sid)``.
"""

import importlib
import json
import os
import threading
import time

IMPLS = {"ours": "engineio_asgi", "python-engineio": "engineio"}

IMPL = os.environ.get("EIO_IMPL", "ours")
if IMPL not in IMPLS:
    raise RuntimeError(f"EIO_IMPL must be one of {sorted(IMPLS)}, got {IMPL!r}")

eio_module = importlib.import_module(IMPLS[IMPL])

PING_INTERVAL = float(os.environ.get("EIO_PING_INTERVAL", "25"))
PING_TIMEOUT = float(os.environ.get("EIO_PING_TIMEOUT", "20"))
EVENT_LOG = os.environ.get("EIO_EVENT_LOG") or None
ALLOW_EIO3 = os.environ.get("EIO_ALLOW_EIO3") == "1"

CLOSE_COMMAND = "close-me"

eio = eio_module.AsyncServer(
    async_mode="asgi",
    ping_interval=PING_INTERVAL,
    ping_timeout=PING_TIMEOUT,
    cors_allowed_origins="*",
    **({"allow_eio3": True} if ALLOW_EIO3 else {}),
)
app = eio_module.ASGIApp(eio)

_log_lock = threading.Lock()


def _record(event, sid, **fields):
    if EVENT_LOG is None:
        return
    entry = {"event": event, "sid": sid, "time": time.time(), **fields}
    line = json.dumps(entry, sort_keys=True) + "\n"
    with _log_lock, open(EVENT_LOG, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()


@eio.on("connect")
async def on_connect(sid, environ):
    query = environ.get("QUERY_STRING", "")
    _record("connect", sid, query=query)


@eio.on("message")
async def on_message(sid, data):
    if isinstance(data, (bytes, bytearray)):
        _record("message", sid, kind="binary", length=len(data))
    else:
        _record("message", sid, kind="text", length=len(data))
    if data == CLOSE_COMMAND:
        await eio.disconnect(sid)
        return
    await eio.send(sid, data)


@eio.on("disconnect")
async def on_disconnect(sid, reason):
    _record("disconnect", sid, reason=str(reason))
