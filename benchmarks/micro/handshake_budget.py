"""Where a polling handshake's in-process time goes, layer by layer, beside the bare app's.

A handshake here is what ``benchmarks/load.js``'s ``polling-handshake`` sends: the GET that
opens a session, then a POST of a CLOSE packet (``1``). The figures, medians of ROUNDS
rounds in microseconds per handshake (both requests):

* ``harness``: an app that only reads the request and writes a response of the same size;
  what every app pays for the ASGI calls of this harness;
* ``bare``: ``benchmarks/apps/bare.py``, the ceiling the benchmarks compare with;
* ``ours``: ``AsyncServer`` with async ``connect`` and ``disconnect`` handlers (as the
  benchmark's app), and ``ours, no handlers``: the same without them;
* ``common path only``: the same core, handlers and environ under an ASGI layer that
  knows only these two requests (no pending-request record, wake-up, timer driver, hooks,
  access log, refusals, failed writes): what ours' layer would cost with none of those;
* ``least``: ``benchmarks/apps/least_server.py``, the least work a complete server does
  for these two requests (the same handlers and environ), as one tight function each;
* ``core``: the sans-IO core alone for the same two requests (the scope read into a
  request, ``receive_request``, ``accept``, the POST's ``receive_request`` and
  ``receive_body``), no event loop.

From these: the handlers' share (their calls and the environ) is ``ours`` minus ``ours, no
handlers``; the ASGI layer's own share is what is left of ``ours`` after the harness, the
core and the handlers. The benchmark's goal (0.7 x bare by time through uvicorn) allows
about 12 us in-process over bare (see docs/benchmarks.md, "What the polling handshake's
time holds"); the summary after the figures sets ours against that budget::

    python benchmarks/micro/handshake_budget.py [N] [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import anyio

import engineio_asgi
from engineio_asgi._state import SessionRT
from engineio_asgi.environ import build_environ, request_from_scope
from engineio_sansio import ConnectRequest, Respond, Server, SessionClosed

sys.path.insert(0, str(Path(__file__).parent))
from handshake_split import make_app, run  # (which puts benchmarks/apps on the path too)
from handshake_steps import scope
from least_server import app as least_app

BUDGET_OVER_BARE_US = 12.0
"""In-process microseconds over bare that 0.7 x bare by time leaves (docs/benchmarks.md)."""

OPEN = b'0{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}'
"""An OPEN packet of the usual size (the harness writes alike; the client reads its sid)."""


async def harness_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Only the ASGI calls every app makes: read a POST's body, write a response."""
    if scope["method"] == "POST":
        await receive()
        body = b"ok"
    else:
        body = OPEN
    headers = [(b"content-type", b"text/plain; charset=UTF-8"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def ours_without_handlers() -> Any:
    return engineio_asgi.ASGIApp(engineio_asgi.AsyncServer(async_mode="asgi"))


def common_path_only() -> Any:
    """The same core, handlers and environ under an ASGI layer that knows only this
    benchmark's two requests: no pending-request record, wake-up, timer driver, hooks,
    access log, refusals or failed writes. Not a server: a measure of what those cost."""
    core = Server()
    sessions: dict[str, SessionRT] = {}
    clock = time.monotonic

    async def connect(sid: str, environ: Any) -> None:
        pass

    async def disconnect(sid: str, reason: str) -> None:
        pass

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        rid, events = core.receive_request(request_from_scope(scope), clock())
        response = None
        if events and type(events[0]) is ConnectRequest:
            sid = events[0].sid
            sessions[sid] = SessionRT("polling", scope.get("client"))
            await connect(sid, build_environ(scope, receive, send))
            response = core.accept(sid, clock())[0]
        else:
            body = (await receive()).get("body", b"")  # (all of it: this harness sends it at once)
            events = core.receive_body(rid, body, False, clock())
            for ev in events:
                if type(ev) is SessionClosed:
                    await disconnect(ev.sid, ev.reason.value)
                    sessions.pop(ev.sid, None)
                elif type(ev) is Respond:
                    response = ev
        assert type(response) is Respond
        headers = response.headers
        headers.append((b"content-length", b"%d" % len(response.body)))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    return app


def per_handshake_asgi(app: Any, n: int) -> float:
    out: list[tuple[float, float]] = []
    anyio.run(run, app, n, out)
    get_us, post_us = out[0]
    return get_us + post_us


def per_handshake_core(n: int) -> float:
    """The core alone: both requests of a handshake, one session held open throughout."""
    core = Server()
    http = scope("http")
    _, (held,) = core.receive_request(request_from_scope(http), 0.0)
    core.accept(held.sid, 0.0)
    clock = time.perf_counter_ns
    t0 = clock()
    for i in range(n):
        now = i * 1e-4
        _, (ev,) = core.receive_request(request_from_scope(http), now)
        assert type(ev) is ConnectRequest
        core.accept(ev.sid, now)
        post = dict(http, method="POST", query_string=f"EIO=4&transport=polling&sid={ev.sid}".encode())
        rid, _ = core.receive_request(request_from_scope(post), now)
        events = core.receive_body(rid, b"1", False, now)
        assert len(events) == 2, events
    return (clock() - t0) / n / 1000


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 5000
    rounds = int(args[1]) if len(args) > 1 else 7
    measures: dict[str, Callable[[], float]] = {
        "harness": lambda: per_handshake_asgi(harness_app, n),
        "bare": lambda: per_handshake_asgi(make_app(bare=True), n),
        "ours": lambda: per_handshake_asgi(make_app(bare=False), n),
        "ours, no handlers": lambda: per_handshake_asgi(ours_without_handlers(), n),
        "common path only": lambda: per_handshake_asgi(common_path_only(), n),
        "least": lambda: per_handshake_asgi(least_app, n),
        "core": lambda: per_handshake_core(n),
    }
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):  # interleaved, so drift falls on every row alike
        for name, measure in measures.items():
            samples[name].append(measure())
    us = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in us.items():
        print(f"{name:18} {value:6.2f} us per handshake")
    handlers = us["ours"] - us["ours, no handlers"]
    layer = us["ours"] - us["harness"] - us["core"] - handlers
    print()
    over = us["ours"] - us["bare"]
    print(f"ours over bare     {over:6.2f} us (budget for 0.7 x by time: ~{BUDGET_OVER_BARE_US:.0f})")
    print(f"  bare's own logic {us['bare'] - us['harness']:6.2f} us (bare minus the harness)")
    print(f"  core             {us['core']:6.2f} us")
    print(f"  handlers+environ {handlers:6.2f} us")
    print(f"  ASGI layer       {layer:6.2f} us (ours minus harness, core and handlers)")
    floor = us["harness"] + us["core"] + handlers
    print(f"ours with an ASGI layer that cost nothing: {floor:.2f} us, {floor - us['bare']:.2f} over bare")
    lean = us["common path only"]
    print(f"the common path only: {lean:.2f} us, {lean - us['bare']:.2f} over bare; ours' other work on it:")
    print(f"  {us['ours'] - lean:.2f} us")
    least = us["least"]
    print(f"the least a complete server does: {least:.2f} us, {least - us['bare']:+.2f} over bare; ours is")
    print(f"  {us['ours'] / least:.1f} x that")


if __name__ == "__main__":
    main()
