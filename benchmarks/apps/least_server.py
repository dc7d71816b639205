"""A control for the polling handshake: the least work a complete server does for it.

``bare.py`` answers a handshake with an OPEN packet and forgets it: no handlers, no
heartbeat, nothing kept but the id. A server that users can run does more for the same
two requests (``benchmarks/load.js``'s ``polling-handshake``: a GET that opens a
session, then a POST of a CLOSE packet):

* the GET: the query read (``EIO``, ``transport``, no ``sid``), the ``Origin`` header
  looked for (CORS), a new unguessable id, a session record, the ``connect`` handler
  awaited with a WSGI-style environ (python-engineio's API; built by the same
  ``engineio_asgi.environ.build_environ`` as ours', already cut to the bone), the
  session's first ping put on a timer, the OPEN packet written;
* the POST: the query read, the session looked up, the body read and decoded, the
  session closed and forgotten, the ``disconnect`` handler awaited with its reason,
  ``ok`` written.

This app does exactly that, as one tight function per request, with the benchmark's
handlers (``_echo.py``'s ``connect`` and ``disconnect``). Everything else a server needs
is left out: other packets, long-polling GETs, websockets and upgrades, refusals and
their error bodies, ``allow_request``, cookies, compression, size limits, the timer's
wake-ups, a client that leaves early. It serves only these two requests and answers
anything else 400; it is not a server.

It answers "how near bare can any Python server that keeps python-engineio's API come
on this benchmark?": ``run.py --impls bare,least,ours --scenarios polling-handshake``.
"""

from __future__ import annotations

import heapq
import time
from binascii import b2a_base64
from os import urandom

from _gcstats import install
from bare import lifespan

from engineio_asgi.environ import build_environ

PATH = "/engine.io/"
PING_INTERVAL = 25.0
OPEN_BEFORE = '0{"sid":"'
OPEN_AFTER = '","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
TEXT = [(b"content-type", b"text/plain; charset=UTF-8")]
OK = [(b"content-type", b"text/html"), (b"content-length", b"2")]
BAD = [(b"content-type", b"application/json"), (b"content-length", b"2")]
_URLSAFE = bytes.maketrans(b"+/", b"-_")

sessions: dict[str, float] = {}  # sid -> its next ping's time (the whole session record)
timers: list[tuple[float, str]] = []  # the pings' heap (a driver would sleep until the first)
clock = time.monotonic
known: dict[str, None] = {}  # the handlers' own record of connected sessions, as in _echo.py


async def connect(sid: str, environ: dict) -> None:
    """The benchmark's handlers, as in ``_echo.py``."""
    known[sid] = None


async def disconnect(sid: str, reason: str) -> None:
    known.pop(sid, None)


def query(qs: bytes) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in qs.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key not in result:
            result[key] = value
    return result


async def http(scope, receive, send) -> None:
    q = query(scope["query_string"])
    origin = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value
    sid = q.get("sid")
    if scope["path"] != PATH or q.get("EIO") != "4" or q.get("transport") != "polling" or origin is not None:
        await _answer(send, 400, BAD, b"{}")
    elif sid is None and scope["method"] == "GET":
        sid = b2a_base64(urandom(15), newline=False).translate(_URLSAFE).decode("ascii")
        await connect(sid, build_environ(scope, receive, send))
        at = clock() + PING_INTERVAL
        sessions[sid] = at
        heapq.heappush(timers, (at, sid))
        body = (OPEN_BEFORE + sid + OPEN_AFTER).encode()
        headers = TEXT.copy()
        headers.append((b"content-length", b"%d" % len(body)))
        await _answer(send, 200, headers, body)
    elif sid in sessions and scope["method"] == "POST":
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):  # (a body in parts: one part, under the usual servers)
            message = await receive()
            body += message.get("body", b"")
        if body != b"1":
            await _answer(send, 400, BAD, b"{}")
            return
        del sessions[sid]  # (its timer entry is skipped when it comes up)
        await disconnect(sid, "client disconnect")
        await _answer(send, 200, OK.copy(), b"ok")
    else:
        await _answer(send, 400, BAD, b"{}")


async def _answer(send, status: int, headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def asgi(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)
    else:
        await receive()
        await send({"type": "websocket.close", "code": 1008})


app = install(asgi)  # + GET /_bench/gc when EIO_BENCH_GC=1, as every app here
