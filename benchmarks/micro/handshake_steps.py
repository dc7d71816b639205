"""The cost of opening a session, step by step, in-process (no network).

Each step runs N times on its own; the figure is time per step (best of five).
For instruction counts run one step under callgrind with two values of N and
divide the difference (start-up cancels out)::

    python benchmarks/micro/handshake_steps.py [N]            # every step, timed
    python benchmarks/micro/handshake_steps.py N STEP --quiet  # one step, for callgrind
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/micro/handshake_steps.py 2000 asgi-polling --quiet

Steps: ``sid`` (a session id), ``request`` (the core's request from a scope),
``environ`` (the handlers' environ), ``core-open`` (the core's handshake, open
to accept), ``asgi-polling`` (a whole handshake through the ASGI app, with
connect and disconnect handlers, then a POST of a CLOSE packet, as
``benchmarks/load.js`` does) and ``asgi-websocket`` (the handshake, then a CLOSE
packet and the close frame, as ``load.js`` does). ``bare-polling`` and ``bare-websocket`` do the same with
``benchmarks/apps/bare.py``, the app the benchmarks compare with.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import anyio

import engineio_asgi
from engineio_asgi.environ import build_environ, request_from_scope
from engineio_sansio import ConnectRequest, Server
from engineio_sansio.routing import default_sid

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"node"),
    (b"accept", b"*/*"),
    (b"connection", b"keep-alive"),
]


def scope(kind: str) -> dict[str, Any]:
    transport = "websocket" if kind == "websocket" else "polling"
    s: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "path": "/engine.io/",
        "raw_path": b"/engine.io/",
        "root_path": "",
        "query_string": f"EIO=4&transport={transport}".encode(),
        "headers": HEADERS,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "scheme": "ws" if kind == "websocket" else "http",
    }
    if kind == "http":
        s["method"] = "GET"
    return s


class HTTPExchange:
    """A client's side of HTTP requests in-process: ``body`` is the next request's body,
    ``answer`` collects the response bodies, ``receive``/``send`` are the ASGI callables."""

    def __init__(self) -> None:
        self.body = b""
        self.answer: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            self.answer.append(message["body"])

    def sid(self) -> str:
        """The session id in the first answer (a handshake's OPEN packet)."""
        first = self.answer[0]
        return first[first.index(b'"sid":"') + 7 :].split(b'"')[0].decode()


def core_open() -> Callable[[int], None]:
    core = Server()
    http = scope("http")

    def run(n: int) -> None:
        for i in range(n):
            _, (ev,) = core.receive_request(request_from_scope(http), float(i))
            assert type(ev) is ConnectRequest
            core.accept(ev.sid, float(i))
            core.close(ev.sid, float(i))

    return run


def asgi(kind: str, bare: bool = False) -> Callable[[int], None]:
    opened: list[str] = []

    def make_app() -> Any:
        """A new app per run: a server belongs to the event loop it first ran on."""
        if bare:  # benchmarks/apps/bare.py, the ceiling the benchmarks compare with
            sys.path.insert(0, str(Path(__file__).parent.parent / "apps"))
            from bare import app  # type: ignore[import-not-found]

            return app
        eio = engineio_asgi.AsyncServer(async_mode="asgi")

        @eio.on("connect")
        async def connect(sid: str, environ: Any) -> None:
            opened.append(sid)

        @eio.on("disconnect")
        async def disconnect(sid: str, reason: str) -> None:
            opened.remove(sid)

        return engineio_asgi.ASGIApp(eio)

    s = scope(kind)

    async def one_http(app: Any) -> None:
        # the handshake, then a POST of a CLOSE packet (as benchmarks/load.js does)
        client = HTTPExchange()
        await app(s, client.receive, client.send)
        client.body = b"1"
        close = dict(s, method="POST", query_string=f"EIO=4&transport=polling&sid={client.sid()}".encode())
        await app(close, client.receive, client.send)

    async def one_websocket(app: Any) -> None:
        # the open packet, then a CLOSE packet and the close frame at once (as load.js does)
        messages = iter(
            (
                {"type": "websocket.connect"},
                {"type": "websocket.receive", "text": "1"},
                {"type": "websocket.disconnect", "code": 1000},
            )
        )

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(s, receive, send)
        await anyio.sleep(0)  # what the connection started runs, as between two connections

    one = one_websocket if kind == "websocket" else one_http

    async def loop(n: int, app: Any) -> None:
        # one session stays open throughout, as under load some always are: the
        # server's timer has a deadline, which later sessions' do not come before
        held: list[bytes] = []

        async def nothing() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def keep(message: dict[str, Any]) -> None:
            held.append(message.get("body", b""))

        await app(scope("http"), nothing, keep)
        for _ in range(n):
            await one(app)
        assert len(opened) == (0 if bare else 1)

    def run(n: int) -> None:
        opened.clear()
        anyio.run(loop, n, make_app())

    return run


def steps() -> dict[str, Callable[[int], None]]:
    http = scope("http")

    def sid(n: int) -> None:
        for _ in range(n):
            default_sid()

    def request(n: int) -> None:
        for _ in range(n):
            request_from_scope(http)

    def environ(n: int) -> None:
        for _ in range(n):
            build_environ(http)

    return {
        "sid": sid,
        "request": request,
        "environ": environ,
        "core-open": core_open(),
        "asgi-polling": asgi("http"),
        "asgi-websocket": asgi("websocket"),
        "bare-polling": asgi("http", bare=True),
        "bare-websocket": asgi("websocket", bare=True),
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 5000
    chosen = args[1:] or list(steps())
    table = steps()
    for name in chosen:
        fn = table[name]
        if "--quiet" in sys.argv:
            fn(n)
            continue
        best = min(_timed(fn, n) for _ in range(5))
        print(f"{name:16s} {best / n * 1e6:8.2f} us")


def _timed(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
