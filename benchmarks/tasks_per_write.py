#!/usr/bin/env python3
"""Tasks the server creates per delivery of a python-socketio broadcast and per ping (not timed).

    .venv/bin/python benchmarks/tasks_per_write.py [--server granian] [--clients 200] [--emits 50]
        [--ping-interval 1] [--ping-window 5]

Runs ``tests/apps/fanout_app.py`` (python-socketio on engineio_asgi; a task
factory counts every asyncio task the server process creates) under the server,
connects ``--clients`` raw websocket Socket.IO clients to one room, then:

- emits ``--emits`` times to the room, one emit in flight (each waits until every
  client has it): tasks per delivery = (tasks created - one per emit, python-socketio's
  handler task - one per control request) / deliveries;
- holds the sessions ``--ping-window`` seconds with a ``--ping-interval`` heartbeat:
  tasks per ping = (tasks created - control requests) / pings the clients received.

Run it from another checkout to measure that checkout's server (the server
imports ``engineio_asgi`` from the checkout the script is in).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import running_server  # noqa: E402


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.news = 0
        self.pings = 0
        self.got = asyncio.Event()

    async def read(self) -> None:
        async for frame in self.ws:
            if frame == "2":
                self.pings += 1
                await self.ws.send("3")
            elif isinstance(frame, str) and frame.startswith('42["news",'):
                self.news += 1
                self.got.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(30):
            while self.news < count:
                self.got.clear()
                await self.got.wait()


async def connect(url: str) -> Client:
    ws = await websockets.connect(url, max_size=None)
    await ws.recv()  # OPEN
    await ws.send("40")
    await ws.recv()  # CONNECT
    return Client(ws)


async def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    clients = []
    for i in range(0, args.clients, 50):  # (in groups: the server's accept backlog)
        clients += await asyncio.gather(*(connect(url) for _ in range(min(50, args.clients - i))))
    readers = [asyncio.create_task(c.read()) for c in clients]
    async with httpx.AsyncClient(timeout=10) as http:

        async def tasks() -> int:
            return int((await http.get(base + "/control/state")).json()["tasks"])

        before = await tasks()
        for n in range(args.emits):
            await clients[0].ws.send('42["fanout",' + json.dumps({"n": n, "size": args.size}) + "]")
            for c in clients:
                await c.until(n + 1)
        fanout_tasks = await tasks() - before - 1 - args.emits  # (this request, the handlers)
        deliveries = args.emits * len(clients)
        pings_before = sum(c.pings for c in clients)
        before = await tasks()
        await asyncio.sleep(args.ping_window)
        pings = sum(c.pings for c in clients) - pings_before
        ping_tasks = await tasks() - before - 1
    for r in readers:
        r.cancel()
    for c in clients:
        await c.ws.close()
    return {
        "clients": len(clients),
        "deliveries": deliveries,
        "tasks_per_delivery": fanout_tasks / deliveries,
        "pings": pings,
        "tasks_per_ping": ping_tasks / pings if pings else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="granian")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--emits", type=int, default=50)
    ap.add_argument("--size", type=int, default=16, help="payload bytes")
    ap.add_argument("--ping-interval", type=float, default=1.0)
    ap.add_argument("--ping-window", type=float, default=5.0)
    args = ap.parse_args()
    env = {"FANOUT_PING_INTERVAL": str(args.ping_interval)}
    with running_server("apps.fanout_app:app", args.server, env=env) as srv:
        started = time.monotonic()
        result = asyncio.run(measure(srv.url, args))
    result.update(server=args.server, tree=str(ROOT), seconds=round(time.monotonic() - started, 1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
