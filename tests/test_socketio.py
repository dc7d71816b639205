"""python-socketio on engineio_asgi, with real servers and real clients.

The app is tests/apps/socketio_app.py (python-socketio's ``AsyncServer`` through
:mod:`engineio_asgi.socketio`), served by uvicorn, granian and hypercorn (asyncio)
on 127.0.0.1. The clients are python-socketio's ``AsyncClient`` and Node's
``socket.io-client`` (tests/node/sio_client.js, one JSON report per run), over
polling only, websocket only, and polling upgraded to websocket.

What the server saw (connects, refusals, disconnect reasons, errors) is read
from the app's ``/control/events`` endpoint, waiting for a condition with a
bound. Also here:

* hypercorn on trio: what python-socketio itself breaks on there (it calls
  asyncio directly), and the clear refusal of :mod:`engineio_asgi.socketio`;
* scale-out: two server processes behind nginx (sticky sessions) sharing
  python-socketio's ``AsyncRedisManager`` on a redis-server, both started here
  on 127.0.0.1 (``.ci/install-system-deps`` installs the two Debian packages).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import httpx
import pytest
import socketio
from apps.socketio_app import TOKEN, binary_payload
from servers import REPO_ROOT, free_port, running_server

SIO_SERVERS = ["uvicorn", "granian", "hypercorn-asyncio"]
APP = "apps.socketio_app:app"
NODE_CLIENT = REPO_ROOT / "tests" / "node" / "sio_client.js"
# a short heartbeat, so that a polling client that vanishes is found out in ~2 s
APP_ENV = {"SIO_PING_INTERVAL": "1", "SIO_PING_TIMEOUT": "1"}

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module", params=SIO_SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    with running_server(APP, request.param, env=APP_ENV) as srv:
        yield srv


async def server_events(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(url + "/control/events")).json()  # type: ignore[no-any-return]


async def wait_for(
    url: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 5.0, srv: Any = None
) -> dict[str, Any]:
    """Poll the control endpoint until ``predicate`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = await server_events(url)
    while not predicate(seen):
        if time.monotonic() > deadline:
            log = srv.stderr_text()[-3000:] if srv is not None else ""
            raise AssertionError(f"condition not reached in {timeout}s; server saw {seen}\n{log}")
        await asyncio.sleep(0.02)
        seen = await server_events(url)
    return seen


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Wait (bounded) until a local condition holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def reasons(seen: dict[str, Any], sid: str, ns: str = "/") -> list[str]:
    return [d["reason"] for d in seen["disconnects"] if d["sid"] == sid and d["ns"] == ns]


def from_json(value: Any) -> Any:
    """Undo sio_client.js's ``{"$bin": base64}`` encoding of binary values."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if list(value) == ["$bin"]:
            return base64.b64decode(value["$bin"])
        return {k: from_json(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def node_available() -> bool:
    return shutil.which("node") is not None and (REPO_ROOT / "node_modules" / "socket.io-client").is_dir()


async def run_node(
    url: str,
    script: list[dict[str, Any]],
    *,
    transports: str = "polling,websocket",
    query: dict[str, str] | None = None,
    timeout: float = 15.0,
    check: bool = True,
    srv: Any = None,
) -> dict[str, Any]:
    """Run tests/node/sio_client.js with ``script``; return its report (binary decoded)."""
    if not node_available():
        pytest.fail("node or node_modules/socket.io-client missing: run `npm ci` at the repository root")
    args = [
        shutil.which("node") or "node",
        str(NODE_CLIENT),
        url,
        "--script=" + json.dumps(script),
        "--transports=" + transports,
        f"--timeout={int(timeout * 1000)}",
    ]
    if query:
        args.append("--query=" + json.dumps(query))
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(REPO_ROOT),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except asyncio.TimeoutError:
        proc.kill()  # our own child, by PID
        await proc.wait()
        raise AssertionError(f"node client did not exit within {timeout + 10}s: {args}") from None
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(
            f"node client printed no report (exit {proc.returncode})\n{out!r}\n{err.decode()}"
        )
    report: dict[str, Any] = from_json(json.loads(lines[-1]))
    report["exit_code"] = proc.returncode
    if check and (proc.returncode != 0 or not report.get("ok")):
        log = srv.stderr_text()[-3000:] if srv is not None else ""
        raise AssertionError(
            f"node client failed: {report.get('error')}\nreport: {report}\n"
            f"stderr: {err.decode()}\nserver log:\n{log}"
        )
    return report


class PyClient:
    """python-socketio's AsyncClient, recording every event, refusal and disconnect reason."""

    def __init__(self, namespaces: tuple[str, ...] = ("/",)) -> None:
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.namespaces = list(namespaces)
        self.received: dict[str, list[list[Any]]] = {ns: [] for ns in namespaces}
        self.disconnects: dict[str, str] = {}
        self.connect_errors: dict[str, Any] = {}
        for ns in namespaces:
            self.sio.on("*", self._any_handler(ns), namespace=ns)
            self.sio.on("disconnect", self._disconnect_handler(ns), namespace=ns)
            self.sio.on("connect_error", self._error_handler(ns), namespace=ns)

    def _any_handler(self, ns: str) -> Callable[..., Awaitable[Any]]:
        async def handler(event: str, *args: Any) -> Any:
            self.received[ns].append([event, *args])
            return {"client got": list(args)}  # the answer to a server call()

        return handler

    def _disconnect_handler(self, ns: str) -> Callable[..., None]:
        def handler(reason: str) -> None:
            self.disconnects[ns] = reason

        return handler

    def _error_handler(self, ns: str) -> Callable[..., None]:
        def handler(data: Any = None) -> None:
            self.connect_errors[ns] = data

        return handler

    async def connect(self, url: str, transports: list[str], auth: Any = None) -> None:
        if auth is None:
            auth = {"token": TOKEN, "user": "py"}
        await self.sio.connect(
            url, auth=auth, transports=transports, namespaces=self.namespaces, wait_timeout=5
        )

    def sid(self, ns: str = "/") -> str:
        return self.sio.get_sid(ns)  # type: ignore[no-any-return]

    def events(self, name: str, ns: str = "/") -> list[list[Any]]:
        return [e[1:] for e in self.received[ns] if e[0] == name]

    async def wait_events(self, name: str, count: int, ns: str = "/", timeout: float = 5) -> list[list[Any]]:
        await until(lambda: len(self.events(name, ns)) >= count, timeout, f"{count} {name!r} on {ns}")
        return self.events(name, ns)

    async def wait_transport(self, name: str, timeout: float = 5) -> None:
        await until(lambda: self.sio.transport() == name, timeout, f"transport {name}")

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await self.sio.shutdown()


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


# ------------------------------------------------------------------- the wiring


def test_python_socketio_builds_our_engineio_server() -> None:
    import engineio_asgi
    from engineio_asgi.socketio import AsyncServer

    logger = logging.getLogger("sio-wiring-test")
    sio = AsyncServer(ping_interval=0.3, ping_timeout=0.2, engineio_logger=logger, transports=["websocket"])
    assert type(sio.eio) is engineio_asgi.AsyncServer
    assert sio.async_mode == sio.eio.async_mode == "asgi"
    assert sio.eio.async_handlers is False  # python-socketio forces it
    assert (sio.eio.ping_interval, sio.eio.ping_timeout) == (0.3, 0.2)
    assert sio.eio.logger is logger  # engineio_logger is renamed logger
    assert sio.eio.transports == ["websocket"]
    assert set(sio.eio.handlers) == {"connect", "message", "disconnect"}
    assert isinstance(sio.eio.generate_id(), str)
    assert sio.reason.SERVER_DISCONNECT == "server disconnect"


def test_asgi_app_and_attach_route_to_the_socketio_server() -> None:
    from engineio_asgi.socketio import ASGIApp, AsyncServer

    async def other(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"other app"})

    async def scenario() -> None:
        sio = AsyncServer()
        for app in (ASGIApp(sio, other_asgi_app=other), sio.attach(other)):
            assert isinstance(app, ASGIApp)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                for path in ("/socket.io/", "/socket.io"):
                    r = await http.get(path, params={"EIO": "4", "transport": "polling"})
                    assert r.status_code == 200 and r.text.startswith("0{"), r.text
                    assert json.loads(r.text[1:])["upgrades"] == ["websocket"]
                for path in ("/socket.iox", "/engine.io/", "/"):
                    r = await http.get(path, params={"EIO": "4", "transport": "polling"})
                    assert r.text == "other app"
        custom = ASGIApp(AsyncServer(), socketio_path="rt")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=custom), base_url="http://h") as http:
            r = await http.get("/rt/", params={"EIO": "4", "transport": "polling"})
            assert r.text.startswith("0{")

    run(scenario())


# --------------------------------------------------------------------- one server


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_python_client_auth_namespaces_acks_binary(server: Any, mode: str) -> None:
    async def scenario() -> None:
        c = PyClient(("/", "/chat"))
        await c.connect(server.url, TRANSPORTS[mode], auth={"token": TOKEN, "user": "ann"})
        try:
            if mode == "upgrade":
                await c.wait_transport("websocket")
            expected_transport = "polling" if mode == "polling" else "websocket"
            assert c.sio.transport() == expected_transport
            me = await c.sio.call("whoami", timeout=5)
            assert me["user"] == "ann"
            assert me["sid"] == c.sid("/")
            assert me["transport"] == expected_transport
            # acknowledgements carry several arguments, binary attachments nested anywhere
            blob = bytes(range(256)) * 3
            args = ("text é€𝄞", blob, {"nested": [1, b"\x00\x1e\xff", {"deep": b""}]}, None)
            assert await c.sio.call("echo", args, timeout=5) == args
            # the server calls the client and waits for its acknowledgement
            assert await c.sio.call("call_me", {"q": 1}, timeout=5) == {
                "client said": {"client got": [{"q": 1}]}
            }
            assert c.events("ask") == [[{"q": 1}]]
            # a second namespace on the same Engine.IO session
            assert await c.sio.call("shout", "hey", namespace="/chat", timeout=5) == "HEY"
            shouted = await c.wait_events("shouted", 1, ns="/chat")
            assert shouted == [[{"from": c.sid("/chat"), "text": "HEY"}]]
            sids = (c.sid("/"), c.sid("/chat"))
        finally:
            await c.close()
        seen = await wait_for(server.url, lambda s: reasons(s, sids[0]) and reasons(s, sids[1], "/chat"))
        # python-engineio's client queues its last packets (the Socket.IO DISCONNECTs,
        # its CLOSE) and then closes the connection without waiting for its writer, so
        # they may never leave: the server then sees the transport close. The Node
        # client test pins "client disconnect" exactly.
        assert reasons(seen, sids[0]) in (["client disconnect"], ["transport close"])
        assert reasons(seen, sids[1], "/chat") == reasons(seen, sids[0])
        assert c.disconnects == {"/": "client disconnect", "/chat": "client disconnect"}
        assert not seen["errors"], seen["errors"]

    run(scenario())


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_node_client_auth_namespaces_acks_binary(server: Any, mode: str) -> None:
    blob = bytes(range(256)) * 3
    script: list[dict[str, Any]] = [
        {"op": "connect", "auth": {"token": TOKEN, "user": "node"}},
        {"op": "connect", "ns": "/chat"},
        {"op": "connect", "ns": "/nope", "expect": "error"},
    ]
    if mode == "upgrade":
        script.append({"op": "wait_transport", "name": "websocket"})
    script += [
        {"op": "emit", "event": "whoami", "ack": True},
        {"op": "emit", "event": "echo", "args": to_json(["é€𝄞", blob, {"n": [b"\x1e"]}]), "ack": True},
        {"op": "emit", "event": "call_me", "args": [7], "ack": True},
        {"op": "emit", "event": "join", "args": ["solo-room"], "ack": True},
        {
            "op": "emit",
            "event": "broadcast",
            "args": [{"room": "solo-room", "event": "bin", "binary": 9}],
            "ack": True,
        },
        {"op": "wait", "event": "bin"},
        {"op": "emit", "ns": "/chat", "event": "shout", "args": ["yo"], "ack": True},
        {"op": "wait", "ns": "/chat", "event": "shouted"},
        {"op": "transport"},
        {"op": "disconnect", "ns": "/chat"},
        {"op": "wait_disconnect", "ns": "/chat"},
        {"op": "disconnect"},
        {"op": "wait_disconnect"},
    ]

    async def scenario() -> None:
        report = await run_node(server.url, script, transports=",".join(TRANSPORTS[mode]), srv=server)
        res = report["results"]
        sid, chat_sid = res[0]["id"], res[1]["id"]
        assert res[2]["error"] == ""  # python-socketio refuses an unknown namespace with a bare string
        assert res[2]["data"] is None
        i = 3 + (mode == "upgrade")
        expected_transport = "polling" if mode == "polling" else "websocket"
        me = res[i]["ack"][0]
        assert (me["sid"], me["user"], me["transport"]) == (sid, "node", expected_transport)
        assert res[i + 1]["ack"] == ["é€𝄞", blob, {"n": [b"\x1e"]}]
        assert res[i + 2]["ack"] == [{"client said": {"client got": [7]}}]
        assert res[i + 3]["ack"] == [sorted([sid, "solo-room"])]
        assert res[i + 4]["ack"] == ["sent"]
        assert res[i + 5]["events"] == [binary_payload(9)]
        assert res[i + 6]["ack"] == ["YO"]
        assert res[i + 7]["events"] == [[{"from": chat_sid, "text": "YO"}]]
        assert res[i + 8]["transport"] == expected_transport
        assert res[i + 10]["reason"] == "io client disconnect"
        assert res[i + 12]["reason"] == "io client disconnect"
        seen = await wait_for(server.url, lambda s: reasons(s, sid) and reasons(s, chat_sid, "/chat"))
        assert reasons(seen, sid) == ["client disconnect"]
        assert reasons(seen, chat_sid, "/chat") == ["client disconnect"]
        connect = next(c for c in seen["connects"] if c["sid"] == sid)
        assert connect["user"] == "node"
        assert not seen["errors"], seen["errors"]

    run(scenario())


def test_refused_auth(server: Any) -> None:
    async def scenario() -> None:
        c = PyClient()
        with pytest.raises(socketio.exceptions.ConnectionError, match="failed to connect: /"):
            await c.connect(server.url, ["websocket"], auth={"token": "wrong"})
        assert c.connect_errors["/"] == {"message": "bad token", "data": {"expected": "token"}}
        await c.close()

        report = await run_node(
            server.url,
            [{"op": "connect", "auth": {"nothing": 1}, "expect": "error"}],
            transports="polling",
            srv=server,
        )
        assert report["results"][0] == {"error": "bad token", "data": {"expected": "token"}}

        seen = await wait_for(server.url, lambda s: len(s["refused"]) >= 2)
        auths = [r["auth"] for r in seen["refused"]]
        assert {"token": "wrong"} in auths and {"nothing": 1} in auths

    run(scenario())


@pytest.mark.parametrize("client", ["python", "node"])
@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_server_initiated_disconnect(server: Any, client: str, transport: str) -> None:
    async def scenario() -> None:
        if client == "python":
            c = PyClient()
            await c.connect(server.url, [transport])
            sid = c.sid()
            await c.sio.emit("kick")
            await until(lambda: "/" in c.disconnects, 5, "the disconnect")
            assert c.disconnects["/"] == "server disconnect"
            await c.close()
        else:
            report = await run_node(
                server.url,
                [
                    {"op": "connect", "auth": {"token": TOKEN}},
                    {"op": "emit", "event": "kick"},
                    {"op": "wait_disconnect"},
                ],
                transports=transport,
                srv=server,
            )
            sid = report["results"][0]["id"]
            assert report["results"][2]["reason"] == "io server disconnect"
        seen = await wait_for(server.url, lambda s: reasons(s, sid))
        assert reasons(seen, sid) == ["server disconnect"]

    run(scenario())


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_vanished_client_reason(server: Any, transport: str) -> None:
    """A Node client that exits without a word: transport close on websocket, ping timeout on polling."""

    async def scenario() -> None:
        report = await run_node(
            server.url,
            [{"op": "connect", "auth": {"token": TOKEN}}, {"op": "exit_abruptly"}],
            transports=transport,
        )
        sid = report["results"][0]["id"]
        seen = await wait_for(server.url, lambda s: reasons(s, sid), timeout=8)
        expected = "transport close" if transport == "websocket" else "ping timeout"
        assert reasons(seen, sid) == [expected]

    run(scenario())


def test_binary_broadcast_to_room_mixing_polling_and_websocket(server: Any) -> None:
    """One room: python and Node clients, each polling-only and websocket-only.

    python-socketio hands the same Engine.IO packet object to every recipient
    (see COMPAT.md); each transport must encode it for itself. Binary and text
    broadcasts alternate; every client gets all of them, intact and in order.
    """
    room = "mixed"
    rounds = 4
    expected: list[list[Any]] = []
    for n in range(rounds):
        expected.append(["bin", *binary_payload(n)])
        expected.append(["txt", f"text {n}"])

    async def scenario() -> None:
        node_script = [
            {"op": "connect", "auth": {"token": TOKEN, "user": "node"}},
            {"op": "emit", "event": "join", "args": [room], "ack": True},
            {"op": "wait", "event": "txt", "count": rounds, "timeout": 10000},
        ]
        node_runs = [
            asyncio.create_task(run_node(server.url, node_script, transports=t, srv=server))
            for t in ("polling", "websocket")
        ]
        py = {"polling": PyClient(), "websocket": PyClient()}
        try:
            for transport, c in py.items():
                await c.connect(server.url, [transport])
                await c.sio.call("join", room, timeout=5)
            # all four in the room (the Node clients report their joins to the server)
            await wait_for(
                server.url,
                lambda s: (
                    len([j for j in s.get("joins", []) if j["room"] == room]) >= 4
                    or any(t.done() for t in node_runs)
                ),
                timeout=10,
                srv=server,
            )
            sender = py["websocket"]
            for n in range(rounds):
                ack = await sender.sio.call(
                    "broadcast", {"room": room, "event": "bin", "binary": n}, timeout=5
                )
                assert ack == "sent"
                ack = await sender.sio.call(
                    "broadcast", {"room": room, "event": "txt", "args": [f"text {n}"]}, timeout=5
                )
                assert ack == "sent"
            reports = await asyncio.gather(*node_runs)
            for c in py.values():
                await c.wait_events("txt", rounds)
            assert py["polling"].sio.transport() == "polling"
            assert py["websocket"].sio.transport() == "websocket"
            for transport, c in py.items():
                got = [e for e in c.received["/"] if e[0] in ("bin", "txt")]
                assert got == expected, f"python {transport} client"
            for transport, report in zip(("polling", "websocket"), reports, strict=True):
                got = [e for e in report["events"]["/"] if e[0] in ("bin", "txt")]
                assert got == expected, f"node {transport} client"
                assert report["transport"] == transport
        finally:
            for c in py.values():
                await c.close()
            for t in node_runs:
                t.cancel()
        seen = await server_events(server.url)
        assert not seen["errors"], seen["errors"]

    run(scenario())


# ------------------------------------------------------------------- benchmark


@pytest.mark.parametrize("app", ["sio_ours", "sio_pyengineio"])
def test_benchmark_emit_echo_apps_run(app: str) -> None:
    """benchmarks/sio_load.js against each emit-echo app, briefly: the scenario stays runnable."""
    if not node_available():
        pytest.fail("node or node_modules/socket.io-client missing: run `npm ci` at the repository root")
    env = {"PYTHONPATH": str(REPO_ROOT / "benchmarks" / "apps")}
    with running_server(f"{app}:app", "uvicorn", env=env) as srv:
        out = subprocess.run(
            [shutil.which("node") or "node", str(REPO_ROOT / "benchmarks" / "sio_load.js"),
             "--port", str(srv.port), "--clients", "5", "--warmup", "0.2", "--duration", "0.5"],
            cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40,
        )  # fmt: skip
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["ok"], (report, out.stderr, srv.stderr_text())
        assert report["echoes"] > 0 and report["clients"] == 5


# ------------------------------------------------------------------------ trio


def test_trio_python_socketio_itself_breaks() -> None:
    """What python-socketio hits on hypercorn-trio when wired to our layer by hand (no guard).

    Connecting and event handlers with acknowledgements work (our layer runs on
    trio), but python-socketio calls asyncio directly:

    * every emit (broadcast, to one client, and ``call()``) goes through
      ``AsyncManager.emit`` -> ``asyncio.create_task`` ->
      ``RuntimeError: no running event loop``; the emit's caller never answers;
    * each incoming event: python-socketio does ``task.add_done_callback(...)`` on
      what ``start_background_task`` returned ->
      ``AttributeError: 'TrioTask' object has no attribute 'add_done_callback'``
      (logged; the handler itself still runs).
    """

    async def scenario(srv: Any) -> None:
        c = PyClient()
        await c.connect(srv.url, ["websocket"])
        try:
            me = await c.sio.call("whoami", timeout=5)
            assert me["transport"] == "websocket"
            # a broadcast, and a call() (an emit to this one client): neither handler answers
            outcomes = await asyncio.gather(
                c.sio.call("broadcast", {"room": None, "event": "news", "args": [1]}, timeout=2),
                c.sio.call("call_me", 1, timeout=2),
                return_exceptions=True,
            )
            assert [type(o) for o in outcomes] == [socketio.exceptions.TimeoutError] * 2, outcomes
            assert c.events("news") == [] and c.events("ask") == []
        finally:
            await c.close()
        seen = await wait_for(srv.url, lambda s: len(s["errors"]) >= 2)
        assert sorted(e["where"] for e in seen["errors"]) == ["broadcast", "call_me"]
        for error in seen["errors"]:
            assert "in emit\n    tasks.append(asyncio.create_task(" in error["error"], error["error"]
            assert error["error"].rstrip().endswith("RuntimeError: no running event loop"), error["error"]
        assert "AttributeError: 'TrioTask' object has no attribute 'add_done_callback'" in srv.stderr_text()

    with running_server(APP, "hypercorn-trio", env={**APP_ENV, "SIO_VARIANT": "raw"}) as srv:
        run(scenario(srv))


def test_trio_is_refused_with_a_clear_error() -> None:
    """engineio_asgi.socketio refuses every request on trio, saying why, instead of half-working."""
    from engineio_asgi.socketio import SOCKETIO_NEEDS_ASYNCIO

    message = SOCKETIO_NEEDS_ASYNCIO.format(library="trio")

    async def scenario(srv: Any) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(srv.url + "/socket.io/?EIO=4&transport=polling")
        assert r.status_code == 500
        assert r.text == message
        c = PyClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await c.connect(srv.url, ["websocket"])
        await c.close()
        seen = await server_events(srv.url)
        assert seen["connects"] == [] and seen["errors"] == []
        assert message in srv.stderr_text()

    with running_server(APP, "hypercorn-trio", env=APP_ENV) as srv:
        run(scenario(srv))


# ------------------------------------------------------------------- scale-out

NGINX_CONF = """\
# Two python-socketio processes behind one address. Sticky: every request of
# one Engine.IO session must reach the same process (polling is several
# requests); the key is the client's `sticky` query parameter when it sends
# one, else its address.
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    map $arg_sticky $sticky_key {{
        ''      $remote_addr;
        default $arg_sticky;
    }}
    upstream socketio_nodes {{
        hash $sticky_key consistent;
        server 127.0.0.1:{port_a};
        server 127.0.0.1:{port_b};
    }}
    server {{
        listen 127.0.0.1:{port};
        location /socket.io/ {{
            proxy_pass http://socketio_nodes;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
        location / {{
            proxy_pass http://socketio_nodes;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""

STOP_TIMEOUT = 5.0


def _binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if found is None:
        pytest.fail(
            f"{name} is not installed: the scale-out test needs the Debian packages nginx and "
            "redis-server (run .ci/install-system-deps, which apt-get installs them)"
        )
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the PID we started (nginx's master stops its workers), bounded wait.

    Only if it is still there: SIGKILL its process group, which start_new_session
    made ours (group id = its PID, not reusable while the leader is unreaped).
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not listen on {port} in 10s:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.02)


@contextlib.contextmanager
def running_redis(tmp: Path) -> Iterator[str]:
    binary = _binary("redis-server", "/usr/bin/redis-server")
    port = free_port()
    log = tmp / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp), "--daemonize", "no", "--protected-mode", "yes"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_listening(proc, port, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@contextlib.contextmanager
def running_nginx(tmp: Path, port_a: int, port_b: int) -> Iterator[str]:
    binary = _binary("nginx", "/usr/sbin/nginx")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, port_a=port_a, port_b=port_b))
    os.chmod(tmp, 0o755)  # nginx workers (an unprivileged user when we are root) use the temp dirs
    log = tmp / "nginx.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_listening(proc, port, "nginx", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        error_log = tmp / "error.log"
        if error_log.exists():
            print("nginx error.log:\n" + error_log.read_text(errors="replace")[-2000:])


def test_scale_out_two_processes_behind_nginx_with_redis() -> None:
    """A room emit and a broadcast from one process reach the clients of both, through Redis."""
    try:
        import redis
    except ImportError:
        pytest.fail("the scale-out test needs the redis package (pip install 'redis>=5')")
    channel = "sio-test-" + uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sio-scale-")))
        redis_url = stack.enter_context(running_redis(tmp))
        procs = {}
        for name in ("a", "b"):
            env = {**APP_ENV, "SIO_NAME": name, "SIO_REDIS_URL": redis_url, "SIO_CHANNEL": channel}
            procs[name] = stack.enter_context(running_server(APP, "uvicorn", env=env))
        front = stack.enter_context(running_nginx(tmp, procs["a"].port, procs["b"].port))

        # sticky keys that land on each process (the hash ring depends on the ports)
        sticky: dict[str, str] = {}
        with httpx.Client(timeout=5) as http:
            for i in range(64):
                key = f"k{i}"
                name = http.get(front + "/control/server", params={"sticky": key}).json()["name"]
                sticky.setdefault(name, key)
                if len(sticky) == 2:
                    break
        assert set(sticky) == {"a", "b"}, f"no sticky key reached both processes: {sticky}"
        r = redis.Redis.from_url(redis_url)
        stack.callback(r.close)

        async def scenario() -> None:
            room = "everywhere"
            node_script = [
                {"op": "connect", "auth": {"token": TOKEN, "user": "node-a"}},
                {"op": "wait_transport", "name": "websocket"},
                {"op": "emit", "event": "whoami", "ack": True},
                {"op": "emit", "event": "join", "args": [room], "ack": True},
                {"op": "wait", "event": "from-a", "timeout": 10000},
            ]
            # Node on process a, upgraded to websocket through nginx
            node = asyncio.create_task(
                run_node(front, node_script, query={"sticky": sticky["a"]}, timeout=20, srv=procs["a"])
            )
            # python on process b: one polling-only (many requests, all sticky), one websocket
            py = {t: PyClient() for t in ("polling", "websocket")}
            try:
                for transport, c in py.items():
                    await c.connect(f"{front}/?sticky={sticky['b']}", [transport])
                    me = await c.sio.call("whoami", timeout=5)
                    assert (me["server"], me["transport"]) == ("b", transport)
                    await c.sio.call("join", room, timeout=5)
                await wait_for(
                    procs["a"].url,
                    lambda s: any(j["room"] == room for j in s.get("joins", [])) or node.done(),
                    timeout=10,
                )
                # both processes listen on the channel before anything is published
                await until(lambda: r.pubsub_numsub(channel)[0][1] >= 2, 5, "two Redis subscribers")

                # from process b: a text and a binary emit to the room
                sender = py["polling"]
                ack = await sender.sio.call(
                    "broadcast", {"room": room, "event": "news", "args": ["hello"]}, timeout=5
                )
                assert ack == "sent"
                ack = await sender.sio.call(
                    "broadcast", {"room": room, "event": "news", "binary": 5}, timeout=5
                )
                assert ack == "sent"
                # from process a: a broadcast to everyone (its control endpoint, through nginx)
                async with httpx.AsyncClient(timeout=5) as http:
                    resp = await http.get(
                        front + "/control/emit",
                        params={"sticky": sticky["a"], "event": "from-a", "text": "hi all"},
                    )
                assert resp.json() == {"emitted": True}

                report = await node
                for c in py.values():
                    await c.wait_events("from-a", 1)
                    assert c.events("news") == [["hello"], binary_payload(5)]
                    assert c.events("from-a") == [[{"text": "hi all", "from": "a"}]]
                res = report["results"]
                assert res[2]["ack"][0]["server"] == "a"
                assert res[2]["ack"][0]["transport"] == "websocket"
                node_news = [e[1:] for e in report["events"]["/"] if e[0] == "news"]
                assert node_news == [["hello"], binary_payload(5)]
                assert [e[1:] for e in report["events"]["/"] if e[0] == "from-a"] == [
                    [{"text": "hi all", "from": "a"}]
                ]
                # polling stayed on one process the whole time
                assert py["polling"].sio.transport() == "polling"
            finally:
                for c in py.values():
                    await c.close()
                node.cancel()
            for name, srv in procs.items():
                seen = await server_events(srv.url)
                assert not seen["errors"], (name, seen["errors"])

        run(scenario())
