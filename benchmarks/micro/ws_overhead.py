"""Per-message cost of the websocket path, without a network: a fake ASGI connection.

receive() hands out N text frames then a disconnect; send() only counts. The
same loop runs a bare echo app, python-engineio and ours, so the difference is
the Engine.IO layer's own cost per message. Usage:

    python benchmarks/micro/ws_overhead.py [N] [--no-async-handlers] [--trio]
"""

from __future__ import annotations

import sys
import time

import _echo_server
import anyio
import anyio.lowlevel

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 50_000
ASYNC_HANDLERS = "--no-async-handlers" not in sys.argv
BACKEND = "trio" if "--trio" in sys.argv else "asyncio"


def make_conn(n: int):
    frames = ["4hello world 12345"] * n
    state = {"i": 0, "sent": 0, "done": anyio.Event()}
    scope = _echo_server.websocket_scope("/engine.io/")

    async def receive():
        i = state["i"]
        if i == 0:
            state["i"] = 1
            return {"type": "websocket.connect"}
        # wait until the previous message was echoed: one in flight, like the load test;
        # and suspend once per message, as a real server's receive() does then. (Without
        # a suspension CPython 3.11 never specializes the app's receive loop: a loop
        # counts towards it only at a resumption or an unconditional backward jump.)
        await anyio.lowlevel.checkpoint()
        while state["sent"] < i:
            await anyio.sleep(0)
        if i > n:
            await state["done"].wait()
            return {"type": "websocket.disconnect", "code": 1000}
        state["i"] = i + 1
        return {"type": "websocket.receive", "text": frames[i - 1]}

    async def send(message):
        if message["type"] == "websocket.send":
            state["sent"] += 1
            if state["sent"] > n:
                state["done"].set()

    return scope, receive, send, state


async def bare_app(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '0{"sid":"x"}'})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": m["text"]})


def make_server(module):
    return _echo_server.make_server(module, ASYNC_HANDLERS)


async def measure(app) -> float:
    scope, receive, send, _state = make_conn(N)
    t0 = time.perf_counter()
    await app(scope, receive, send)
    return time.perf_counter() - t0


async def main() -> None:
    import engineio_asgi

    apps = {"bare": bare_app, "ours": make_server(engineio_asgi)}
    if BACKEND == "asyncio":
        import engineio

        apps["python-engineio"] = make_server(engineio)
    results = {}
    for name, app in apps.items():
        best = min([await measure(app) for _ in range(3)])
        results[name] = best
        print(f"{name:16s} {N / best:10.0f} msg/s  {best / N * 1e6:6.2f} us/msg")
    bare = results["bare"]
    for name, t in results.items():
        if name != "bare":
            print(f"{name}: layer cost {(t - bare) / N * 1e6:.2f} us/msg, ratio to bare {bare / t:.2f}")


anyio.run(main, backend=BACKEND)
