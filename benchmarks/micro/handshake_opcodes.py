"""Python bytecode instructions per polling handshake, per app and per function: a count, not a time.

The same two requests as ``handshake_budget.py`` (a GET that opens a session, a POST of
a CLOSE packet), one handshake traced with ``sys.settrace`` and ``f_trace_opcodes`` after
one untraced handshake of warm-up. The count is the same on every run and every machine
with the same Python, so a change's effect on the common path shows without timing
noise; what it does not show is the work done inside C calls (``json.dumps`` is one
instruction). Apps: ``bare``, ``least`` (``apps/least_server.py``), ``common path only``
(``handshake_budget.py``'s) and ``ours``, with ours split into the core and the ASGI
layer; ``-v`` lists ours' functions, largest first::

    python benchmarks/micro/handshake_opcodes.py [-v]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import anyio

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "apps"))
from handshake_budget import common_path_only
from handshake_split import make_app
from handshake_steps import HTTPExchange, scope
from least_server import app as least_app

HARNESS = ("micro/handshake_steps.py", "micro/handshake_opcodes.py")
"""The client's side of the exchange, counted apart."""


def count(app: Any) -> Counter[str]:
    """Instructions of one handshake through ``app``, by ``file:function``."""
    counts: Counter[str] = Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            path = Path(code.co_filename)
            counts[f"{path.parent.name}/{path.name}:{code.co_name}"] += 1
        return trace

    async def handshake(client: HTTPExchange) -> None:
        get = scope("http")
        client.answer.clear()
        client.body = b""
        await app(get, client.receive, client.send)
        client.body = b"1"
        post = dict(get, method="POST", query_string=f"EIO=4&transport=polling&sid={client.sid()}".encode())
        await app(post, client.receive, client.send)

    async def main() -> None:
        client = HTTPExchange()
        await app(scope("http"), client.receive, client.send)  # one session held open, as under load
        await handshake(client)
        sys.settrace(trace)
        try:
            await handshake(client)
        finally:
            sys.settrace(None)

    anyio.run(main)
    return counts


def main() -> None:
    apps = {
        "bare": make_app(bare=True),
        "least": least_app,
        "common path only": common_path_only(),
        "ours": make_app(bare=False),
    }
    by_app = {name: count(app) for name, app in apps.items()}
    print(f"{'app':18} {'instructions':>12} {'harness':>8} {'the app':>8}")
    for name, counts in by_app.items():
        harness = sum(n for where, n in counts.items() if where.startswith(HARNESS))
        total = sum(counts.values())
        print(f"{name:18} {total:12,} {harness:8,} {total - harness:8,}")
    ours = by_app["ours"]
    core = sum(n for where, n in ours.items() if where.startswith("engineio_sansio/"))
    layer = sum(n for where, n in ours.items() if where.startswith("engineio_asgi/"))
    print(f"ours: the core {core:,} (engineio_sansio), the ASGI layer {layer:,} (engineio_asgi, the")
    print(f"  environ and handler calls included), other {sum(ours.values()) - core - layer:,}")
    if "-v" in sys.argv:
        print("\nours, by function:")
        for where, n in by_app["ours"].most_common():
            if not where.startswith(HARNESS):
                print(f"  {n:5} {where}")


if __name__ == "__main__":
    main()
