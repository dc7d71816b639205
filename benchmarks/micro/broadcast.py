"""Per-recipient cost of a python-socketio broadcast (``emit`` to a room), without a network.

N websocket clients are connected in-process (fake ASGI connections whose
``send()`` only counts), all in one room; then the server emits K events to the
room. The figure is the time per delivery; for instruction counts run it under
callgrind twice with two values of K and divide the difference, which cancels
the set-up::

    python benchmarks/micro/broadcast.py [--clients N] [--emits K] [--binary] [--impl ours|pyeio]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/micro/broadcast.py --clients 1000 --emits 5 --quiet

``--impl pyeio`` runs the same app on python-engineio.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import socketio
from _echo_server import websocket_scope


def make_server(impl: str) -> tuple[Any, Any]:
    if impl == "ours":
        from engineio_asgi.socketio import ASGIApp, AsyncServer

        sio = AsyncServer(async_mode="asgi")
        return sio, ASGIApp(sio)
    sio = socketio.AsyncServer(async_mode="asgi")
    return sio, socketio.ASGIApp(sio)


class Conn:
    """A websocket client: connects, joins Socket.IO's default namespace, then only listens."""

    def __init__(self, counter: list[int], ready: asyncio.Event, need: int) -> None:
        self.step = 0
        self.counter = counter
        self.ready = ready
        self.need = need
        self.end = asyncio.Event()
        self.scope = websocket_scope("/socket.io/")

    async def receive(self) -> dict[str, Any]:
        self.step += 1
        if self.step == 1:
            return {"type": "websocket.connect"}
        if self.step == 2:
            return {"type": "websocket.receive", "text": "40"}
        await self.end.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.counter[0] += 1
            if self.counter[0] >= self.need:
                self.ready.set()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--emits", type=int, default=20)
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("--impl", default="ours", choices=("ours", "pyeio"))
    ap.add_argument("--quiet", action="store_true")
    opts = ap.parse_args()
    sio, app = make_server(opts.impl)

    @sio.on("connect")
    async def connect(sid: str, environ: Any) -> None:
        await sio.enter_room(sid, "room")

    n = opts.clients
    counter = [0]
    ready = asyncio.Event()
    conns = [Conn(counter, ready, 2 * n) for _ in range(n)]  # open packet + Socket.IO CONNECT each
    tasks = [asyncio.create_task(app(c.scope, c.receive, c.send)) for c in conns]
    await asyncio.wait_for(ready.wait(), 60)
    payload: Any = b"\x00\x01binary payload" * 4 if opts.binary else {"text": "hello world " * 4}
    expected = n * opts.emits * (2 if opts.binary else 1)  # a binary event is a header and an attachment
    counter[0] = 0
    for c in conns:
        c.need = expected  # python-engineio writes from a task of its own: wait for the last frame
    ready.clear()
    t0 = time.perf_counter()
    for _ in range(opts.emits):
        await sio.emit("news", payload, to="room")
    try:
        await asyncio.wait_for(ready.wait(), 60)
    except TimeoutError:
        raise SystemExit(f"{counter[0]} frames sent, {expected} expected") from None
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.end.set()
    await asyncio.wait(tasks, timeout=30)
    if not opts.quiet:
        per = elapsed / (n * opts.emits) * 1e6
        print(f"{opts.impl}: {n} clients x {opts.emits} emits: {per:.2f} us per delivery")


asyncio.run(main())
