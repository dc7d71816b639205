"""Per-round-trip cost of the long-polling path, without a network.

Each round trip is what the ``polling-echo`` scenario does: a ``POST`` of one
message, then a ``GET`` that finds its echo already queued. Requests are fake
ASGI calls (a scope shaped like uvicorn's, a ``receive`` that hands out the
body, a ``send`` that keeps the last body), so the difference between the apps
is the Engine.IO layer's own cost. The same loop runs the benchmarks' bare app,
python-engineio and ours. Usage:

    python benchmarks/micro/polling_overhead.py [N] [--no-async-handlers] [--trio] [--profile]

``--profile`` runs only ours under cProfile (``SORT`` and ``TOP`` in the
environment pick the column and the number of rows).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import _echo_server
import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20_000
ASYNC_HANDLERS = "--no-async-handlers" not in sys.argv
BACKEND = "trio" if "--trio" in sys.argv else "asyncio"
PAYLOAD = b"4" + b"x" * 16

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"connection", b"keep-alive"),
    (b"accept", b"*/*"),
]


def scope_for(method: str, qs: bytes, body: bytes = b"") -> dict:
    headers = list(HEADERS)
    if method == "POST":
        headers.append((b"content-type", b"text/plain;charset=UTF-8"))
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": "/engine.io/",
        "raw_path": b"/engine.io/",
        "query_string": qs,
        "headers": headers,
        "state": {},
    }


async def call(app, method: str, qs: bytes, body: bytes = b"") -> tuple[int, bytes]:
    out: dict = {}
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] = out.get("body", b"") + message.get("body", b"")

    await app(scope_for(method, qs, body), receive, send)
    return out["status"], out["body"]


async def measure(app, n: int) -> float:
    status, body = await call(app, "GET", b"EIO=4&transport=polling")
    assert status == 200, (status, body)
    sid = json.loads(body[1:])["sid"]
    qs = b"EIO=4&transport=polling&sid=" + sid.encode()
    t0 = time.perf_counter()
    for _ in range(n):
        status, body = await call(app, "POST", qs, PAYLOAD)
        assert status == 200 and body.lower() == b"ok", (status, body)
        status, body = await call(app, "GET", qs)
        assert status == 200 and body == PAYLOAD, (status, body)
    elapsed = time.perf_counter() - t0
    await call(app, "POST", qs, b"1")
    return elapsed


def make_server(module):
    return _echo_server.make_server(module, ASYNC_HANDLERS)


async def main() -> None:
    import bare

    import engineio_asgi

    apps = {"bare": bare.app, "ours": make_server(engineio_asgi)}
    if BACKEND == "asyncio" and "--profile" not in sys.argv:
        import engineio

        apps["python-engineio"] = make_server(engineio)
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        await measure(apps["ours"], 1000)
        prof = cProfile.Profile()
        prof.enable()
        await measure(apps["ours"], N)
        prof.disable()
        stats = pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime"))
        stats.print_stats(int(os.environ.get("TOP", "30")))
        return
    results = {}
    for name, app in apps.items():
        await measure(app, 500)  # warm up
        best = min([await measure(app, N) for _ in range(3)])
        results[name] = best
        print(f"{name:16s} {N / best:10.0f} round trips/s  {best / N * 1e6:6.2f} us/round trip")
    base = results["bare"]
    for name, t in results.items():
        if name != "bare":
            cost = (t - base) / N * 1e6
            print(f"{name}: layer cost {cost:.2f} us/round trip, ratio to bare {base / t:.2f}")


anyio.run(main, backend=BACKEND)
