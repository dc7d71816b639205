"""The seed's AsyncServer API and ASGIApp, in-process, on asyncio and on trio."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_http, start_websocket

import engineio_asgi

pytestmark = pytest.mark.anyio


def make(**kwargs: Any) -> tuple[engineio_asgi.AsyncServer, engineio_asgi.ASGIApp]:
    eio = engineio_asgi.AsyncServer(**kwargs)
    return eio, engineio_asgi.ASGIApp(eio)


async def handshake(app: Any, query: str = "") -> str:
    r = await http(app, "GET", query="EIO=4&transport=polling" + query)
    assert r.status == 200, r.body
    assert r.text[0] == "0"
    return json.loads(r.text[1:].split("\x1e")[0])["sid"]  # type: ignore[no-any-return]


def poll_q(sid: str) -> str:
    return f"EIO=4&transport=polling&sid={sid}"


# --- constructor and registration ------------------------------------------------


def test_async_mode_other_than_asgi_explains() -> None:
    with pytest.raises(ValueError, match="ASGI-only"):
        engineio_asgi.AsyncServer(async_mode="aiohttp")
    assert engineio_asgi.AsyncServer(async_mode="asgi").async_mode == "asgi"
    assert engineio_asgi.AsyncServer().async_mode == "asgi"


def test_unknown_kwargs_are_ignored_and_options_are_kept() -> None:
    eio = engineio_asgi.AsyncServer(ping_interval=(0.3, 0.2), ping_timeout=0.2, something_new=1)
    assert eio.ping_interval == 0.3
    assert eio.ping_interval_grace_period == 0.2
    assert eio.ping_timeout == 0.2


def test_on_as_method_and_decorator() -> None:
    eio = engineio_asgi.AsyncServer()

    def message(sid: str, data: Any) -> None: ...

    eio.on("message", message)

    @eio.on("connect")
    def connect(sid: str, environ: dict[str, Any]) -> None: ...

    assert eio.handlers == {"message": message, "connect": connect}
    with pytest.raises(ValueError):
        eio.on("bogus", message)


def test_reason_class_matches_python_engineio() -> None:
    import engineio

    for name in ("CLIENT_DISCONNECT", "SERVER_DISCONNECT", "PING_TIMEOUT", "TRANSPORT_CLOSE", "TRANSPORT_ERROR"):
        assert getattr(engineio_asgi.AsyncServer.reason, name) == getattr(engineio.AsyncServer.reason, name)


# --- handshake, environ, handlers ------------------------------------------------


async def test_environ_comes_from_the_scope() -> None:
    eio, app = make()
    seen: dict[str, Any] = {}

    @eio.on("connect")
    def connect(sid: str, environ: dict[str, Any]) -> None:
        seen.update(environ)

    await http(app, "GET", query="EIO=4&transport=polling&foo=bar", headers=[("X-Custom", "v"), ("Host", "h:1")])
    assert seen["REQUEST_METHOD"] == "GET"
    assert seen["PATH_INFO"] == "/engine.io/"
    assert "foo=bar" in seen["QUERY_STRING"]
    assert seen["REMOTE_ADDR"] == "10.1.2.3"
    assert seen["REMOTE_PORT"] == "45678"
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["HTTP_X_CUSTOM"] == "v"
    assert seen["HTTP_HOST"] == "h:1"
    assert seen["asgi.scope"]["type"] == "http"
    # twice, as header names are remembered after their first request
    for _ in range(2):
        seen.clear()
        headers = [("Accept", "a"), ("Content-Type", "t/1"), ("Accept", "b"), ("Content-Type", "t/2")]
        await http(app, "GET", query="EIO=4&transport=polling", headers=headers)
        assert seen["HTTP_ACCEPT"] == "a,b"  # repeated headers joined
        assert seen["CONTENT_TYPE"] == "t/2"  # no HTTP_ prefix, the last one
        assert "HTTP_CONTENT_TYPE" not in seen


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_sync_and_async_handlers(kind: str) -> None:
    eio, app = make()
    log: list[Any] = []
    if kind == "sync":

        @eio.on("message")
        def on_message(sid: str, data: Any) -> None:
            log.append(data)

        @eio.on("disconnect")
        def on_disconnect(sid: str, reason: str) -> None:
            log.append(("bye", reason))
    else:

        @eio.on("message")
        async def on_message(sid: str, data: Any) -> None:
            log.append(data)  # handlers start in arrival order, on both backends
            await anyio.sleep(0)

        @eio.on("disconnect")
        async def on_disconnect(sid: str, reason: str) -> None:
            log.append(("bye", reason))

    sid = await handshake(app)
    r = await http(app, "POST", query=poll_q(sid), body=b'4plain\x1e4{"a":1}\x1e4"quoted"\x1e412\x1ebAAE=\x1e1')
    assert (r.status, r.text) == (200, "ok")
    with anyio.fail_after(5):
        while len(log) < 6:
            await anyio.sleep(0.01)
    assert log == ["plain", {"a": 1}, "quoted", "12", b"\x00\x01", ("bye", "client disconnect")]


async def test_legacy_one_argument_disconnect_handler() -> None:
    eio, app = make()
    gone: list[str] = []

    @eio.on("disconnect")
    def on_disconnect(sid: str) -> None:
        gone.append(sid)

    sid = await handshake(app)
    await eio.disconnect(sid)
    assert gone == [sid]


async def test_connect_rejections() -> None:
    eio, app = make()

    @eio.on("connect")
    def connect(sid: str, environ: dict[str, Any]) -> Any:
        q = environ["QUERY_STRING"]
        if "false" in q:
            return False
        if "dict" in q:
            return {"no": "way"}
        if "refuse" in q:
            raise engineio_asgi.exceptions.ConnectionRefusedError("go", "away")
        if "crash" in q:
            raise RuntimeError("bug in the app")
        return True

    for query, body in [("false", "Unauthorized"), ("dict", {"no": "way"}), ("refuse", ["go", "away"]), ("crash", "Unauthorized")]:
        r = await http(app, "GET", query="EIO=4&transport=polling&x=" + query)
        assert r.status == 401, query
        assert r.headers["content-type"] == "application/json"
        assert json.loads(r.body) == body, query
    assert eio._sessions == {}
    await handshake(app, "&x=ok")


async def test_connect_rejection_over_websocket_is_a_denial_not_an_accept() -> None:
    eio, app = make()
    eio.on("connect", lambda sid, environ: False)
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert await ws.receive() is None
        assert ws.denied is not None and ws.denied["status"] == 401
        assert not ws.accepted.is_set()


# --- sessions ------------------------------------------------------------------------


async def test_session_context_manager_and_get_save() -> None:
    eio, app = make()

    @eio.on("connect")
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        async with eio.session(sid) as session:
            session["user"] = "ada"

    sid = await handshake(app)
    assert await eio.get_session(sid) == {"user": "ada"}
    live = await eio.get_session(sid)
    live["n"] = 1  # python-socketio mutates the live dict
    assert (await eio.get_session(sid))["n"] == 1
    await eio.save_session(sid, {"other": True})
    assert await eio.get_session(sid) == {"other": True}
    with pytest.raises(KeyError):
        await eio.get_session("nope")


async def test_send_to_unknown_sid_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    eio, app = make(logger=logging.getLogger("test-eio"))
    with caplog.at_level(logging.WARNING, logger="test-eio"):
        await eio.send("no-such-sid", "x")
    assert "no-such-sid" in caplog.text
    await eio.disconnect()  # with no clients: nothing happens, nothing raises
    await eio.disconnect("no-such-sid")


async def test_send_json_and_binary_over_polling() -> None:
    eio, app = make()
    sid = await handshake(app)
    await eio.send(sid, {"k": [1, 2]})
    await eio.send(sid, [1, "a"])
    await eio.send(sid, b"\x00\xff")
    await eio.send(sid, bytearray(b"ab"))
    r = await http(app, "GET", query=poll_q(sid))
    assert r.text == '4{"k":[1,2]}\x1e4[1,"a"]\x1ebAP8=\x1ebYWI='


async def test_send_each_kind_of_data_straight_to_an_idle_websocket() -> None:
    # Every send below finds the websocket idle, so each takes the direct path (no
    # queue): the ASGI message's key must follow the data, text or binary.
    eio, app = make()
    sids: list[str] = []
    eio.on("connect", lambda sid, environ: sids.append(sid))
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive())[0] == "0"  # type: ignore[index]
        sent = [
            ("text", "héllo", "4héllo"),
            ("bytes", b"\x00\xff", b"\x00\xff"),
            ("bytearray", bytearray(b"ab"), b"ab"),
            ("dict", {"k": [1, 2]}, '4{"k":[1,2]}'),
            ("list", [1, "a"], '4[1,"a"]'),
            ("number", 7, "47"),
        ]
        for name, data, frame in sent:
            await eio.send(sids[0], data)
            with anyio.fail_after(5):
                message = await ws.from_app_recv.receive()
            key = "text" if type(frame) is str else "bytes"
            assert message == {"type": "websocket.send", key: frame}, name
        await ws.disconnect()
    assert eio._sessions == {}


async def test_custom_json_module_is_used() -> None:
    calls: list[str] = []

    class Tracing:
        @staticmethod
        def dumps(obj: Any, **kw: Any) -> str:
            calls.append("dumps")
            return json.dumps(obj, **kw)

        @staticmethod
        def loads(s: str, **kw: Any) -> Any:
            calls.append("loads")
            return json.loads(s, **kw)

    try:
        eio, app = make(json=Tracing)
        got: list[Any] = []
        eio.on("message", lambda sid, data: got.append(data))
        sid = await handshake(app)
        await eio.send(sid, {"a": 1})
        await http(app, "POST", query=poll_q(sid), body=b'4{"b":2}')
        assert got == [{"b": 2}]
        assert calls == ["dumps", "loads"]
    finally:
        engineio_asgi.AsyncServer(json=json)  # the option is process-wide: put the stdlib back


# --- held polls, disconnects ---------------------------------------------------------


async def test_held_poll_is_answered_by_a_later_send() -> None:
    eio, app = make()
    sid = await handshake(app)
    async with anyio.create_task_group() as tg:
        poll = await start_http(tg, app, "GET", query=poll_q(sid))
        await anyio.sleep(0.05)
        assert not poll.done.is_set()
        await eio.send(sid, "late")
        with anyio.fail_after(5):
            await poll.done.wait()
    assert poll.text == "4late"


async def test_client_leaving_a_held_poll_loses_nothing() -> None:
    eio, app = make()
    sid = await handshake(app)
    left = anyio.Event()
    async with anyio.create_task_group() as tg:
        await start_http(tg, app, "GET", query=poll_q(sid), disconnect=left)
        await anyio.sleep(0.05)
        left.set()
        await anyio.sleep(0.05)
    await eio.send(sid, "kept")
    r = await http(app, "GET", query=poll_q(sid))
    assert r.text == "4kept"


async def test_server_disconnect_of_an_idle_polling_client_does_not_wait() -> None:
    eio, app = make()
    reasons: list[str] = []
    eio.on("disconnect", lambda sid, reason: reasons.append(reason))
    sid = await handshake(app)
    with anyio.fail_after(1):
        await eio.disconnect(sid)
    assert reasons == ["server disconnect"]
    r = await http(app, "GET", query=poll_q(sid))
    assert r.text == "1"  # the client still learns it was closed
    r = await http(app, "GET", query=poll_q(sid))
    assert r.status == 400


async def test_chunked_post_body_is_delivered() -> None:
    eio, app = make()
    got: list[Any] = []
    eio.on("message", lambda sid, data: got.append(data))
    sid = await handshake(app)
    r = await http(app, "POST", query=poll_q(sid), body=[b"4hel", b"lo\x1e4wor", b"ld"])
    assert (r.status, r.text) == (200, "ok")
    assert got == ["hello", "world"]


async def test_oversized_post_is_refused_and_session_kept() -> None:
    eio, app = make(max_http_buffer_size=100)
    got: list[Any] = []
    eio.on("message", lambda sid, data: got.append(data))
    sid = await handshake(app)
    r = await http(app, "POST", query=poll_q(sid), body=[b"4" + b"x" * 60, b"y" * 60])
    assert r.status == 413
    r = await http(app, "POST", query=poll_q(sid), body=b"4small")
    assert r.text == "ok"
    assert got == ["small"]


@pytest.mark.parametrize(
    ("chunks", "headers"),
    [
        ([b"4" + b"x" * 120], []),  # one piece, no length announced
        ([b"4" + b"x" * 50, b"y" * 49, b"z"], []),  # the last byte crosses the limit
        ([b"4small"], [("Content-Length", "101")]),  # announced too large: refused unread
    ],
    ids=["one-piece", "last-chunk", "announced"],
)
async def test_post_over_the_limit_is_refused_however_it_arrives(
    chunks: list[bytes], headers: list[tuple[str, str]]
) -> None:
    eio, app = make(max_http_buffer_size=100)
    got: list[Any] = []
    eio.on("message", lambda sid, data: got.append(data))
    sid = await handshake(app)
    r = await http(app, "POST", query=poll_q(sid), body=chunks, headers=headers)
    assert r.status == 413
    r = await http(app, "POST", query=poll_q(sid), body=[b"4" + b"x" * 50, b"y" * 49])  # exactly the limit
    assert r.text == "ok"
    assert got == ["x" * 50 + "y" * 49]


def test_scope_headers_decode_on_demand_and_join_repeats() -> None:
    from engineio_asgi.environ import ScopeHeaders

    raw = [(b"host", b"a.example"), (b"accept", b"text/html"), (b"accept", b"*/*"), (b"x-odd", b"\xe9")]
    headers = ScopeHeaders(raw)
    assert headers.get("accept") == "text/html, */*"
    assert headers.get("origin") is None
    assert headers.get("origin", "-") == "-"
    assert headers.get("x-odd") == "\u00e9"  # latin-1, as ASGI header values are bytes
    assert dict(headers) == {"host": "a.example", "accept": "text/html, */*", "x-odd": "\u00e9"}
    assert headers.get("host") == "a.example"  # after the dict was built too
    assert "accept" in headers and "origin" not in headers and len(headers) == 3


# --- websocket ---------------------------------------------------------------------------


async def test_websocket_session_and_upgrade_and_transport() -> None:
    eio, app = make()
    eio.on("message", lambda sid, data: None)

    @eio.on("message")
    async def echo(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    sid = await handshake(app)
    assert eio.transport(sid) == "polling"
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, f"EIO=4&transport=websocket&sid={sid}")
        await ws.send_text("2probe")
        assert await ws.receive() == "3probe"
        await ws.send_text("5")
        await ws.send_text("4over ws")
        assert await ws.receive() == "4over ws"
        assert eio.transport(sid) == "websocket"
        await ws.send_bytes(b"\x01\x02")
        assert await ws.receive() == b"\x01\x02"
        await eio.disconnect(sid)
        assert await ws.receive() == "1"
        assert await ws.receive() is None and ws.closed is not None
        with anyio.fail_after(5):
            await ws.finished.wait()


async def test_websocket_to_unknown_path_is_closed_not_answered_with_http() -> None:
    eio, app = make()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "", path="/elsewhere")
        assert await ws.receive() is None
        assert ws.closed is not None and not ws.accepted.is_set()


# --- loop helpers on both backends --------------------------------------------------------


async def test_background_task_queue_event_sleep(anyio_backend: str) -> None:
    eio, app = make()
    queue = eio.create_queue()
    event = eio.create_event()
    empty = eio.get_queue_empty_exception()
    with pytest.raises(empty):
        queue.get_nowait()

    async def worker(n: int) -> int:
        for i in range(n):
            await queue.put(i)
        event.set()
        return n

    task = eio.start_background_task(worker, 3)
    with anyio.fail_after(5):
        await event.wait()
        assert await task == 3
    assert [queue.get_nowait() for _ in range(3)] == [0, 1, 2]
    event.clear()
    assert not event.is_set()
    if anyio_backend == "asyncio":
        import asyncio

        assert isinstance(task, asyncio.Task)
        assert isinstance(queue, asyncio.Queue)
        assert isinstance(event, asyncio.Event)
    with anyio.fail_after(1):
        await eio.sleep(0.01)


async def test_shutdown_cancels_background_tasks_and_closes_sessions() -> None:
    eio, app = make()
    reasons: list[str] = []
    eio.on("disconnect", lambda sid, reason: reasons.append(reason))
    started = eio.create_event()

    async def forever() -> None:
        started.set()
        await anyio.sleep(3600)

    task = eio.start_background_task(forever)
    await started.wait()
    await handshake(app)
    await handshake(app)
    with anyio.fail_after(6):
        await eio.shutdown()
    assert reasons == ["server disconnect", "server disconnect"]
    assert task.done()


# --- ASGIApp routing, static files, lifespan ---------------------------------------------


async def test_engineio_path_matching() -> None:
    eio, app = make()
    for path in ("/engine.io", "/engine.io/", "/engine.io/x"):
        r = await http(app, "GET", path=path, query="EIO=4&transport=polling")
        assert r.status == 200, path
    r = await http(app, "GET", path="/engine.iox", query="EIO=4&transport=polling")
    assert r.status == 404


async def test_static_files(tmp_path: Any) -> None:
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("sub index")
    (tmp_path / "app.js").write_text("js")
    eio = engineio_asgi.AsyncServer()
    app = engineio_asgi.ASGIApp(
        eio,
        static_files={"/": str(tmp_path / "index.html"), "/static": str(tmp_path)},
    )
    r = await http(app, "GET", path="/")
    assert (r.status, r.text, r.headers["content-type"]) == (200, "<h1>home</h1>", "text/html")
    r = await http(app, "GET", path="/static/app.js")
    assert (r.status, r.headers["content-type"]) == (200, "application/javascript")
    r = await http(app, "GET", path="/static/sub")  # a directory: its index, never a 500
    assert (r.status, r.text) == (200, "sub index")
    r = await http(app, "GET", path="/static/../" + os.path.basename(str(tmp_path)) + "/app.js")
    assert r.status == 404


async def test_other_app_and_attach() -> None:
    async def other(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"other"})

    eio = engineio_asgi.AsyncServer()
    app = eio.attach(other, engineio_path="rt")
    r = await http(app, "GET", path="/anything")
    assert (r.status, r.text) == (299, "other")
    r = await http(app, "GET", path="/rt/", query="EIO=4&transport=polling")
    assert r.status == 200 and r.text.startswith("0{")


async def test_lifespan_callbacks_and_shutdown() -> None:
    eio = engineio_asgi.AsyncServer()
    calls: list[str] = []
    app = engineio_asgi.ASGIApp(eio, on_startup=lambda: calls.append("up"), on_shutdown=lambda: calls.append("down"))
    reasons: list[str] = []
    eio.on("disconnect", lambda sid, reason: reasons.append(reason))
    await handshake(app)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    with anyio.fail_after(5):
        await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == ["up", "down"]
    assert reasons == ["server disconnect"]


# --- CORS forms, cookie validation, root_path --------------------------------------------


async def test_cors_callables_with_one_or_two_arguments() -> None:
    seen: list[Any] = []

    def two(origin: str, environ: dict[str, Any]) -> bool:
        seen.append(environ["REMOTE_ADDR"])
        return origin == "http://good.example"

    for check in (two, lambda origin: origin == "http://good.example"):
        eio, app = make(cors_allowed_origins=check)
        ok = await http(app, "GET", query="EIO=4&transport=polling", headers=[("Origin", "http://good.example")])
        assert ok.status == 200 and ok.headers["access-control-allow-origin"] == "http://good.example"
        bad = await http(app, "GET", query="EIO=4&transport=polling", headers=[("Origin", "http://evil.example")])
        assert bad.status == 403
    assert seen == ["10.1.2.3", "10.1.2.3"]

    def broken(origin: str) -> bool:
        raise RuntimeError("bug in the app's check")

    eio, app = make(cors_allowed_origins=broken)
    r = await http(app, "GET", query="EIO=4&transport=polling", headers=[("Origin", "http://x.example")])
    assert r.status == 403  # refused, not a 500


async def test_same_origin_default_accepts_direct_and_forwarded_origins() -> None:
    eio, app = make()
    base = [("Host", "internal:8000"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "chat.example")]
    for origin, status in [("https://chat.example", 200), ("http://internal:8000", 200), ("https://evil.example", 403)]:
        r = await http(app, "GET", query="EIO=4&transport=polling", headers=[*base, ("Origin", origin)])
        assert r.status == status, origin


def test_bad_cookie_text_fails_at_construction() -> None:
    with pytest.raises(ValueError):
        engineio_asgi.AsyncServer(cookie="io;evil")
    with pytest.raises(ValueError):
        engineio_asgi.AsyncServer(cookie={"name": "io", "path": "/\r\nX-Injected: 1"})
    engineio_asgi.AsyncServer(cookie={"name": "io", "Secure": True, "HttpOnly": True, "SameSite": "Strict"})


async def test_static_files_under_a_root_path(tmp_path: Any) -> None:
    (tmp_path / "index.html").write_text("root index")
    app = engineio_asgi.ASGIApp(engineio_asgi.AsyncServer(), static_files={"/": str(tmp_path / "index.html")})

    async def get(path: str, root: str) -> Any:
        from asgi_harness import _scope

        scope = _scope("http", path, "", [], "GET")
        scope["root_path"] = root
        out: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(m: dict[str, Any]) -> None:
            out.setdefault("status", m.get("status"))
            out["body"] = m.get("body", b"")

        await app(scope, receive, send)
        return out

    assert (await get("/chat/", "/chat"))["body"] == b"root index"
    assert (await get("/", ""))["body"] == b"root index"


async def test_send_packet_shares_one_packet_between_transports() -> None:
    # python-socketio hands one packet object to every recipient of a broadcast: a
    # polling session and a websocket session each get it in their own wire form,
    # the same packet again, and python-engineio's packets as well as ours.
    from engineio import packet as eio_packet

    from engineio_sansio import Packet, PacketType

    eio, app = make()
    sids: list[str] = []
    eio.on("connect", lambda sid, environ: sids.append(sid))
    polling_sid = await handshake(app)
    shared = [
        eio_packet.Packet(eio_packet.MESSAGE, "héllo"),
        eio_packet.Packet(eio_packet.MESSAGE, b"\x00\xff"),
        Packet(PacketType.MESSAGE, "ours"),
        Packet(PacketType.MESSAGE, b"\x01"),
    ]
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive())[0] == "0"  # type: ignore[index]
        ws_sid = sids[-1]
        for pkt in shared:
            for _ in range(2):  # each recipient twice: nothing encoded for one leaks to another
                await eio.send_packet(polling_sid, pkt)
                await eio.send_packet(ws_sid, pkt)
        frames = [await ws.receive() for _ in range(8)]
        assert frames == ["4héllo"] * 2 + [b"\x00\xff"] * 2 + ["4ours"] * 2 + [b"\x01"] * 2
        await ws.disconnect()
    r = await http(app, "GET", query=poll_q(polling_sid))
    assert r.text == "\x1e".join(["4héllo"] * 2 + ["bAP8="] * 2 + ["4ours"] * 2 + ["bAQ=="] * 2)


async def test_send_packet_refuses_control_packets_when_awaited() -> None:
    from engineio import packet as eio_packet

    from engineio_sansio import Packet, PacketType

    eio, app = make()
    sid = await handshake(app)
    for pkt in (eio_packet.Packet(eio_packet.PING, "x"), Packet(PacketType.NOOP)):
        pending = eio.send_packet(sid, pkt)  # a coroutine, as python-engineio's is
        with pytest.raises(ValueError, match="messages only, got a (PING|NOOP) packet"):
            await pending
    assert not eio._core._sessions[sid].outbox  # nothing was queued
