"""The echo app shared by pyengineio.py and ours.py (same API, another import).

* message handler: echo the data back to the sender;
* the text ``fanout`` sends ``fanout`` to every connected session instead;
* ``EIO_ASYNC_HANDLERS`` (default true) is passed as ``async_handlers``;
* ``EIO_PING_INTERVAL`` (seconds), if set, is passed as ``ping_interval`` (a diagnosis:
  a run whose window holds no ping);
* ``EIO_BENCH_GC=1`` adds the collector's pauses at ``GET /_bench/gc`` (``_gcstats.py``).
"""

from __future__ import annotations

import os

from _gcstats import install


def async_handlers_from_env() -> bool:
    value = os.environ.get("EIO_ASYNC_HANDLERS", "true").strip().lower()
    return value not in ("0", "false", "no", "off")


def make_app(engineio_module):
    options = {}
    if os.environ.get("EIO_PING_INTERVAL"):
        options["ping_interval"] = float(os.environ["EIO_PING_INTERVAL"])
    eio = engineio_module.AsyncServer(async_mode="asgi", async_handlers=async_handlers_from_env(), **options)
    sids: dict[str, None] = {}

    @eio.on("connect")
    async def connect(sid, environ):
        sids[sid] = None

    @eio.on("disconnect")
    async def disconnect(sid, reason=None):
        sids.pop(sid, None)

    @eio.on("message")
    async def message(sid, data):
        if data == "fanout":
            for other in list(sids):
                try:
                    await eio.send(other, "fanout")
                except Exception:  # that session is going away
                    pass
        else:
            await eio.send(sid, data)

    return eio, install(engineio_module.ASGIApp(eio))  # + GET /_bench/gc when EIO_BENCH_GC=1
