"""python-socketio emit-echo in-process: ours against python-engineio, without a network.

C websocket clients (fake ASGI connections) each emit ``echo`` and, when the
server's ``echo`` comes back, emit again, K times; the server is the emit-echo
app of ``benchmarks/apps/_sio_echo.py`` (``emit(..., to=sid)``). The figure is
the time per echo, so the two Engine.IO layers compare with the ASGI server's
own cost left out. For instruction counts run it under callgrind with two values
of K and divide the difference::

    python benchmarks/micro/sio_echo.py [--impl ours|pyeio] [--clients C] [--echoes K] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))

from _echo_server import websocket_scope
from _sio_echo import make_app

MESSAGE = '42["echo","0123456789abcdef"]'


class Conn:
    def __init__(self, echoes: int, done: asyncio.Event, left: list[int]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.echoes = echoes
        self.done = done
        self.left = left
        self.scope = websocket_scope("/socket.io/")
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.incoming.put_nowait({"type": "websocket.receive", "text": "40"})

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.send":
            return
        text = message.get("text") or ""
        if text.startswith("40"):  # connected to the namespace: the first emit
            self.incoming.put_nowait({"type": "websocket.receive", "text": MESSAGE})
        elif text.startswith("42"):
            self.echoes -= 1
            if self.echoes > 0:
                self.incoming.put_nowait({"type": "websocket.receive", "text": MESSAGE})
            else:
                self.left[0] -= 1
                if self.left[0] == 0:
                    self.done.set()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", default="ours", choices=("ours", "pyeio"))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--echoes", type=int, default=200)
    ap.add_argument("--quiet", action="store_true")
    opts = ap.parse_args()
    if opts.impl == "ours":
        from engineio_asgi.socketio import ASGIApp, AsyncServer

        _, app = make_app(AsyncServer, ASGIApp)
    else:
        import socketio

        _, app = make_app(socketio.AsyncServer, socketio.ASGIApp)
    done = asyncio.Event()
    left = [opts.clients]
    conns = [Conn(opts.echoes, done, left) for _ in range(opts.clients)]
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(app(c.scope, c.incoming.get, c.send)) for c in conns]
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait(tasks, timeout=30)
    if not opts.quiet:
        per = elapsed / (opts.clients * opts.echoes) * 1e6
        print(f"{opts.impl}: {opts.clients} clients x {opts.echoes} echoes: {per:.2f} us per echo")


asyncio.run(main())
