"""A bare ASGI echo app that speaks just enough Engine.IO v4 to be benchmarked.

It is the ceiling: no Engine.IO layer on the same ASGI server can be faster than
this, so the harness reports every implementation as a ratio of it.

What it does (and nothing more):

* websocket (``transport=websocket``, no sid): accept, send the open packet,
  echo every frame back as it came (text or binary).  ``4fanout`` sends
  ``4fanout`` to every open websocket session instead (the fan-out scenario);
  ``1`` (close) is not echoed: the client closes the websocket next.  It never
  pings.
* upgrade (``transport=websocket`` with the sid of a polling session), as
  engine.io-client does it: ``2probe`` is answered ``3probe`` and the pending
  poll gets ``6`` (noop); after ``5`` the session is a websocket one as above.
* polling: ``GET`` without sid answers the open packet; ``POST`` queues the
  payload's message packets and answers ``ok`` (``1`` closes the session);
  ``GET`` with sid answers the queued packets joined by ``\\x1e``, holding the
  request until something is queued (at most 25 s, then ``6``, a noop).

It runs on asyncio and trio (events come from the running library).
"""

from __future__ import annotations

import json
import secrets
from collections import deque

import sniffio
from _gcstats import install

PATH = "/engine.io/"
OPEN_FIELDS = {"upgrades": [], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000}
HOLD_SECONDS = 25.0
FANOUT = "4fanout"

ws_sessions: dict[str, object] = {}  # sid -> ASGI send of that websocket
poll_sessions: dict[str, PollSession] = {}


class PollSession:
    __slots__ = ("queue", "event")

    def __init__(self) -> None:
        self.queue: deque[bytes] = deque()
        self.event = None


def open_packet(sid: str, upgrades: tuple[str, ...] = ()) -> str:
    return "0" + json.dumps({"sid": sid, **OPEN_FIELDS, "upgrades": list(upgrades)}, separators=(",", ":"))


def new_sid() -> str:
    return secrets.token_urlsafe(15)


def query(qs: bytes) -> dict[bytes, bytes]:
    out = {}
    for part in qs.split(b"&"):
        k, _, v = part.partition(b"=")
        out[k] = v
    return out


def make_event():
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.Event()
    import asyncio

    return asyncio.Event()


async def wait_event(event, timeout: float) -> None:
    if sniffio.current_async_library() == "trio":
        import trio

        with trio.move_on_after(timeout):
            await event.wait()
        return
    import asyncio

    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pass


async def respond(send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=UTF-8") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def bad_request(send, code: int, message: str) -> None:
    await respond(send, 400, json.dumps({"code": code, "message": message}).encode(), b"application/json")


async def open_websocket(scope, receive, send) -> str | None:
    """Accepts a websocket session (new, or upgraded from polling); its sid, or None."""
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return None
    if scope["path"] != PATH:
        await send({"type": "websocket.close", "code": 1008})
        return None
    sid_b = query(scope["query_string"]).get(b"sid")
    if sid_b is None:
        await send({"type": "websocket.accept"})
        sid = new_sid()
        await send({"type": "websocket.send", "text": open_packet(sid)})
        return sid
    sid = sid_b.decode()
    session = poll_sessions.get(sid)
    if session is None:
        await send({"type": "websocket.close", "code": 1008})
        return None
    await send({"type": "websocket.accept"})
    msg = await receive()
    if msg.get("text") != "2probe":
        await send({"type": "websocket.close", "code": 1008})
        return None
    await send({"type": "websocket.send", "text": "3probe"})
    session.queue.append(b"6")  # the pending poll returns: the client pauses polling
    if session.event is not None:
        session.event.set()
    msg = await receive()
    if msg.get("text") != "5":
        await send({"type": "websocket.close", "code": 1008})
        return None
    poll_sessions.pop(sid, None)
    return sid


async def websocket(scope, receive, send) -> None:
    sid = await open_websocket(scope, receive, send)
    if sid is None:
        return
    ws_sessions[sid] = send
    try:
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break
            text = msg.get("text")
            if text is None:
                await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
            elif text == FANOUT:
                out = {"type": "websocket.send", "text": FANOUT}
                for other in list(ws_sessions.values()):
                    try:
                        await other(out)
                    except Exception:  # that session is going away
                        pass
            elif text == "1":  # Engine.IO close: the client closes the websocket next
                continue
            else:
                await send({"type": "websocket.send", "text": text})
    except Exception:  # peer went away mid-send
        pass
    finally:
        ws_sessions.pop(sid, None)


async def read_body(receive) -> bytes | None:
    chunks = []
    more = True
    while more:
        msg = await receive()
        if msg["type"] != "http.request":
            return None
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def http(scope, receive, send) -> None:
    if scope["path"] != PATH:
        await respond(send, 404, b"not found")
        return
    q = query(scope["query_string"])
    if q.get(b"transport") != b"polling":
        await bad_request(send, 0, "Transport unknown")
        return
    method = scope["method"]
    sid_b = q.get(b"sid")
    if sid_b is None:
        if method != "GET":
            await bad_request(send, 2, "Bad handshake method")
            return
        sid = new_sid()
        poll_sessions[sid] = PollSession()
        await respond(send, 200, open_packet(sid, ("websocket",)).encode())
        return
    sid = sid_b.decode()
    session = poll_sessions.get(sid)
    if session is None:
        await bad_request(send, 1, "Session ID unknown")
        return
    if method == "POST":
        body = await read_body(receive)
        if body is None:
            return
        for packet in body.split(b"\x1e"):
            kind = packet[:1]
            if kind == b"4":
                session.queue.append(packet)
            elif kind == b"1":
                poll_sessions.pop(sid, None)
                session.queue.append(b"1")
        if session.event is not None and session.queue:
            session.event.set()
        await respond(send, 200, b"ok", b"text/html")
    elif method == "GET":
        if not session.queue:
            session.event = event = make_event()
            await wait_event(event, HOLD_SECONDS)
            session.event = None
        if session.queue:
            body = b"\x1e".join(session.queue)
            session.queue.clear()
        else:
            body = b"6"
        await respond(send, 200, body)
    else:
        await bad_request(send, 3, "Bad request")


async def lifespan(receive, send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await websocket(scope, receive, send)
    elif kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)


app = install(asgi)  # the same app, plus GET /_bench/gc when EIO_BENCH_GC=1
