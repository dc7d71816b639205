"""The bare ASGI echo app plus the least heartbeat Engine.IO asks for (asyncio only).

Why it exists: the bare app never pings, so an idle websocket costs it
nothing at all between connect and close, while any Engine.IO server must
ping every session every ``pingInterval`` and read the pong. On some ASGI
servers reading that pong is not cheap: each completed ``receive()`` builds
the next wait, whose objects live until the next pong and so reach the
collector's oldest generation. This app measures that floor: the idle cost of
heartbeats on a given server with no Engine.IO layer around them.

What it adds to ``bare.py`` for websocket sessions (polling is bare's):

* one driver task for the whole process pings each session every 25 s,
  staggered by connect time (sessions wait in one deque in due order; a
  session that did not answer the previous ping is closed);
* ``3`` (pong) is read and not echoed; everything else is echoed as in bare.

One object per session (its ``_Beat``) is rescheduled in place, so a ping
allocates nothing that outlives it.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque

import bare
from _gcstats import install
from bare import FANOUT

INTERVAL = float(os.environ.get("EIO_PING_INTERVAL") or 25.0)  # (the variable: as in _echo.py)
PING = {"type": "websocket.send", "text": "2"}
CLOSE = {"type": "websocket.close", "code": 1000}

_due: deque[_Beat] = deque()  # due times only grow: always in due order
_wake: asyncio.Event | None = None


class _Beat:
    __slots__ = ("send", "due", "ponged", "closed")

    def __init__(self, send, due: float) -> None:
        self.send = send
        self.due = due
        self.ponged = True
        self.closed = False


async def _drive() -> None:
    loop = asyncio.get_running_loop()
    assert _wake is not None
    while True:
        if not _due:
            _wake.clear()
            await _wake.wait()
            continue
        beat = _due[0]
        delay = beat.due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
            continue
        _due.popleft()
        if beat.closed:
            continue
        try:
            if not beat.ponged:  # no answer to the last ping: gone
                beat.closed = True
                await beat.send(CLOSE)
                continue
            beat.ponged = False
            await beat.send(PING)
        except Exception:  # peer went away
            beat.closed = True
            continue
        beat.due += INTERVAL
        _due.append(beat)


def _start_driver() -> None:
    global _wake
    if _wake is None:
        _wake = asyncio.Event()
        task = asyncio.get_running_loop().create_task(_drive())
        _start_driver.task = task  # type: ignore[attr-defined]  # keep a reference


async def websocket(scope, receive, send) -> None:
    sid = await bare.open_websocket(scope, receive, send)
    if sid is None:
        return
    bare.ws_sessions[sid] = send
    _start_driver()
    beat = _Beat(send, asyncio.get_running_loop().time() + INTERVAL)
    _due.append(beat)
    assert _wake is not None
    _wake.set()
    try:
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break
            text = msg.get("text")
            if text == "3":
                beat.ponged = True
            elif text is None:
                await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
            elif text == FANOUT:
                out = {"type": "websocket.send", "text": FANOUT}
                for other in list(bare.ws_sessions.values()):
                    try:
                        await other(out)
                    except Exception:
                        pass
            elif text != "1":
                await send({"type": "websocket.send", "text": text})
    except Exception:
        pass
    finally:
        beat.closed = True
        beat.send = None  # its entry waits in _due until it is due: keep the connection no longer
        bare.ws_sessions.pop(sid, None)


async def asgi(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    else:
        await bare.asgi(scope, receive, send)


app = install(asgi)  # the same app, plus GET /_bench/gc when EIO_BENCH_GC=1
