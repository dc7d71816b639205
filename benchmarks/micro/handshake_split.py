"""A polling handshake's two requests timed apart, in-process: the GET (a new session, its
``connect`` handler) and the POST of a CLOSE packet (``1``, its ``disconnect`` handler),
as ``benchmarks/load.js``'s ``polling-handshake`` sends them, for ours and for the bare app.

Medians of ROUNDS rounds (each a fresh app and event loop, ours and bare alternated), in
microseconds per request; the harness's own ``receive``/``send`` are included in both.
To compare two trees, alternate runs of this script with each tree on ``PYTHONPATH``::

    for i in 1 2 3 4; do for t in /tmp/base "$PWD"; do
        PYTHONPATH=$t python benchmarks/micro/handshake_split.py; done; done
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

import engineio_asgi

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "apps"))
from handshake_steps import HTTPExchange, scope


def make_app(bare: bool) -> Any:
    if bare:
        from bare import app  # type: ignore[import-not-found]

        return app
    eio = engineio_asgi.AsyncServer(async_mode="asgi")

    @eio.on("connect")
    async def connect(sid: str, environ: Any) -> None:
        pass

    @eio.on("disconnect")
    async def disconnect(sid: str, reason: str) -> None:
        pass

    return engineio_asgi.ASGIApp(eio)


async def run(app: Any, n: int, out: list[tuple[float, float]]) -> None:
    get = scope("http")
    client = HTTPExchange()
    receive, send = client.receive, client.send
    await app(scope("http"), receive, send)  # one session held open, as under load
    clock = time.perf_counter_ns
    get_ns = post_ns = 0
    for _ in range(n):
        client.answer.clear()
        client.body = b""
        t0 = clock()
        await app(get, receive, send)
        t1 = clock()
        client.body = b"1"
        post = dict(get, method="POST", query_string=f"EIO=4&transport=polling&sid={client.sid()}".encode())
        t2 = clock()
        await app(post, receive, send)
        t3 = clock()
        get_ns += t1 - t0
        post_ns += t3 - t2
    out.append((get_ns / n / 1000, post_ns / n / 1000))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 3000
    rounds = int(args[1]) if len(args) > 1 else 7
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for bare in (False, True):
            anyio.run(run, make_app(bare), n, results[bare])
    for bare in (False, True):
        rows = results[bare]
        get = statistics.median(r[0] for r in rows)
        post = statistics.median(r[1] for r in rows)
        print(f"{'bare' if bare else 'ours'}  GET {get:6.2f} us  POST {post:6.2f} us")


if __name__ == "__main__":
    main()
